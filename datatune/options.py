"""`BuildOptions`: everything a user decides about one build (the CLI's flags, as one record)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .core.errors import ConfigError
from .planner import PLANNER_MODES
from .task import Example

MAX_SIZE = 10_000_000  # rows per build


@dataclass
class BuildOptions:
    out: Path
    size: int = 1000
    seed: int = 0
    validation_fraction: float = 0.0
    per_source_cap: float = 0.5  # share of --size one source may fill when others are available
    max_candidates: int = 8  # candidates planned at most
    top_k: int = 20
    examples: list[Example] = field(default_factory=list)
    eval_texts: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    benchmark: str | None = None
    plans_file: Path | None = None
    dry_run: bool = False
    resume: bool = False
    overwrite: bool = False
    synthetic: bool = True
    synthetic_fraction: float = 0.5
    synthetic_batch: int = 5  # synthetic rows asked for per LLM call
    curate: bool = True
    rerank: bool = False  # LLM self-consistency rerank of the retrieved candidates
    verify: str = "off"  # label verification policy: off, flag, relabel or drop (verify.py)
    verify_budget: int | None = None  # LLM calls the verification may spend; None = one per row plus confirmations
    planner: str = "hybrid"  # who decides what: "hybrid" (model picks columns) or "full" (model writes the derivation too)
    splits: list[str] | None = None  # source splits rows may come from; None = train first, the others only to fill
    judge_votes: int = 4  # transformed inputs of each kept source whose kind the LLM reads (semantic acceptance); 0 = off
    engine: str = "local"  # where compiled plans run (engines/): "local" or "ray"; the rows are the same

    def fingerprint_fields(self, description: str, catalog: str) -> dict:
        keep = {k: v for k, v in asdict(self).items() if k not in ("out", "dry_run", "resume", "overwrite", "engine")}
        return {"description": description, "catalog": catalog, **keep}

    def validate(self) -> None:
        if self.size < 1:
            raise ConfigError(f"--size must be at least 1 (got {self.size})")
        if self.size > MAX_SIZE:
            # rows are still Python objects between stages: 10M rows take a few GB; a billion were OOM-killed at 20 GB
            raise ConfigError(f"--size {self.size:,} is more than one build makes ({MAX_SIZE:,} rows at most); ask for fewer rows")
        if not 0 <= self.validation_fraction < 1:
            raise ConfigError(f"--validation-fraction must be in [0, 1) (got {self.validation_fraction})")
        if self.verify not in ("off", "flag", "relabel", "drop"):
            raise ConfigError(f"--verify must be off, flag, relabel or drop (got {self.verify!r})")
        if self.planner not in PLANNER_MODES:
            raise ConfigError(f"--planner must be one of {', '.join(PLANNER_MODES)} (got {self.planner!r})")
        if self.splits is not None and not self.splits:
            raise ConfigError("--splits needs at least one split name, e.g. --splits train")
        from .engines import ENGINES

        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {', '.join(ENGINES)} (got {self.engine!r})")
        if not 0 < self.per_source_cap <= 1:
            raise ConfigError(f"--per-source-cap must be in (0, 1] (got {self.per_source_cap})")
