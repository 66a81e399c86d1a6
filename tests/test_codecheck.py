"""Code-based verification of numeric answers: the sandbox, number parsing, policies; the real model on arithmetic."""

from __future__ import annotations

import os
import re
import secrets
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import datatune
from datatune import codecheck
from datatune.codecheck import SandboxUnavailable, extract_program, format_number, numbers_match, parse_number, run_program
from datatune.records import Row
from datatune.task import TaskSpec
from datatune.verify import verify_rows

from .conftest import last_user

SPEC = TaskSpec(description="Solve grade-school math word problems; the answer is a number", output_kind="number")


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for a reaper (it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def named(comm: str) -> list[int]:
    """Host pids of live processes whose name (prctl PR_SET_NAME) is `comm`."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == comm and not gone(int(entry)):
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def name_myself(comm: str) -> str:
    """Program lines that give the sandboxed process a name the host can find it by."""
    return f"import ctypes\nctypes.CDLL(None).prctl(15, {comm.encode()!r}, 0, 0, 0)\n"


@pytest.fixture(autouse=True)
def sandbox_works():
    problem = codecheck.sandbox_problem()
    if problem and os.environ.get("CI"):
        pytest.fail(problem)  # CI must exercise the sandbox, not skip it
    if problem:
        pytest.skip(problem)


# -- the sandbox: a program that should work -----------------------------------------------------
def test_a_correct_program_prints_its_answer():
    res = run_program("print(2 + 3)")
    assert res.status == "ok" and res.stdout.strip() == "5", res
    res = run_program("from fractions import Fraction\nimport math, statistics, decimal\napples = 3 * 12\n"
                      "print(apples - 5 + int(math.sqrt(statistics.mean([0, 0])) + Fraction(0)))")
    assert res.status == "ok" and parse_number(res.stdout) == 31, res


def test_threads_still_work():
    res = run_program("import threading\nout = []\nts = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]\n"
                      "[t.start() for t in ts]\n[t.join() for t in ts]\nprint(sum(out))")
    assert res.status == "ok" and res.stdout.strip() == "6", res


def test_long_output_keeps_its_last_line():
    res = run_program("for i in range(50000):\n    print('working', i)\nprint(12345)")
    assert res.status == "ok" and parse_number(res.stdout) == 12345


def test_output_is_limited():
    res = run_program("import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 100_000 + '\\n')\nprint(7)", max_output_bytes=1000)
    assert res.status == "error" and "File too large" in res.stderr, res  # RLIMIT_FSIZE: at most 1 MiB written
    assert len(res.stdout) <= 1000


def test_memory_is_limited():
    res = run_program("x = bytearray(3 * 1024 ** 3)\nprint(len(x))", memory_mb=512)
    assert res.status == "error" and "MemoryError" in res.stderr


# -- the sandbox: hostile programs (issue 15) ----------------------------------------------------
def test_a_program_that_sleeps_forever_is_killed_even_in_a_new_session():
    comm = "dtsleep" + secrets.token_hex(3)
    prog = name_myself(comm) + (
        "import os, time\nos.setsid()\n"
        "try:\n    pid = os.fork()\nexcept OSError as e:\n    print('fork refused:', e, flush=True)\n"
        "else:\n    print('ESCAPED: forked', pid, flush=True)\n"
        "while True:\n    time.sleep(1)\n"
    )
    t = time.monotonic()
    res = run_program(prog, timeout=2)
    took = time.monotonic() - t
    assert res.status == "timeout", res
    assert took < 6, took
    assert "fork refused" in res.stdout and "ESCAPED" not in res.stdout, res
    deadline = time.monotonic() + 3
    while named(comm) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not named(comm)


def test_the_host_sees_an_unprivileged_process_in_its_own_namespaces(monkeypatch):
    """Seen from outside while it runs: nobody (when we are root), other namespaces, an empty environment."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-" + secrets.token_hex(8))
    comm = "dtprobe" + secrets.token_hex(3)
    got = {}
    runner = threading.Thread(target=lambda: got.update(res=run_program(name_myself(comm) + "import time\ntime.sleep(60)", timeout=3)))
    runner.start()
    try:
        deadline = time.monotonic() + 3.5
        while not named(comm) and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = named(comm)
        assert len(pids) == 1, pids
        pid = pids[0]
        uids = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split("\n")[0].split()
        caps = Path(f"/proc/{pid}/status").read_text().split("CapEff:")[1].split()[0]
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        ns = {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in ("user", "mnt", "pid", "net", "ipc", "uts")}
    finally:
        runner.join()
    if os.geteuid() == 0:
        assert set(uids) == {"65534"}, uids  # nobody on the host, not root in a user namespace
    else:
        assert set(uids) == {str(os.geteuid())}
    assert int(caps, 16) == 0
    assert sorted(e.split(b"=")[0] for e in environ if e) == [b"HOME", b"LANG", b"PATH"]
    for n, link in ns.items():
        assert link != os.readlink(f"/proc/self/ns/{n}"), n
    assert got["res"].status == "timeout"


