"""The run directory: a build's state under --out/.datatune, so it can stop and continue.

Every file is written atomically (write, then rename), so a kill leaves either the old state or
the new one. Row shards are parquet files, one per completed chunk: a resumed build reuses every
complete shard and recomputes only what is missing, so no row is lost or duplicated.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from .errors import ConfigError, RunStateError
from .records import Row, rows_to_table, table_to_rows

STATE = ".datatune"


class RunDir:
    def __init__(self, out: Path):
        self.out = Path(out)
        self.state = self.out / STATE

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self, fingerprint: str, run_info: dict, *, resume: bool, overwrite: bool) -> bool:
        """Prepare the folder; True when an earlier run with the same inputs is continued."""
        existing = self.read_json("run.json")
        if overwrite and self.out.exists():
            self._clear()
            existing = None
        elif existing is None and self.out.exists() and any(self.out.iterdir()):
            raise RunStateError(f"{self.out} exists and is not a datatune run; choose another --out or pass --overwrite")
        elif existing is not None and existing.get("fingerprint") != fingerprint and not resume:
            raise RunStateError(
                f"{self.out} holds another build ({existing.get('description', '?')[:60]!r}); pass --resume to continue it, "
                "--overwrite to replace it, or choose another --out"
            )
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            probe = self.state / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            raise _os_error(self.out, e) from e
        if existing is None:
            self.write_json("run.json", {"fingerprint": fingerprint, **run_info, "status": "started"})
            return False
        return True

    def _clear(self) -> None:
        for child in self.out.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()

    # -- json state ---------------------------------------------------------------------------
    def read_json(self, name: str):
        p = self.state / name
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text())
        except (json.JSONDecodeError, OSError):
            return None  # a damaged state file is recomputed

    def write_json(self, name: str, obj) -> None:
        p = self.state / name
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        try:
            tmp.write_text(json.dumps(obj, indent=1, default=str))
            os.replace(tmp, p)
        except OSError as e:
            raise _os_error(self.out, e) from e

    def set_status(self, status: str, **fields) -> None:
        run = self.read_json("run.json") or {}
        run.update(status=status, **fields)
        self.write_json("run.json", run)

    # -- row shards ---------------------------------------------------------------------------
    def shard_path(self, source: str, index: int) -> Path:
        safe = source.replace("/", "__").replace(":", "--")
        return self.state / "shards" / safe / f"{index:05d}.parquet"

    def read_shard(self, source: str, index: int) -> list[Row] | None:
        p = self.shard_path(source, index)
        if not p.is_file():
            return None
        try:
            return table_to_rows(pq.read_table(p))
        except Exception:  # noqa: BLE001 - a torn shard is recomputed
            return None

    def write_shard(self, source: str, index: int, rows: list[Row]) -> None:
        p = self.shard_path(source, index)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        try:
            pq.write_table(rows_to_table(rows), tmp)
            os.replace(tmp, p)
        except OSError as e:
            raise _os_error(self.out, e) from e

    def shard_counts(self) -> dict[str, int]:
        root = self.state / "shards"
        if not root.is_dir():
            return {}
        return {d.name: len(list(d.glob("*.parquet"))) for d in sorted(root.iterdir()) if d.is_dir()}


def _os_error(out: Path, e: OSError) -> ConfigError:
    if e.errno == errno.ENOSPC:
        return ConfigError(f"disk full while writing {out}; free space or choose another --out, then re-run with --resume")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ConfigError(f"can't write to {out} ({e.strerror}); choose a writable --out")
    return ConfigError(f"can't write to {out} ({e.strerror or e}); choose another --out")


def fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
