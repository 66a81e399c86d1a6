"""Settings, read from the environment when a command starts (never at import).

Precedence: CLI flag > DATATUNE_* > OPENAI_* / HF_* > default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


def env_int(name: str, default: int) -> int:
    """A whole number >= 1 from the environment (DATATUNE_EMBEDDED_THREADS...), or `default` when unset."""
    from .errors import ConfigError

    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if number < 1:
        raise ConfigError(f"{name} must be at least 1, got {number}")
    return number


def debug_enabled() -> bool:
    """DATATUNE_DEBUG set (and not 0): errors show their traceback."""
    return os.environ.get("DATATUNE_DEBUG", "") not in ("", "0")


def models_dir_override() -> Path | None:
    """DATATUNE_MODEL_DIR: where assembled embedded models live instead of the cache."""
    value = os.environ.get("DATATUNE_MODEL_DIR")
    return Path(value).expanduser() if value else None


def no_color() -> bool:
    """NO_COLOR set (any value, https://no-color.org): no colour in what the CLI prints."""
    return bool(os.environ.get("NO_COLOR"))


def datasets_cache_override() -> Path | None:
    """Where `datasets` keeps prepared data when HF_DATASETS_CACHE or HF_HOME says so, read now
    (tests and users set HF_HOME after `datasets` was imported); None = datasets' own default."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "datasets"
    return None


def ray_address() -> str | None:
    """DATATUNE_RAY_ADDRESS: the Ray cluster `--engine ray` joins (HOST:PORT, ray://HOST:PORT or auto); None = a local Ray."""
    return os.environ.get("DATATUNE_RAY_ADDRESS", "").strip() or None


def cache_dir(*parts: str) -> Path:
    """A folder under datatune's cache: DATATUNE_CACHE, else the Hugging Face assets dir."""
    root = os.environ.get("DATATUNE_CACHE")
    if root:
        path = Path(root).expanduser().joinpath(*parts)
    else:
        from huggingface_hub import cached_assets_path

        path = cached_assets_path("datatune", namespace="default", subfolder=parts[0] if parts else "default")
        path = path.joinpath(*parts[1:])
    path.mkdir(parents=True, exist_ok=True)
    return path


# Seconds one LLM request may wait for its answer. The client tries each request up to 3 times
# (openai's max_retries=2), so a silent endpoint fails within about 3x this. The embedded model on
# 2 cores takes up to a minute or two for a long prompt with a long answer; a remote endpoint that
# has not answered in 2 minutes is almost always hung.
DEFAULT_TIMEOUT_EMBEDDED = 300.0
DEFAULT_TIMEOUT_REMOTE = 120.0


def _timeout(raw: str | None) -> float | None:
    if not raw:
        return None
    from .errors import ConfigError

    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"DATATUNE_TIMEOUT={raw!r} is not a number of seconds above 0; set it like DATATUNE_TIMEOUT=120")
    return value


@dataclass(frozen=True)
class Settings:
    catalog: str | None = None  # local catalog path; None = the Hugging Face Hub
    base_url: str | None = None  # OpenAI-compatible endpoint; None = embedded model
    api_key: str | None = None
    model: str | None = None  # remote model name, or embedded model key ("qwen2.5-coder-1.5b")
    gguf: str | None = None  # a local GGUF file for the embedded server
    concurrency: int | None = None
    use_cache: bool = True
    max_llm_calls: int | None = None
    timeout: float | None = None  # seconds one LLM request may wait for its answer; None = request_timeout()
    debug: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        return cls(
            catalog=env.get("DATATUNE_CATALOG") or None,
            base_url=env.get("DATATUNE_BASE_URL") or env.get("OPENAI_BASE_URL") or None,
            api_key=env.get("DATATUNE_API_KEY") or env.get("OPENAI_API_KEY") or None,
            model=env.get("DATATUNE_MODEL") or None,
            gguf=env.get("DATATUNE_GGUF") or None,
            timeout=_timeout(env.get("DATATUNE_TIMEOUT")),
            debug=env.get("DATATUNE_DEBUG", "") not in ("", "0"),
        )

    def request_timeout(self) -> float:
        """The request timeout in use: --timeout / DATATUNE_TIMEOUT, else one for the endpoint's kind."""
        if self.timeout is not None:
            return self.timeout
        return DEFAULT_TIMEOUT_REMOTE if self.base_url else DEFAULT_TIMEOUT_EMBEDDED

    def override(self, **flags) -> "Settings":
        """Apply CLI flags that were given (None means 'not given')."""
        return replace(self, **{k: v for k, v in flags.items() if v is not None})
