"""Writing files that other processes read: atomically, and under a lock where writers may race.

Every write goes to a temp file with a unique name (`tempfile`) in the target's own folder, so two
writers never share a temp file, and `os.replace` puts it in place in one step: a reader sees the old
file or the new one, never half of one. `fsync=True` also survives a power cut (the data reaches the
disk before the rename).

`locked(path)` serialises writers of one shared thing (the retrieval index folder, a cache) across
processes with a `filelock.FileLock` on `path + ".lock"`; waiting longer than `timeout` raises
`LockTimeout`, a one-line error that names the lock file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

import filelock

from .errors import DatatuneError

DEFAULT_LOCK_TIMEOUT = 600.0  # seconds: an index build or a model assembly can take minutes


class LockTimeout(DatatuneError, TimeoutError):
    """Another process held a lock longer than the timeout (a DatatuneError: the CLI prints its one line)."""


def _temp_in(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """A unique temp path beside `path` for a writer that wants a file name (`pq.write_table`,
    `np.save`); it replaces `path` when the block ends without an error and is removed otherwise.
    The parent folder is created if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_in(path)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        _keep_mode(tmp, path)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, fsync: bool = False, encoding: str | None = None) -> Iterator[IO]:
    """An open temp file beside `path`; when the block ends without an error it is flushed (and
    fsynced with `fsync=True`) and replaces `path`; on an error `path` is left as it was."""
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_open writes a whole file: mode 'w' or 'wb', not {mode!r}")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> None:
    """Write `data` to `path` atomically (see the module docstring)."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8", fsync: bool = False) -> None:
    """Write `text` to `path` atomically (see the module docstring)."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_text(text, encoding=encoding)


def _keep_mode(tmp: Path, path: Path) -> None:
    """mkstemp makes 0600 files; give the new file the old one's mode, or the umask's default."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of `path`: `path + ".lock"`, beside it."""
    return Path(f"{os.fspath(path)}.lock")


@contextlib.contextmanager
def locked(path: str | os.PathLike, *, timeout: float = DEFAULT_LOCK_TIMEOUT, what: str | None = None,
           beside: bool = True) -> Iterator[None]:
    """Hold the inter-process lock of `path` (a `filelock.FileLock` on `path + ".lock"`) for the block.

    `beside=False` keeps the lock file out of `path`'s folder (for a folder that must hold only its own
    files): it goes in the system temp folder, named by a hash of `path`, so it serialises the processes
    of one machine. Re-entrant in one process. Raises `LockTimeout` after `timeout` seconds of waiting
    for another holder (`timeout=0`: fail at once if it is held)."""
    if beside:
        lp = lock_path(path)
    else:
        digest = hashlib.sha256(os.fsencode(os.path.abspath(path))).hexdigest()[:16]
        lp = Path(tempfile.gettempdir()) / "datatune-locks" / f"{Path(path).name}-{digest}.lock"
    lp.parent.mkdir(parents=True, exist_ok=True)
    # one instance per lock file in this process (is_singleton), so a nested `locked(path)` re-enters
    # instead of waiting for itself; other threads and processes wait
    lock = filelock.FileLock(str(lp), is_singleton=True)
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise LockTimeout(
            f"{what or path} is being written by another process (lock {lp} held for more than {timeout:g}s); "
            f"wait for it to finish and run the command again"
        ) from None
    try:
        yield
    finally:
        lock.release()
