"""Label verification: the LLM answers each row blind, disagreements are flagged, relabelled or dropped.

`verify_rows(rows, spec, llm, ...)` is the stage the pipeline calls. It dispatches by the task's
output kind:

  label / letter   self-consistency: a structured call whose schema is an enum of the allowed
                   answers (the task's labels, or the option letters), temperature 0 first;
  number           the code check (codecheck.py, UniGen): the LLM writes a program that prints
                   the answer, the program runs isolated, the printed number is compared; a program
                   that fails goes back to the LLM with its error (`repairs` times, default once);
  anything else    not checked.

Votes: the first vote is at temperature 0. With `votes > 1`, extra votes (temperature 0.7 and up,
label order shuffled in the prompt) are asked only for rows whose first answer disagreed or failed
(`adaptive=True`, the default), to confirm a disagreement before acting on it; `adaptive=False`
asks every row `votes` times. The verdict is the plurality of the valid votes: a row agrees when
its own output is among the most-voted answers.

Policies, for a row whose verdict disagrees:
  flag     keep the row as it is, record the disagreement in `check`
  relabel  set the output to the majority answer when it holds at least `min_agreement` of the
           votes asked for (default: all of them), record the old output; weaker majorities are flagged
  drop     remove the row, counted under a drop reason (REASONS)

`check` values (Row.check, short and machine-readable):
  ""                     not checked (another method, over the budget, an unsupported output kind)
  agree / disagree:flagged / relabelled:<old output> / error          self-consistency
  code:agree / code:disagree:<program's value> / code:relabelled:<old output> / code:error   code check
An "error" (no valid answer, a program that failed or timed out) never drops a row unless
`drop_errors=True` with the drop policy.

Budget: at most about `max_calls` LLM requests (cache hits are free) and never past the LLM's own
--max-llm-calls: rows beyond it stay unchecked, and a BudgetExceeded from the LLM ends the stage
without losing the rows checked so far. Rows already carrying a check are left as they are, so a
second pass over verified rows changes nothing.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Callable, Collection, Literal, Sequence

from pydantic import BaseModel, create_model

from .codecheck import SandboxUnavailable, code_answers, numbers_match, parse_number
from .core.errors import BudgetExceeded, ConfigError
from .llm import LLM
from .records import Row
from .task import TaskSpec

Policy = Literal["flag", "relabel", "drop"]
POLICIES = ("flag", "relabel", "drop")
REASONS = ("label_disagrees", "answer_disagrees", "answer_unverified")  # drop reasons written into the card
DEFAULT_METHODS = ("mapped", "llm")  # synthetic rows were generated conditioned on their label
STAGE = "verify"
CHUNK = 16  # requests per batch: bounds what a BudgetExceeded can cost and how far the budget can overshoot


@dataclass
class VerifyResult:
    rows: list[Row]  # kept rows, in input order, `check` set on the ones checked
    dropped: Counter = field(default_factory=Counter)  # drop reason -> rows removed
    counts: Counter = field(default_factory=Counter)  # checked, agree, disagree, relabelled, dropped, error, unchecked, skipped
    calls: int = 0  # LLM requests this stage sent (cache hits not counted)
    note: str = ""  # why rows stayed unchecked, when something other than the budget stopped it (no OS sandbox)


def verify_rows(
    rows: Sequence[Row],
    spec: TaskSpec,
    llm: LLM,
    *,
    policy: Policy = "flag",
    max_calls: int | None = None,
    votes: int = 1,
    seed: int = 0,
    methods: Collection[str] = DEFAULT_METHODS,
    adaptive: bool = True,
    min_agreement: float = 1.0,
    drop_errors: bool = False,
    timeout: float = 10.0,
    repairs: int = 1,
    reporter=None,
) -> VerifyResult:
    """Verify the labels of `rows` against the LLM's blind answers; see the module docstring."""
    if policy not in POLICIES:
        raise ConfigError(f"unknown verify policy {policy!r}; use one of {', '.join(POLICIES)}")
    if votes < 1:
        raise ConfigError(f"votes must be at least 1 (got {votes})")
    rows = list(rows)
    counts: Counter = Counter()
    kind = _kind(spec, rows)
    if kind is None:
        counts["skipped"] = len(rows)
        return VerifyResult(rows, Counter(), counts, 0)

    if kind == "code":
        prefix, reason = "code:", "answer_disagrees"

        def ask(batch: list[Row], vote: int, spare: int) -> list[str | None]:
            return code_answers(batch, spec, llm, temperature=_temperature(vote), stage=STAGE, timeout=timeout,
                                repairs=repairs, spare_calls=spare)

        def same(answer: str, row: Row) -> bool:
            v = parse_number(answer)
            return v is not None and numbers_match(v, row.output)

        def usable(row: Row) -> bool:
            return parse_number(row.output) is not None
    else:
        allowed = _allowed(spec, rows, kind)
        model = _answer_model(allowed)
        prefix, reason = "", "label_disagrees"

        def ask(batch: list[Row], vote: int, spare: int) -> list[str | None]:
            msgs = [_label_prompt(spec, r, allowed, kind, seed, vote) for r in batch]
            got = llm.structured_many(msgs, model, stage=STAGE, temperature=_temperature(vote))
            return [None if isinstance(a, Exception) else _canonical(a.answer, allowed) for a in got]

        def same(answer: str, row: Row) -> bool:
            return _key(answer) == _key(row.output)

        def usable(row: Row) -> bool:
            return True

    selected = [i for i, r in enumerate(rows) if r.method in methods and not r.check]
    counts["skipped"] = len(rows) - len(selected)
    random.Random(seed).shuffle(selected)  # under a budget, the rows checked are a random sample
    ballots: dict[int, list[str | None]] = {i: [] for i in selected}
    start = llm.usage.stage(STAGE).calls

    def left() -> int:
        own = None if max_calls is None else max_calls - (llm.usage.stage(STAGE).calls - start)
        caps = [c for c in (own, llm.calls_left) if c is not None]
        return min(caps) if caps else 1 << 30

    def first_disagreed(i: int) -> bool:  # adaptive: only these rows get the extra votes
        first = ballots[i][0]
        return first is None or not same(first, rows[i])

    stopped = False
    note = ""
    with (reporter.bar("verify", total=len(selected), unit="row") if reporter else nullcontext(None)) as bar:
        for vote in range(votes):
            if stopped:
                break
            if vote == 0:
                todo = [i for i in selected if usable(rows[i])]
            else:
                todo = [i for i in selected if ballots[i] and (not adaptive or first_disagreed(i))]
            pos = 0
            while pos < len(todo):
                n = min(CHUNK, left())
                if n <= 0:
                    stopped = True
                    break
                chunk = todo[pos:pos + n]
                try:
                    answers = ask([rows[i] for i in chunk], vote, left() - len(chunk))
                except SandboxUnavailable as e:  # no OS sandbox here: no program runs, the rows stay unchecked
                    note = str(e)
                    stopped = True
                    break
                except BudgetExceeded:  # the LLM's own --max-llm-calls: keep what was checked
                    stopped = True
                    break
                for i, a in zip(chunk, answers):
                    ballots[i].append(a)
                pos += len(chunk)
                if bar is not None and vote == 0:
                    bar.update(len(chunk))

    out: list[Row] = []
    dropped: Counter = Counter()
    for i, row in enumerate(rows):
        if i not in ballots:
            out.append(row)
            continue
        got = ballots[i]
        if not usable(row):
            counts["error"] += 1
            out.append(replace(row, check=prefix + "error"))
            continue
        if not got:
            counts["unchecked"] += 1
            out.append(row)
            continue
        counts["checked"] += 1
        answers = [a for a in got if a is not None]
        if not answers:
            counts["error"] += 1
            if policy == "drop" and drop_errors:
                dropped["answer_unverified"] += 1
                counts["dropped"] += 1
            else:
                out.append(replace(row, check=prefix + "error"))
            continue
        if _agrees(answers, row, same):
            counts["agree"] += 1
            out.append(replace(row, check=prefix + "agree"))
            continue
        counts["disagree"] += 1
        tally = Counter(answers).most_common()
        top = [a for a, c in tally if c == tally[0][1]]
        majority = top[0] if len(top) == 1 else None
        if policy == "drop":
            dropped[reason] += 1
            counts["dropped"] += 1
        elif policy == "relabel" and majority is not None and tally[0][1] / votes >= min_agreement - 1e-9:
            counts["relabelled"] += 1
            out.append(replace(row, output=majority, check=f"{prefix}relabelled:{_short(row.output)}"))
        else:
            shown = f"disagree:{_short(majority or top[0])}" if prefix else "disagree:flagged"
            out.append(replace(row, check=prefix + shown))
    return VerifyResult(out, dropped, counts, llm.usage.stage(STAGE).calls - start, note)


