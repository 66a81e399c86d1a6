"""An LLM rebuilt in another process (a Ray worker): the same endpoint, cache, settings and a share of the budget.

`recipe(llm, workers)` gives a picklable `Recipe`, or None for an LLM that can only answer in this
process: the embedded model (its server listens on this machine's loopback and serves two slots, so
fanning its calls out buys nothing) and an LLM on a test transport. `Recipe.open(max_calls)` builds the
worker's LLM; `settle` hands what the worker sent and spent back to the driver's LLM, so `--max-llm-calls`
and the usage figures count every worker's calls. The response cache is the same directory (diskcache:
processes share it safely; on a cluster without a shared file system each node keeps its own).
"""

from __future__ import annotations

from dataclasses import dataclass

from .cache import ResponseCache
from .client import LLM, Endpoint
from .usage import StageUsage, Usage


@dataclass(frozen=True)
class Recipe:
    base_url: str
    model: str
    api_key: str
    concurrency: int
    cache_dir: str | None
    temperature: float
    seed: int
    max_retries: int
    timeout: float
    max_reasks: int
    rpm: int | None
    tpm: int | None

    def open(self, max_calls: int | None) -> LLM:
        return LLM(Endpoint(self.base_url, self.model, self.api_key), concurrency=self.concurrency,
                   cache=ResponseCache(self.cache_dir) if self.cache_dir else None, max_calls=max_calls, rpm=self.rpm,
                   tpm=self.tpm, max_reasks=self.max_reasks, temperature=self.temperature, seed=self.seed,
                   max_retries=self.max_retries, timeout=self.timeout)


def recipe(llm: LLM, *, workers: int) -> Recipe | None:
    """How `workers` processes at once rebuild `llm` (each gets its share of the rate limits), or None if they can't."""
    if llm.endpoint.embedded or llm.transport is not None or not llm.endpoint.base_url:
        return None
    rpm, tpm = llm.rate_limits
    share = max(1, workers)
    return Recipe(base_url=llm.endpoint.base_url, model=llm.endpoint.model, api_key=llm.endpoint.api_key,
                  concurrency=llm.concurrency, cache_dir=str(llm.cache.directory) if llm.cache is not None else None,
                  temperature=llm.temperature, seed=llm.seed, max_retries=llm.max_retries, timeout=llm.timeout,
                  max_reasks=llm.max_reasks, rpm=max(1, rpm // share) if rpm else None, tpm=max(1, tpm // share) if tpm else None)


def usage_of(llm: LLM) -> dict:
    """What a worker's LLM sent and spent, to return to the driver (plain data: it crosses processes)."""
    return {"sent": llm.sent, "stages": llm.usage.to_dict()["stages"]}


def settle(llm: LLM, spent: dict) -> None:
    """Count a worker's requests against `llm`'s budget and add its usage to `llm`'s, stage by stage."""
    llm.count_sent(int(spent["sent"]))
    merge_usage(llm.usage, spent["stages"])


def merge_usage(into: Usage, stages: dict[str, dict]) -> None:
    """Add counts stage by stage; wall seconds are not added (workers overlap: the driver times the stage)."""
    for name, figures in stages.items():
        st = into.stage(name)
        for k in StageUsage.__dataclass_fields__:
            if k != "seconds":
                setattr(st, k, getattr(st, k) + figures.get(k, 0))
