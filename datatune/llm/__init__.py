"""LLM access for every stage: `open_llm(settings)` gives a ready `LLM`.

Only this package imports `openai`.
"""

from __future__ import annotations

from ..core.errors import ContextTooLong, EndpointError, RequestFailed
from ..core.settings import Settings, cache_dir
from .cache import ResponseCache
from .client import LLM, Endpoint, InvalidOutput, map_error, strict_schema
from .usage import Usage

DEFAULT_EMBEDDED_MODEL = "qwen2.5-coder-1.5b"

__all__ = [
    "LLM", "ContextTooLong", "Endpoint", "EndpointError", "InvalidOutput", "RequestFailed", "ResponseCache", "Usage",
    "map_error", "open_llm", "resolve_endpoint", "strict_schema",
]


def resolve_endpoint(settings: Settings) -> Endpoint:
    """The configured remote endpoint, or the embedded server (started now if it isn't running)."""
    if settings.base_url:
        return Endpoint(settings.base_url, settings.model or "gpt-4o-mini", settings.api_key or "not-needed")
    name = settings.gguf or settings.model or DEFAULT_EMBEDDED_MODEL

    def start() -> tuple[str, str]:
        from .embedded import ensure_model, get_server

        server = get_server(ensure_model(name))
        return server.base_url, server.model_name

    return Endpoint(None, str(name).rsplit("/", 1)[-1], "not-needed", embedded=True, start=start)


def open_llm(settings: Settings, *, usage: Usage | None = None, **kwargs) -> LLM:
    cache = ResponseCache(cache_dir("llm")) if settings.use_cache else None
    return LLM(
        resolve_endpoint(settings),
        concurrency=settings.concurrency,
        cache=cache,
        max_calls=settings.max_llm_calls,
        timeout=settings.request_timeout(),
        usage=usage,
        **kwargs,
    )