# -- helpers -----------------------------------------------------------------------------------
def _kind(spec: TaskSpec, rows: list[Row]) -> str | None:
    if spec.output_kind == "number":
        return "code"
    if spec.output_kind == "label" and spec.labels:
        return "label"
    if spec.output_kind == "letter":
        return "letter"
    return None


def _temperature(vote: int) -> float:
    return 0.0 if vote == 0 else min(1.2, round(0.6 + 0.1 * vote, 2))


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip().casefold()


def _short(text: str, n: int = 40) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()[:n]


def _allowed(spec: TaskSpec, rows: list[Row], kind: str) -> list[str]:
    if spec.labels:
        return list(dict.fromkeys(spec.labels))
    # option letters without a label list: A up to the highest letter a row answers or an input lists as an option
    letters = [r.output.strip().upper() for r in rows if len(r.output.strip()) == 1 and r.output.strip().isalpha()]
    for r in rows:  # the run A, B, C... of option markers in the input ("I." alone is not an option)
        found, n = set(_OPTION.findall(r.input)), 0
        while chr(ord("A") + n) in found:
            n += 1
        letters += [chr(ord("A") + n - 1)] if n >= 2 else []
    last = max(letters + ["B"])
    return [chr(c) for c in range(ord("A"), min(ord(last), ord("J")) + 1)]


