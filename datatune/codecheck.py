"""Code-based verification of numeric answers (UniGen): the LLM writes a program, code runs it.

For a row of a numeric task the LLM sees the problem (never the row's answer) and writes a short
Python program that computes the answer and prints it. The program runs in a child interpreter:

  - `python -I` (isolated: no user site, no PYTHON* variables), a minimal environment, stdin closed,
    a throw-away working directory;
  - its own session and process group, killed as a group (SIGKILL) on timeout and after it ends,
    so programs it spawned do not outlive it;
  - resource limits set before the program runs: address space, CPU seconds, file size, no core;
  - no network: the child enters a new network namespace when the kernel allows it
    (`unshare(CLONE_NEWNET)`, else a user + network namespace), and a guard always replaces the
    socket constructors and resolvers, so creating or connecting a socket raises PermissionError.

The printed number (last line) is compared with the row's label, tolerant of commas, `$`, `%`,
a trailing `.0`, fractions and small float error. verify.py turns the answers into checks
(`code:agree`, `code:disagree:<value>`, `code:error`) and applies the policy.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from .records import Row
from .task import TaskSpec

# Runs in the child before the program: limits, network namespace, socket guard, then the program.
PRELUDE = r'''
import os, sys, resource
_path, _mem, _cpu, _fsize = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with open(_path, encoding="utf-8") as _f:
    _src = _f.read()

def _unshare_net():
    _NEWNET, _NEWUSER = 0x40000000, 0x10000000
    fn = getattr(os, "unshare", None)
    if fn is None:
        import ctypes
        _libc = ctypes.CDLL(None, use_errno=True)
        def fn(flags):
            if _libc.unshare(flags) != 0:
                raise OSError(ctypes.get_errno(), "unshare")
    for flags in (_NEWNET, _NEWUSER | _NEWNET):
        try:
            fn(flags)
            return True
        except (OSError, AttributeError):
            pass
    return False

try:
    _unshare_net()
except Exception:
    pass

for _lim, _soft, _hard in ((resource.RLIMIT_AS, _mem, _mem), (resource.RLIMIT_CPU, _cpu, _cpu + 1),
                           (resource.RLIMIT_FSIZE, _fsize, _fsize), (resource.RLIMIT_CORE, 0, 0)):
    try:
        resource.setrlimit(_lim, (_soft, _hard))
    except (ValueError, OSError):
        pass

import socket as _socket_mod, _socket

def _no_network(*args, **kwargs):
    raise PermissionError("network access is disabled in datatune's code check")

class _NoSocket(_socket_mod.socket):
    def __init__(self, *args, **kwargs):
        _no_network()

class _NoRawSocket(_socket.socket):
    def __init__(self, *args, **kwargs):
        _no_network()

_socket_mod.socket = _socket_mod.SocketType = _NoSocket
_socket.socket = _socket.SocketType = _NoRawSocket
for _m in (_socket_mod, _socket):
    for _n in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo", "gethostbyname",
               "gethostbyname_ex", "gethostbyaddr", "getnameinfo"):
        if hasattr(_m, _n):
            setattr(_m, _n, _no_network)

sys.argv = [_path]
_code = compile(_src, "program.py", "exec")
exec(_code, {"__name__": "__main__", "__file__": _path, "__builtins__": __builtins__})
'''


@dataclass
class ProgramResult:
    status: str  # "ok", "error" (non-zero exit) or "timeout"
    stdout: str
    stderr: str
    returncode: int | None
    seconds: float


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_program(source: str, *, timeout: float = 10.0, memory_mb: int = 1024, max_output_bytes: int = 64_000) -> ProgramResult:
    """Run `source` in an isolated child interpreter; never raises for the program's own failures."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="datatune-code-") as tmp:
        prog = Path(tmp) / "program.py"
        prog.write_text(source, encoding="utf-8")
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        env = {"PATH": os.defpath, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": tmp, "TMPDIR": tmp,
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        cmd = [sys.executable, "-I", "-c", PRELUDE, str(prog), str(memory_mb * 2**20),
               str(max(1, math.ceil(timeout)) + 1), str(max(max_output_bytes * 4, 1 << 20))]
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True, close_fds=True)
            status = "ok"
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                status = "timeout"
            finally:
                _kill_group(proc.pid)  # the program and anything it spawned (same session and group)
                proc.wait()
        if status == "ok" and proc.returncode != 0:
            status = "error"

        def read(p: Path) -> str:  # the end: where the answer and the traceback are
            with open(p, "rb") as f:
                f.seek(max(0, p.stat().st_size - max_output_bytes))
                return f.read(max_output_bytes).decode("utf-8", "replace")

        return ProgramResult(status, read(out_path), read(err_path), proc.returncode, time.monotonic() - start)


