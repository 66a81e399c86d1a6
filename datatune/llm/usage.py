"""Counts of LLM calls, tokens, cache hits and wall time, per pipeline stage."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field


@dataclass
class StageUsage:
    calls: int = 0  # requests the endpoint answered (re-asks included)
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: int = 0  # answers still invalid after the allowed re-asks
    errors: int = 0  # requests that got no answer: unreachable, timed out, refused (4xx/5xx), not a chat completion
    seconds: float = 0.0  # wall time of the stage


@dataclass
class Usage:
    stages: dict[str, StageUsage] = field(default_factory=dict)

    def stage(self, name: str) -> StageUsage:
        return self.stages.setdefault(name, StageUsage())

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.stages.values())

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.stages.values())

    @property
    def cache_hits(self) -> int:
        return sum(s.cache_hits for s in self.stages.values())

    def totals(self) -> StageUsage:
        t = StageUsage()
        for s in self.stages.values():
            for k in ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "failures", "errors", "seconds"):
                setattr(t, k, getattr(t, k) + getattr(s, k))
        return t

    def to_dict(self) -> dict:
        return {"stages": {k: asdict(v) for k, v in self.stages.items()}, "total": asdict(self.totals())}

    @contextmanager
    def timed(self, name: str):
        start = time.perf_counter()
        try:
            yield self.stage(name)
        finally:
            self.stage(name).seconds += time.perf_counter() - start

    def summary_line(self) -> str:
        t = self.totals()
        return (
            f"LLM: {t.calls} calls, {t.cache_hits} cache hits, "
            f"{t.prompt_tokens} prompt + {t.completion_tokens} completion tokens, {t.failures} failures"
            + (f", {t.errors} failed request{'s' if t.errors != 1 else ''}" if t.errors else "")
        )