HOME_FILES = [str(p) for p in sorted(Path.home().iterdir())[:20] if p.is_file()]


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("the host's secret")
    return path


@pytest.mark.parametrize("probe", ["read", "list", "write", "processes", "setns", "environment", "fork bomb"])
def test_a_hostile_program_fails(probe, secret_file, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-" + secrets.token_hex(8))
    monkeypatch.setenv("HF_TOKEN", "hf_test_" + secrets.token_hex(8))
    source_file = Path(codecheck.__file__).resolve()
    before = source_file.stat().st_mtime_ns
    me = os.getpid()
    prog = {
        # the filesystem: nothing of the host beyond the interpreter
        "read": f"for p in {['/etc/passwd', '/etc/shadow', '/etc/hostname', str(secret_file), str(source_file), *HOME_FILES]!r}:\n"
                "    try:\n        print('ESCAPED: read', p, open(p).read()[:40])\n    except OSError as e:\n        print('refused', p, e)\n",
        "list": f"import os\nfor d in ['/etc', '/home', '/work', '/proc', '/sys', {str(secret_file.parent)!r}, {str(Path(datatune.__file__).parent)!r}]:\n"
                "    try:\n        print('ESCAPED: listed', d, os.listdir(d)[:5])\n    except OSError as e:\n        print('refused', d, e)\n"
                f"print('home', os.listdir({str(Path.home())!r}) if os.path.isdir({str(Path.home())!r}) else [])\n"
                "print('site-packages', os.listdir(os.path.join(os.path.dirname(os.__file__), 'site-packages')))\n"
                "for m in ['datatune', 'pytest', 'numpy']:\n    try:\n        __import__(m)\n        print('ESCAPED: imported', m)\n"
                "    except ImportError as e:\n        print('refused', e)\n",
        "write": f"import os, sys\nfor p in [{str(source_file)!r}, '/evil', '/usr/evil', os.__file__, sys.executable, '/root/evil', {str(secret_file)!r}]:\n"
                 "    try:\n        open(p, 'a').write('# pwned')\n        print('ESCAPED: wrote', p)\n    except OSError as e:\n        print('refused', p, e)\n",
        # no new processes, however started
        "processes": "import os, subprocess, sys\n"
                     "for name, start in [('subprocess', lambda: subprocess.run([sys.executable, '-c', 'print(1)'])),\n"
                     "                    ('fork', os.fork), ('posix_spawn', lambda: os.posix_spawn(sys.executable, [sys.executable, '-c', '1'], {})),\n"
                     "                    ('system', lambda: os.system('true')), ('setsid+fork', lambda: (os.setsid(), os.fork()))]:\n"
                     "    try:\n        r = start()\n        print('ESCAPED:', name, r) if name != 'system' or r == 0 else print('refused', name, r)\n"
                     "    except OSError as e:\n        print('refused', name, e)\n",
        # the parent's namespaces: no /proc of the host, no mount of a proc, no setns or unshare
        "setns": "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                 f"for p in ['/proc/1/ns/net', '/proc/{me}/ns/net', '/proc/self/ns/net']:\n"
                 "    try:\n        fd = os.open(p, os.O_RDONLY)\n    except OSError as e:\n        print('refused open', p, e)\n        continue\n"
                 "    print('ESCAPED: setns', p, libc.setns(fd, 0x40000000) == 0)\n"
                 "os.makedirs('/tmp/p', exist_ok=True)\n"
                 "print('ESCAPED: mounted proc' if libc.mount(b'proc', b'/tmp/p', b'proc', 0, None) == 0 else 'refused mount', ctypes.get_errno())\n"
                 "print('ESCAPED: unshare' if libc.unshare(0x10000000 | 0x40000000) == 0 else 'refused unshare', ctypes.get_errno())\n"
                 "print('ESCAPED: setns on stdin' if libc.setns(0, 0) == 0 else 'refused setns', ctypes.get_errno())\n",
        # nothing of the parent's environment, neither inherited nor read from /proc
        "environment": "import os\nprint(sorted(os.environ))\n"
                       f"for p in ['/proc/{me}/environ', '/proc/{os.getppid()}/environ', '/proc/1/environ']:\n"
                       "    try:\n        print('ESCAPED: read', p, open(p).read())\n    except OSError as e:\n        print('refused', p, e)\n",
        "fork bomb": "import os\nwhile True:\n    os.fork()\n",
    }[probe]
    t = time.monotonic()
    res = run_program(prog, timeout=5)
    assert time.monotonic() - t < 5, res
    assert "ESCAPED" not in res.stdout, res.stdout
    assert res.status in ("ok", "error"), res
    assert os.environ["OPENAI_API_KEY"] not in res.stdout + res.stderr
    assert os.environ["HF_TOKEN"] not in res.stdout + res.stderr
    assert source_file.stat().st_mtime_ns == before and "pwned" not in source_file.read_text()
    assert secret_file.read_text() == "the host's secret"
    if probe == "environment":
        assert "['HOME', 'LANG', 'PATH']" in res.stdout, res.stdout
    if probe == "list":  # the home directory, if the interpreter lives under it, holds only the way to it
        home = re.search(r"^home (.*)$", res.stdout, re.M).group(1)
        assert "site-packages []" in res.stdout, res.stdout
        assert home in ("[]", f"[{Path(sys.base_prefix).relative_to(Path.home()).parts[0]!r}]" if Path(sys.base_prefix).is_relative_to(Path.home()) else "[]"), home
    if probe == "processes":
        assert res.stdout.count("refused") == 5, res.stdout
    if probe == "fork bomb":
        assert res.status == "error" and "PermissionError" in res.stderr, res


@pytest.fixture
def listener():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.5)
    yield srv, srv.getsockname()[1]
    srv.close()