# -- numbers -----------------------------------------------------------------------------------
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def parse_number(text: str) -> float | None:
    """The number a program printed or a label states: '1,000' '$5' '42.0' '3/4' '12%' 'Answer: 7'; else None."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    if not lines:
        return None
    line = lines[-1]
    t = line.replace(",", "").replace("$", "").replace("%", "").strip().rstrip(".")
    try:
        v = float(t)
    except ValueError:
        try:
            v = float(Fraction(t.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            found = _NUMBER.findall(line)
            if not found or len(re.sub(r"[\W\d_]+", "", line)) > 40:  # a sentence, not an answer
                return None
            try:
                v = float(found[-1].replace(",", ""))
            except ValueError:
                return None
    return v if math.isfinite(v) else None


def _decimals(label: str) -> int:
    m = re.search(r"\.(\d+)\s*%?\s*$", str(label).strip())
    return len(m.group(1)) if m else 0


def numbers_match(value: float, label: str, *, rel_tol: float = 1e-6) -> bool:
    """`value` equals the label's number, up to float error or the label's own rounding (33.33 for 33.333...)."""
    target = parse_number(label)
    if target is None:
        return False
    if math.isclose(value, target, rel_tol=rel_tol, abs_tol=1e-9):
        return True
    places = _decimals(label)
    return places > 0 and math.isclose(round(value, places), target, rel_tol=rel_tol, abs_tol=1e-9)


def format_number(value: float) -> str:
    """Short and stable: 18.0 -> '18', 0.30000000000000004 -> '0.3'."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


# -- the LLM writes the program ---------------------------------------------------------------
_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)


def extract_program(text: str) -> str:
    """The code of a reply: the first fenced block that prints, else the first block, else the reply."""
    blocks = [b.strip() for b in _FENCE.findall(str(text)) if b.strip()]
    if not blocks:
        return str(text).strip()
    return next((b for b in blocks if "print" in b), blocks[0])


def _clip(text: str, n: int = 2000) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n * 3 // 4] + "\n...\n" + text[-n // 4:]


def program_prompt(spec: TaskSpec, row: Row) -> list[dict]:
    return [
        {"role": "system", "content": "You write short, correct Python 3 programs that compute exact answers."},
        {"role": "user", "content": f"Task: {spec.description}\n\nProblem:\n{_clip(row.input)}\n\n"
                                    "Write a Python program that solves this problem. First assign every quantity the problem "
                                    "gives to a variable, then compute the answer step by step, then print only the final "
                                    "answer as a single number (no units, no words). Use only the standard library; no "
                                    "input(), files or network. Reply with one ```python block."},
    ]


def _feedback(res: ProgramResult | None, timeout: float) -> str:
    if res is None:
        return "The reply held no program."
    if res.status == "timeout":
        return f"The program did not finish within {timeout:g} seconds."
    if res.status == "error":
        err = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        return f"The program failed: {err[-1].strip()[:300] if err else f'exit status {res.returncode}'}."
    return f"The program printed {res.stdout.strip()[-200:]!r}, not a single number."


def code_answers(rows: Sequence[Row], spec: TaskSpec, llm, *, temperature: float = 0.0, stage: str = "verify",
                 timeout: float = 10.0, memory_mb: int = 1024, workers: int | None = None,
                 repairs: int = 1, spare_calls: int | None = None) -> list[str | None]:
    """One program per row, written by the LLM and run: the printed number (formatted), or None on any failure.

    A program that fails (an exception, a timeout, no number printed) goes back to the LLM with what went
    wrong, up to `repairs` times, using at most `spare_calls` requests beyond the first one per row.
    """
    prompts = [program_prompt(spec, r) for r in rows]
    replies = llm.text_many(prompts, stage=stage, max_tokens=600, temperature=temperature)
    answers: list[str | None] = [None] * len(rows)

    def run(reply) -> tuple[str | None, str | None]:  # (answer, feedback for a repair)
        if isinstance(reply, Exception):
            return None, None
        code = extract_program(reply)
        if not code.strip():
            return None, _feedback(None, timeout)
        res = run_program(code, timeout=timeout, memory_mb=memory_mb)
        v = parse_number(res.stdout) if res.status == "ok" else None
        return (format_number(v), None) if v is not None else (None, _feedback(res, timeout))

    with ThreadPoolExecutor(max_workers=workers or max(1, min(4, os.cpu_count() or 1))) as pool:
        todo = list(range(len(rows)))
        convo = [list(m) for m in prompts]
        for attempt in range(repairs + 1):
            got = list(pool.map(run, [replies[i] for i in todo]))
            retry = []
            for i, (answer, feedback) in zip(todo, got):
                answers[i] = answer
                if answer is None and feedback is not None:
                    convo[i] += [{"role": "assistant", "content": str(replies[i])[:3000]},
                                 {"role": "user", "content": f"{feedback} Fix it and reply with the whole corrected program in one ```python block."}]
                    retry.append(i)
            if spare_calls is not None:
                retry = retry[:max(0, spare_calls)]
                spare_calls -= len(retry)
            if attempt == repairs or not retry:
                break
            fixed = llm.text_many([convo[i] for i in retry], stage=stage, max_tokens=600, temperature=temperature)
            for i, reply in zip(retry, fixed):
                replies[i] = reply
            todo = retry
    return answers
