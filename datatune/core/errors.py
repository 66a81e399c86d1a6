"""One root error type; subclasses also inherit the matching builtin so callers can catch either.

Messages are one line and say what to do next: the CLI prints them as they are.
"""


class DatatuneError(Exception):
    """Root of every error a user can cause or fix."""


class ConfigError(DatatuneError, ValueError):
    """Bad option, setting or input file."""


class CatalogError(DatatuneError, FileNotFoundError):
    """A catalog or a dataset in it is missing or unreadable."""


class DatasetLoadError(DatatuneError, RuntimeError):
    """One dataset failed to load; the build skips it and goes on."""


class OfflineError(DatatuneError, ConnectionError):
    """A remote service (the Hub, an LLM endpoint) can't be reached."""


class LLMError(DatatuneError, RuntimeError):
    """The model did not return a usable answer after the allowed re-asks."""


class BudgetExceeded(DatatuneError, RuntimeError):
    """The LLM call budget (--max-llm-calls) would be exceeded."""


class RunStateError(DatatuneError, FileExistsError):
    """The output directory holds another run, or the run state is unusable."""


class RequestFailed(LLMError):
    """The endpoint refused or could not answer ONE request (a 4xx such as 400/413/422, a reply with no
    choices, text that can't be sent). Per-row callers count it as that row's failure and go on; the
    `*_many` methods return it in place of the row's answer."""


class ContextTooLong(RequestFailed):
    """The prompt does not fit the model's context."""


class EndpointError(OfflineError):
    """The endpoint answers but can't serve requests (wrong key, unknown model, not a chat-completions
    API, 5xx or 429 after the retries, no answer within the timeout): it stops the run, state kept."""


__all__ = ["DatatuneError", "ConfigError", "CatalogError", "DatasetLoadError", "OfflineError", "LLMError", "BudgetExceeded",
           "RunStateError", "RequestFailed", "ContextTooLong", "EndpointError"]