@pytest.fixture
def unix_listener(tmp_path):
    path = tmp_path / "host.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    name = "\0datatune-test-" + secrets.token_hex(6)
    abstract.bind(name)
    for s in (srv, abstract):
        s.listen(8)
        s.settimeout(0.5)
    yield (srv, str(path)), (abstract, name)
    srv.close()
    abstract.close()


def connections(srv) -> int:
    n = 0
    while True:
        try:
            conn, _ = srv.accept()
        except (socket.timeout, BlockingIOError):
            return n
        conn.close()
        n += 1


@pytest.mark.parametrize("how", ["socket", "create_connection", "raw _socket", "urllib", "the guard's base class"])
def test_a_program_cannot_reach_a_listening_socket(listener, how):
    srv, port = listener
    prog = {
        "socket": f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))\nprint('connected')",
        "create_connection": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')",
        "raw _socket": f"import _socket\ns = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)\ns.connect(('127.0.0.1', {port}))\nprint('connected')",
        "urllib": f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)\nprint('connected')",
        # the one line that undid the old Python guard
        "the guard's base class": f"import socket\ns = socket.socket.__mro__[1](socket.AF_INET, socket.SOCK_STREAM)\ns.connect(('127.0.0.1', {port}))\nprint('connected')",
    }[how]
    res = run_program(prog, timeout=5)
    assert res.status == "error" and "connected" not in res.stdout, res
    assert "Operation not permitted" in res.stderr, res  # refused at socket(), by the seccomp filter
    assert connections(srv) == 0


def test_a_program_cannot_reach_a_host_unix_socket(unix_listener):
    (srv, path), (abstract, name) = unix_listener
    prog = (
        "import socket\n"
        f"for addr in [{path!r}, {name!r}]:\n"
        "    try:\n        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n        s.connect(addr)\n        print('ESCAPED: connected', addr)\n"
        "    except OSError as e:\n        print('refused', e)\n"
    )
    res = run_program(prog, timeout=5)
    assert res.status == "ok" and res.stdout.count("refused") == 2 and "ESCAPED" not in res.stdout, res
    assert connections(srv) == 0 and connections(abstract) == 0


