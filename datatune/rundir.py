"""The run directory: a build's state under --out/.datatune, so it can stop and continue.

Every file is written atomically (write, then rename), so a kill leaves either the old state or
the new one. Row shards are parquet files, one per completed chunk, named with the run's
fingerprint: a resumed build reuses every complete shard of the same inputs and recomputes only
what is missing, so no row is lost or duplicated, and a shard of another build is never read.

Safety: a build takes a lock on the folder (.datatune/lock) for as long as it runs, so a second
build on the same --out fails at once. `--overwrite` clears only a folder that holds a datatune
run, and only what datatune wrote there (the paths in .datatune/outputs.json and datatune's own
file names), never following a symlink: a folder that is not a run is never touched.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import threading
import weakref
from pathlib import Path, PurePosixPath

import pyarrow.parquet as pq

from .core.errors import ConfigError, RunStateError
from .core.files import atomic_path, atomic_write_text
from .records import Row, rows_to_table, table_to_rows

STATE = ".datatune"
LOCK = "lock"
OUTPUTS = "outputs.json"

# What a build writes beside the state (output.py, quality.py's plots, report.py): cleared by
# --overwrite with the paths recorded in .datatune/outputs.json (runs of older versions kept no record).
KNOWN_OUTPUTS = ("README.md", "plans.json", "manifest.json", "report.html", "quality.json",
                 "plots/label_distribution.png", "plots/embedding_projection.png")
KNOWN_OUTPUT_GLOBS = ("data/*-?????-of-?????.parquet",)

# open RunDirs of this process by lock path, with the thread that opened each: the file lock is
# per process, so two builds of one process on one folder are told apart by thread
_OPEN: dict[str, weakref.WeakSet] = {}
_OPEN_GUARD = threading.Lock()


class RunDir:
    def __init__(self, out: Path):
        self.out = Path(out)
        self.state = self.out / STATE
        self.fingerprint: str | None = None
        self._lock = None
        self._thread: int | None = None
        self.notice: str | None = None  # set by open() when it replaced an unfinished run of other inputs

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self, fingerprint: str, run_info: dict, *, resume: bool, overwrite: bool) -> bool:
        """Prepare and lock the folder; True when an earlier run with the same inputs is continued.

        The lock is held until `close()` (also called by `set_status("done")`, or when this
        object is garbage-collected, e.g. when the build function returns or the process ends).
        """
        self._check_folder()
        try:
            self.state.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _os_error(self.out, e) from e
        self._acquire()
        try:
            existing = self.read_json("run.json")
            if overwrite and existing is not None:
                self._clear()
                existing = None
            elif existing is not None and existing.get("fingerprint") != fingerprint:
                what = f"{self.out} holds a different build ({str(existing.get('description', '?'))[:60]!r})"
                if resume:
                    raise RunStateError(f"{what}, made with other inputs, so --resume can't continue it; use another --out or --overwrite to replace it")
                if existing.get("status") == "done":
                    raise RunStateError(f"{what}; choose another --out or pass --overwrite to replace it")
                # a run that failed or was killed (its lock is free): it wrote no dataset, and its state
                # is of other inputs, so nothing of it can be continued; it must not block the retry
                self._clear(keep=("shards",))  # shards are named by their run's fingerprint: kept for its own inputs
                self.notice = (f"{self.out} held an unfinished build with other inputs ({str(existing.get('description', '?'))[:60]!r}, "
                               "never finished): replaced by this one; to continue a run, re-run it with its own inputs")
                existing = None
            try:
                probe = self.state / ".write-test"
                probe.write_text("ok")
                probe.unlink()
            except OSError as e:
                raise _os_error(self.out, e) from e
            self.fingerprint = fingerprint
            if existing is None:
                self.write_json("run.json", {"fingerprint": fingerprint, **run_info, "status": "started"})
                return False
            return True
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the folder's lock (a no-op when not held)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            with _OPEN_GUARD:
                _OPEN.get(str(lock.lock_file), weakref.WeakSet()).discard(self)
            try:
                lock.release()
            except Exception:  # noqa: BLE001 - releasing never fails a finished build
                pass

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the lock goes with the process
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_folder(self) -> None:
        """One line, before anything is written, for an --out that must not be used or cleared."""
        out = self.out
        try:
            resolved, home = out.expanduser().resolve(), Path.home().resolve()
        except (OSError, RuntimeError, KeyError):
            resolved, home = out, None
        if (resolved.anchor and resolved == Path(resolved.anchor)) or resolved == home:
            raise RunStateError(f"{out} is {'the root' if resolved == Path(resolved.anchor) else 'your home'} folder; choose another --out (a new folder for this build)")
        if out.exists() and not out.is_dir():
            raise RunStateError(f"{out} is a file, not a folder; choose another --out")
        if not out.is_dir():
            return  # created by open()
        if self.state.is_symlink() or (self.state.exists() and not self.state.is_dir()):
            raise RunStateError(f"{out} is not a datatune run ({STATE} is not a folder); choose another --out")
        if (self.state / "run.json").is_file():
            return
        try:
            children = [c for c in out.iterdir() if c.name != STATE]
            state_children = [c for c in self.state.iterdir() if c.name not in (LOCK, ".write-test")] if self.state.is_dir() else []
        except OSError as e:
            raise _os_error(out, e) from e
        if children or state_children:
            raise RunStateError(f"{out} is not empty and holds no datatune run; choose another --out (a new or empty folder)")

    def _acquire(self) -> None:
        from filelock import FileLock, Timeout

        path = self.state / LOCK
        key = str(path)
        me = threading.get_ident()
        alive = {t.ident for t in threading.enumerate()}
        with _OPEN_GUARD:
            holders = _OPEN.setdefault(key, weakref.WeakSet())
            # an open RunDir of this thread can't be running (a thread runs one build at a time):
            # it is left over from a build that raised; one of another live thread is running
            if any(r._thread != me and r._thread in alive for r in holders):
                raise RunStateError(f"{self.out} is in use by another datatune build; wait for it to finish or choose another --out")
            try:
                lock = FileLock(key, timeout=0, thread_local=False, is_singleton=True)
                lock.acquire()
            except Timeout:
                raise RunStateError(f"{self.out} is in use by another datatune build; wait for it to finish or choose another --out") from None
            except OSError as e:
                raise _os_error(self.out, e) from e
            self._lock, self._thread = lock, me
            holders.add(self)

    def _clear(self, keep: tuple[str, ...] = ()) -> None:
        """Remove what earlier runs wrote (recorded outputs, datatune's file names, the state), nothing else;
        `keep`: names in the state folder left in place."""
        for rel in sorted(self.outputs()):
            p = self._inside(rel)
            if p is not None and p.is_file() and not p.is_symlink():
                self._remove(p.unlink)
        for d in ("data", "plots"):
            p = self.out / d
            if p.is_dir() and not p.is_symlink():
                try:
                    p.rmdir()  # only when empty: what else is there is not ours
                except OSError:
                    pass
        for child in self.state.iterdir():
            if child.name == LOCK or child.name in keep:
                continue
            # rmtree does not follow symlinks inside
            self._remove((lambda c=child: shutil.rmtree(c)) if child.is_dir() and not child.is_symlink() else child.unlink)

    def _remove(self, delete) -> None:
        """Run one deletion: already gone is fine, any other OS error is one line naming the folder."""
        try:
            delete()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise _os_error(self.out, e) from e

    # -- what the run wrote -------------------------------------------------------------------
    def outputs(self) -> set[str]:
        """Relative paths datatune wrote in the folder: the record plus its own file names."""
        found = set(KNOWN_OUTPUTS)
        for pattern in KNOWN_OUTPUT_GLOBS:
            found |= {p.relative_to(self.out).as_posix() for p in self.out.glob(pattern)}
        rec = self.read_json(OUTPUTS)
        if isinstance(rec, list):
            found |= {r for r in rec if isinstance(r, str)}
        return {r for r in found if self._inside(r) is not None}

    def record_outputs(self, paths) -> None:
        """Add relative paths to .datatune/outputs.json (only in a folder that holds a run)."""
        if not (self.state / "run.json").is_file():
            return
        rec = self.read_json(OUTPUTS)
        have = {r for r in rec if isinstance(r, str)} if isinstance(rec, list) else set()
        new = {PurePosixPath(Path(p).as_posix()).as_posix() for p in paths}
        if not new - have:
            return
        self.write_json(OUTPUTS, sorted(have | new))

    def _inside(self, rel: str) -> Path | None:
        """`out/rel` when rel is a plain relative path and no folder on the way is a symlink."""
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or any(x in ("", ".", "..") for x in parts) or "\\" in rel:
            return None
        p = self.out
        for part in parts[:-1]:
            p = p / part
            try:
                if stat.S_ISLNK(os.lstat(p).st_mode):
                    return None
            except OSError:
                return None
        return p / parts[-1]

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
        try:
            atomic_write_text(p, json.dumps(obj, indent=1, default=str))
        except OSError as e:
            raise _os_error(self.out, e) from e

    def set_status(self, status: str, **fields) -> None:
        run = self.read_json("run.json") or {}
        run.update(status=status, **fields)
        self.write_json("run.json", run)
        if status == "done":
            self.close()

    # -- row shards ---------------------------------------------------------------------------
    def _run_fingerprint(self) -> str:
        if self.fingerprint is None:  # not opened (e.g. `datatune status`): the recorded run's
            self.fingerprint = str((self.read_json("run.json") or {}).get("fingerprint") or "none")
        return self.fingerprint

    def shard_path(self, source: str, index: int) -> Path:
        safe = source.replace("/", "__").replace(":", "--")
        return self.state / "shards" / safe / f"{self._run_fingerprint()}-{index:05d}.parquet"

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
        try:
            with atomic_path(p) as tmp:
                pq.write_table(rows_to_table(rows), tmp)
        except OSError as e:
            raise _os_error(self.out, e) from e

    def shard_counts(self) -> dict[str, int]:
        root = self.state / "shards"
        if not root.is_dir():
            return {}
        fp = self._run_fingerprint()
        return {d.name: len(list(d.glob(f"{fp}-*.parquet"))) for d in sorted(root.iterdir()) if d.is_dir()}


def record_outputs(out: Path, paths) -> None:
    """Record files written in `out` (relative paths) in its run state, when it holds a run."""
    try:
        RunDir(out).record_outputs(paths)
    except ConfigError:
        pass  # the record is a help for --overwrite, never a reason to fail a written output


def _os_error(out: Path, e: OSError) -> ConfigError:
    if e.errno == errno.ENOSPC:
        return ConfigError(f"disk full while writing {out}; free space or choose another --out, then re-run with --resume")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ConfigError(f"can't write to {out} ({e.strerror}); choose a writable --out")
    return ConfigError(f"can't write to {out} ({e.strerror or e}); choose another --out")


def fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
