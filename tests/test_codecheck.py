"""Code-based verification of numeric answers: the sandbox, number parsing, policies; the real model on arithmetic."""

from __future__ import annotations

import os
import re
import socket
import time
from collections import Counter
from pathlib import Path

import pytest

from datatune.codecheck import extract_program, format_number, numbers_match, parse_number, run_program
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


# -- the sandbox ---------------------------------------------------------------------------------
def test_a_correct_program_prints_its_answer():
    res = run_program("apples = 3 * 12\nprint(apples - 5)")
    assert res.status == "ok" and parse_number(res.stdout) == 31


def test_a_program_that_sleeps_forever_is_killed_with_its_children():
    prog = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(os.getpid(), child.pid, flush=True)\n"
        "while True:\n    time.sleep(1)\n"
    )
    t = time.monotonic()
    res = run_program(prog, timeout=2)
    took = time.monotonic() - t
    assert res.status == "timeout", res
    assert took < 6, took
    pid, child = map(int, res.stdout.split())
    deadline = time.monotonic() + 3
    while not (gone(pid) and gone(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(pid) and gone(child)


def test_a_program_that_exits_leaves_no_background_child():
    prog = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], stdout=subprocess.DEVNULL)\n"
        "print(child.pid)\n"
    )
    res = run_program(prog, timeout=5)
    assert res.status == "ok"
    child = int(res.stdout.split()[-1])
    deadline = time.monotonic() + 3
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(child)


@pytest.fixture
def listener():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.5)
    yield srv, srv.getsockname()[1]
    srv.close()


def connections(srv) -> int:
    n = 0
    while True:
        try:
            conn, _ = srv.accept()
        except (socket.timeout, BlockingIOError):
            return n
        conn.close()
        n += 1


@pytest.mark.parametrize("how", ["socket", "create_connection", "raw _socket", "urllib"])
def test_a_program_cannot_reach_a_listening_socket(listener, how):
    srv, port = listener
    prog = {
        "socket": f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))\nprint('connected')",
        "create_connection": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')",
        "raw _socket": f"import _socket\ns = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)\ns.connect(('127.0.0.1', {port}))\nprint('connected')",
        "urllib": f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)\nprint('connected')",
    }[how]
    res = run_program(prog, timeout=5)
    assert res.status == "error" and "connected" not in res.stdout, res
    assert connections(srv) == 0


def test_the_network_namespace_stops_what_the_guard_cannot(listener):
    """A child interpreter the program starts has no guard: only the network namespace stops it."""
    srv, port = listener
    here = os.readlink("/proc/self/ns/net")
    res = run_program("import os\nprint(os.readlink('/proc/self/ns/net'))", timeout=5)
    if res.status != "ok" or res.stdout.strip() == here:
        pytest.skip("this kernel or container does not allow a new network namespace; the socket guard still applies")
    prog = (
        "import subprocess, sys\n"
        f"code = \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); print('connected')\"\n"
        "r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)\n"
        "print(r.stdout.strip() or 'refused')\n"
    )
    res = run_program(prog, timeout=10)
    assert res.stdout.strip() == "refused", res
    assert connections(srv) == 0


def test_long_output_keeps_its_last_line():
    res = run_program("for i in range(50000):\n    print('working', i)\nprint(12345)")
    assert res.status == "ok" and parse_number(res.stdout) == 12345


def test_memory_is_limited():
    res = run_program("x = bytearray(3 * 1024 ** 3)\nprint(len(x))", memory_mb=512)
    assert res.status == "error" and "MemoryError" in res.stderr


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
    from datatune.llm import ResponseCache, open_llm
    from datatune.settings import Settings

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