# -- no sandbox, no code check -------------------------------------------------------------------
def test_without_the_os_sandbox_nothing_runs(monkeypatch, tmp_path):
    """The kernel refuses the id maps (as it would refuse an unprivileged user namespace): a clear reason, no run."""
    monkeypatch.setattr(codecheck, "_probe", [])
    monkeypatch.setattr(codecheck, "_ids", lambda: (None, None, "0 0 1\n0 0 1\n", "0 0 1\n0 0 1\n"))
    problem = codecheck.sandbox_problem()
    assert problem and "code checks are refused" in problem and "id maps" in problem, problem
    marker = tmp_path / "ran"
    res = run_program(f"open({str(marker)!r}, 'w').write('ran')\nprint(5)")
    assert res.status == "unavailable" and res.stdout == "" and problem in res.stderr
    assert not marker.exists()


def test_without_the_os_sandbox_verify_leaves_rows_unchecked(monkeypatch, fake_llm):
    monkeypatch.setattr(codecheck, "_probe", ["code checks are refused: testing"])
    llm, ep = fake_llm(fake_programs)
    with pytest.raises(SandboxUnavailable):
        codecheck.code_answers(rows(), SPEC, llm)
    res = verify_rows(rows(), SPEC, llm, policy="drop")
    assert not ep.requests  # nothing asked of the LLM either
    assert [r.check for r in res.rows] == [""] * 5 and res.counts["unchecked"] == 5 and not res.dropped
    assert "code checks are refused: testing" in res.note  # the reason reaches the card


# -- numbers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("42", 42), ("42.0", 42), ("1,000", 1000), ("$5", 5), ("12%", 12), ("3/4", 0.75), ("-7.5\n", -7.5),
    ("step 1\nstep 2\n18", 18), ("Answer: 7", 7), ("18.", 18),
    ("hello world", None), ("", None), ("nan", None), ("The train went far and then it stopped at the station 3 times today", None),
])
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_numbers_match_is_tolerant_of_format_and_float_error():
    assert numbers_match(0.1 + 0.2, "0.3")
    assert numbers_match(1000.0, "1,000") and numbers_match(18.0, "18") and numbers_match(18, "18.0")
    assert numbers_match(33.333333, "33.33")  # the label's own rounding
    assert not numbers_match(41, "42") and not numbers_match(3.4, "3") and not numbers_match(1, "one")
    assert format_number(18.0) == "18" and format_number(0.1 + 0.2) == "0.3" and format_number(-2.5) == "-2.5"


def test_extract_program():
    reply = "Here is the code:\n```python\nx = 2\nprint(x * 3)\n```\nIt prints 6."
    assert extract_program(reply) == "x = 2\nprint(x * 3)"
    assert extract_program("print(1)") == "print(1)"
    assert extract_program("```\nprint(2)") == "print(2)"  # cut off before the closing fence


# -- the stage, with a fake LLM writing the programs -------------------------------------------------
PROGRAMS = {
    "Tom has 3 boxes of 12 apples and eats 5. How many apples are left?": "print(3 * 12 - 5)",
    "A shirt costs $8 and a hat costs $4.50. What do both cost?": "```python\nprint(8 + 4.50)\n```",
    "Sara reads 20 pages a day for 6 days. How many pages does she read?": "```python\ntotal = 20 * 6\nprint(total)\n```",
    "What is half of 9?": "print('I do not know')",
    "How many legs do 4 cats have?": "```python\nraise ValueError('oops')\n```",
}
LABELS = ["31", "12.5", "1,200", "4.5", "16"]  # the third is wrong (the program says 120)


def problem_of(body) -> str:
    first_user = [m["content"] for m in body["messages"] if m["role"] == "user"][0]
    return re.search(r"Problem:\n(.*?)\n\nWrite", first_user, re.S).group(1)


def fake_programs(body):
    assert "response_format" not in body
    return PROGRAMS[problem_of(body)]


def rows():
    return [Row(q, lb, "openai/gsm8k", "main", "train", i) for i, (q, lb) in enumerate(zip(PROGRAMS, LABELS))]


def test_code_check_agrees_catches_a_wrong_answer_and_reports_errors(fake_llm):
    llm, ep = fake_llm(fake_programs)
    res = verify_rows(rows(), SPEC, llm, policy="flag")
    assert [r.check for r in res.rows] == ["code:agree", "code:agree", "code:disagree:120", "code:error", "code:error"]
    assert [r.output for r in res.rows] == LABELS
    assert res.counts == Counter({"checked": 5, "agree": 2, "disagree": 1, "error": 2})
    assert all(LABELS[2] not in str(b["messages"]) for b in ep.requests)  # blind
    # the two failing programs went back once with what went wrong
    repairs = [b for b in ep.requests if len(b["messages"]) > 2]
    assert len(ep.requests) == 7 and len(repairs) == 2
    feedback = sorted(last_user(b) for b in repairs)
    assert feedback[0].startswith("The program failed: ValueError: oops.")
    assert feedback[1].startswith("The program printed 'I do not know', not a single number.")


