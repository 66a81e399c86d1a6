"""Progress reporting for long stages: tqdm bars on stderr, quiet, or JSON events.

Stages call `reporter.bar(stage, total)` and `reporter.event(kind, **fields)`; the CLI picks the
implementation (-q, --json). Nothing here writes to stdout except JSON events, which are data.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager


class Reporter:
    """Silent base: every stage can report without knowing who listens."""

    def event(self, kind: str, **fields) -> None:
        pass

    @contextmanager
    def bar(self, stage: str, total: int | None = None, unit: str = "it"):
        yield _NullBar()


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass


class TqdmReporter(Reporter):
    def __init__(self, stream=None, color: bool = True):
        self.stream = stream or sys.stderr
        self.color = color

    def event(self, kind: str, **fields) -> None:
        msg = fields.get("message")
        if msg:
            from tqdm.auto import tqdm

            tqdm.write(msg, file=self.stream)

    @contextmanager
    def bar(self, stage: str, total: int | None = None, unit: str = "it"):
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=stage, unit=unit, file=self.stream, leave=False, dynamic_ncols=True,
                  colour=None if not self.color else "green") as b:
            yield b


class JsonReporter(Reporter):
    """One JSON object per line: {"event": kind, "time": ..., ...}."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def event(self, kind: str, **fields) -> None:
        self.stream.write(json.dumps({"event": kind, "time": round(time.time(), 3), **fields}, default=str) + "\n")
        self.stream.flush()

    @contextmanager
    def bar(self, stage: str, total: int | None = None, unit: str = "it"):
        outer = self

        class _Bar:
            n = 0
            last = 0.0

            def update(self, k: int = 1):
                self.n += k
                now = time.monotonic()
                if now - self.last > 1 or (total and self.n >= total):
                    self.last = now
                    outer.event("progress", stage=stage, done=self.n, total=total)

        self.event("stage_start", stage=stage, total=total)
        yield _Bar()
        self.event("stage_end", stage=stage)