_OPTION = re.compile(r"(?:^|[\s(\[])([A-J])\s*[).:\]]\s", re.M)


def _canonical(answer: str, allowed: list[str]) -> str | None:
    k = _key(answer)
    return next((a for a in allowed if _key(a) == k), None)


_MODELS: dict[tuple, type[BaseModel]] = {}


def _answer_model(allowed: list[str]) -> type[BaseModel]:
    """A pydantic model whose `answer` is an enum of the allowed answers (the schema the server enforces)."""
    key = tuple(allowed)
    if key not in _MODELS:
        _MODELS[key] = create_model("Answer", answer=(Literal[key], ...))
    return _MODELS[key]


def _clip(text: str, n: int = 1500) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n * 3 // 4] + " ... " + text[-n // 4:]


def _label_prompt(spec: TaskSpec, row: Row, allowed: list[str], kind: str, seed: int, vote: int) -> list[dict]:
    order = list(allowed)
    if vote and kind == "label":  # extra votes see the labels in another order (position bias)
        random.Random(f"{seed}:{vote}:{row.input}").shuffle(order)
    shots = "".join(f"\nInput: {_clip(e.input, 300)}\nAnswer: {e.output[:100]}\n" for e in spec.examples[:3])
    what = "the letter of the correct option" if kind == "letter" else "the correct label"
    return [
        {"role": "system", "content": "You answer classification and multiple-choice questions accurately."},
        {"role": "user", "content": f"Task: {spec.description}\n"
                                    + (f"Labels: {', '.join(order)}\n" if kind == "label" else "")
                                    + (f"Examples:{shots}\n" if shots else "")
                                    + f"\nInput:\n{_clip(row.input)}\n\nAnswer with {what}."},
    ]


def _agrees(answers: list[str], row: Row, same: Callable[[str, Row], bool]) -> bool:
    """The row's output is among the most-voted answers."""
    tally = Counter(answers).most_common()
    top = tally[0][1]
    return any(same(a, row) for a, c in tally if c == top)
