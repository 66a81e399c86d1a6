"""What every stage of a build reads: the catalog, the LLM, the options, the reporter, the run folder."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..core.types import Catalog
from ..llm import LLM
from ..options import BuildOptions
from ..progress import Reporter
from ..rundir import RunDir


@dataclass
class Context:
    catalog: Catalog
    llm: LLM
    options: BuildOptions
    reporter: Reporter
    run: RunDir
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, for the manifest
    _engine: Any = field(default=None, repr=False)

    @property
    def engine(self):
        """The engine --engine names (engines/), started on first use and kept for the build."""
        if self._engine is None:
            from ..engines import get_engine

            self._engine = get_engine(self.options.engine)
        return self._engine

    @contextmanager
    def timed(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0) + time.perf_counter() - t, 3)

    def state(self, name: str) -> Any:
        """A stage's saved state in the run folder (None on a dry run, which keeps none)."""
        return None if self.options.dry_run else self.run.read_json(name)

    def save(self, name: str, obj) -> None:
        if not self.options.dry_run:
            self.run.write_json(name, obj)