def test_a_failing_program_is_repaired_with_its_error(fake_llm):
    def handler(body):
        if problem_of(body) == "What is half of 9?" and "failed: NameError" in last_user(body):
            return "```python\nnine = 9\nprint(nine / 2)\n```"
        if problem_of(body) == "What is half of 9?":
            return "```python\nprint(nine / 2)\n```"
        return fake_programs(body)

    llm, ep = fake_llm(handler)
    res = verify_rows(rows()[3:4], SPEC, llm)
    assert res.rows[0].check == "code:agree" and len(ep.requests) == 2
    llm, ep = fake_llm(handler)
    res = verify_rows(rows()[3:4], SPEC, llm, repairs=0)
    assert res.rows[0].check == "code:error" and len(ep.requests) == 1


def test_code_check_relabel_and_drop(fake_llm):
    llm, _ = fake_llm(fake_programs)
    res = verify_rows(rows(), SPEC, llm, policy="relabel")
    assert res.rows[2].output == "120" and res.rows[2].check == "code:relabelled:1,200"
    res = verify_rows(rows(), SPEC, llm, policy="drop")
    assert len(res.rows) == 4 and res.dropped == Counter({"answer_disagrees": 1})
    assert [r.check for r in res.rows].count("code:error") == 2  # errors are kept...
    res = verify_rows(rows(), SPEC, llm, policy="drop", drop_errors=True)
    assert len(res.rows) == 2 and res.dropped == Counter({"answer_disagrees": 1, "answer_unverified": 2})  # ...unless asked


def test_code_check_budget_and_votes(fake_llm):
    llm, ep = fake_llm(fake_programs)
    res = verify_rows(rows(), SPEC, llm, max_calls=2)
    assert len(ep.requests) == 2 and sum(bool(r.check) for r in res.rows) == 2 and res.counts["unchecked"] == 3
    llm, ep = fake_llm(fake_programs)
    res = verify_rows(rows(), SPEC, llm, max_calls=6)  # 5 first programs, 1 repair left of the 2 wanted
    assert len(ep.requests) == 6 and res.calls == 6 and res.counts["checked"] == 5
    llm, ep = fake_llm(fake_programs)
    res = verify_rows(rows(), SPEC, llm, votes=3, repairs=0)
    # extra votes only for the rows whose first program disagreed or failed
    assert Counter(b["temperature"] for b in ep.requests) == Counter({0: 5, 0.7: 3, 0.8: 3})
    assert res.rows[2].check == "code:disagree:120"


def test_a_label_that_is_not_a_number_is_an_error_without_a_call(fake_llm):
    llm, ep = fake_llm(fake_programs)
    r = Row(next(iter(PROGRAMS)), "many")
    res = verify_rows([r], SPEC, llm)
    assert res.rows[0].check == "code:error" and not ep.requests


# -- the real embedded model ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_llm(tmp_path_factory):
    from datatune.core.settings import Settings
    from datatune.llm import ResponseCache, open_llm

    llm = open_llm(Settings(use_cache=False))
    llm.cache = ResponseCache(tmp_path_factory.mktemp("llm-cache"))
    return llm  # the embedded server is shared by the session and stopped at exit


@pytest.mark.slow
@pytest.mark.embedded
def test_real_model_code_check_catches_a_wrong_arithmetic_label(real_llm):
    problems = [
        ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
         "How many clips did Natalia sell altogether in April and May?", "72"),
        ("A baker makes 24 muffins in each batch. He bakes 5 batches and sells 97 muffins. "
         "How many muffins does he have left?", "33"),  # wrong: 24 * 5 - 97 = 23
        ("Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. "
         "Her parents decided to give her $15 for that purpose, and her grandparents twice as much as her parents. "
         "How much more money does Betty need to buy the wallet?", "5"),
    ]
    rows_ = [Row(q, a, "openai/gsm8k", "main", "train", i) for i, (q, a) in enumerate(problems)]
    t = time.perf_counter()
    res = verify_rows(rows_, SPEC, real_llm, policy="flag")
    took = time.perf_counter() - t
    assert [r.check for r in res.rows] == ["code:agree", "code:disagree:23", "code:agree"], res.rows
    print(f"code check: {len(rows_)} rows in {took:.1f} s")
