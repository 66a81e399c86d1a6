"""Gold answers of source rows, read from the row by dataset conventions, never from the plan.

Tests that build over ../shared/hub judge the rows they get: each row's provenance points at a
source row, and the answer that row holds is read here from its schema alone (a ClassLabel's name,
an option index or key, a `####` or `\\boxed{}` answer, a SQuAD `answers` struct). A row agrees when
its output is that answer, in the task's own label strings (`LEXICON` says which source label names
mean which task label, written by hand per task, not per dataset). The catalog can grow: nothing
here names a dataset.
"""

from __future__ import annotations

import re

import datasets

_NUM = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def norm(s) -> str:
    return re.sub(r"[^0-9a-z]+", " ", str(s).lower()).strip()


def number(s) -> str | None:
    t = str(s).strip().replace(",", "").replace("$", "").rstrip("%").strip()
    try:
        f = float(t)
    except ValueError:
        return None
    return str(int(f)) if f == int(f) else repr(f)


def _names(features, col):
    f = features.get(col)
    if isinstance(f, datasets.ClassLabel):
        return [str(n) for n in f.names]
    return None


def label_names(row: dict, features) -> set[str]:
    """Every class name the row holds (ClassLabel columns), normalised."""
    out = set()
    for col in features:
        names = _names(features, col)
        v = row.get(col)
        if names and isinstance(v, int) and 0 <= v < len(names):
            out.add(norm(names[v]))
    return out


def numbers(row: dict) -> set[str]:
    """Numeric answers a row states: after a final `####`, inside the last \\boxed{}, or a numeric string column."""
    out = set()
    for v in row.values():
        if not isinstance(v, str):
            continue
        if "####" in v:
            n = number(v.rsplit("####", 1)[1])
            out |= {n} if n else set()
        m = re.findall(r"\\boxed\{([^{}]*)\}", v)
        if m and (n := number(m[-1])):
            out.add(n)
        if (n := number(v)) is not None:
            out.add(n)
    return out


def options_and_answer(row: dict, features) -> tuple[list[str], int | None]:
    """The row's options and the 0-based index of the correct one, by the common conventions."""
    opts: list[str] = []
    keys: list[str] | None = None
    for col, f in features.items():
        v = row.get(col)
        if isinstance(v, dict) and isinstance(v.get("text"), list):
            opts, keys = [str(x) for x in v["text"]], [str(x) for x in v.get("label") or []] or None
            break
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v) and col in ("options", "choices", "choice", "endings"):
            opts = v
            break
    if not opts:
        groups: dict[str, list[tuple[str, str]]] = {}
        for col in features:
            m = re.fullmatch(r"(.*?[a-z_])(\d+|[A-E])", col)
            if m and isinstance(row.get(col), str):
                groups.setdefault(m.group(1) + ("#" if m.group(2).isdigit() else "@"), []).append((m.group(2).zfill(4), col))
        best = max((sorted(g) for g in groups.values() if len(g) >= 2), key=len, default=[])
        opts = [row[c] for _, c in best]
    answer = None
    for col in ("answerKey", "answer", "label", "correct", "answer_idx", "correct_answer_id"):
        if col not in row or row[col] in (None, "", -1):
            continue
        v = row[col]
        names = _names(features, col)
        if keys is not None and str(v) in keys:
            answer = keys.index(str(v))
        elif isinstance(v, int):
            answer = int(names[v]) if names and names[v].isdigit() else v
        elif isinstance(v, str) and len(v.strip()) == 1 and v.strip().isalpha():
            answer = ord(v.strip().upper()) - ord("A")
        elif isinstance(v, str) and v.strip().isdigit():
            # digits as strings count options from 1 (social_i_qa's '1'..'3'); a '0' can only count from 0
            answer = int(v) - 1 if 1 <= int(v) <= len(opts) else int(v)
        elif isinstance(v, str) and v in opts:
            answer = opts.index(v)
        if answer is not None:
            break
    return opts, answer


def spans(row: dict) -> set[str]:
    out = set()
    for v in row.values():
        if isinstance(v, dict) and isinstance(v.get("text"), list):
            out |= {str(x) for x in v["text"]}
    return out


def answers(row: dict) -> set[str]:
    """Every answer a QA row accepts, normalised: a SQuAD `answers` struct's texts, a column named answer(s)."""
    out = spans(row)
    for col in ("answer", "answers"):
        v = row.get(col)
        out |= {v} if isinstance(v, str) else {x for x in v if isinstance(x, str)} if isinstance(v, list) else set()
    return {answer_norm(a) for a in out if answer_norm(a)}


def answer_norm(s) -> str:
    """A free-text answer by its words, in any script ('異世界はスマートフォンとともに' stays itself)."""
    return " ".join(re.sub(r"[\W_]+", " ", str(s).lower()).split())


def lettered_options(text: str) -> list[str]:
    """The `A. option` lines that end a multiple-choice input, in order (from the last line lettered A)."""
    lines = text.splitlines()
    i = len(lines)
    while i > 0 and re.fullmatch(r"[A-Za-z]\. .*", lines[i - 1]):
        i -= 1
    run = lines[i:]
    starts = [j for j, line in enumerate(run) if line[0] in "Aa"]
    run = run[starts[-1]:] if starts else []
    return [line[3:] for line in run] if all(line[0].upper() == chr(ord("A") + j) for j, line in enumerate(run)) else []


def agrees(kind: str, output: str, row: dict, features, *, lexicon: dict[str, set[str]] | None = None, lowercase: bool = False,
           input: str = "", verdicts: dict[str, str] | None = None) -> bool:
    """Does a built row's output equal the gold answer of its source row?

    Rows rewritten from a QA row are judged through it: `verify` (the input ends 'Answer: <candidate>';
    `verdicts` names the task's label for 'correct' and 'incorrect': correct iff the candidate is one of
    the row's answers), `choice_from_answers` (the option at the output letter is the row's answer and no
    other option is), `question` (the output is the row's question: passage + answer -> question).
    """
    if kind == "verify":
        if "\nAnswer: " not in input or not verdicts:
            return False
        shown = answer_norm(input.rsplit("\nAnswer: ", 1)[1])
        return output == verdicts["correct" if shown in answers(row) else "incorrect"]
    if kind == "choice_from_answers":
        opts, gold = lettered_options(input), answers(row)
        at = ord(output.upper()) - ord("A") if len(output) == 1 and output.isalpha() else -1
        return (0 <= at < len(opts) and answer_norm(opts[at]) in gold and output.islower() == lowercase
                and not any(answer_norm(o) in gold for i, o in enumerate(opts) if i != at))
    if kind == "question":
        return output.strip() == str(row.get("question", "")).strip() != ""
    if kind == "label":
        want = lexicon.get(output, {norm(output)}) if lexicon else {norm(output)}
        return bool(label_names(row, features) & {norm(w) for w in want})
    if kind == "number":
        return number(output) in numbers(row)
    if kind == "letter":
        opts, ans = options_and_answer(row, features)
        return ans is not None and len(output) == 1 and (ord(output.upper()) - ord("A")) == ans and (output.islower() == lowercase)
    if kind == "span":
        return output in spans(row)
    if kind == "text":
        opts, ans = options_and_answer(row, features)
        return ans is not None and 0 <= ans < len(opts) and output.strip() == str(opts[ans]).strip()
    if kind == "wrong_text":  # a task that asks for a wrong answer: any option but the correct one
        opts, ans = options_and_answer(row, features)
        return ans is not None and 0 <= ans < len(opts) and output.strip() in [str(o).strip() for i, o in enumerate(opts) if i != ans]
    if kind == "tags":
        for col, f in features.items():
            inner = getattr(f, "feature", None)
            if isinstance(inner, datasets.ClassLabel) and isinstance(row.get(col), list):
                if output == " ".join(str(inner.names[i]) for i in row[col]):
                    return True
        return False
    raise ValueError(kind)


def gold_agreement(catalog, rows, kind: str, **kw) -> tuple[int, int]:
    """(agreeing, judged) over rows with provenance; each source split is loaded once."""
    loaded: dict = {}
    agree = 0
    for r in rows:
        key = (r.source_dataset, r.source_config, r.source_split)
        if key not in loaded:
            loaded[key] = catalog.load(*key)
        ds = loaded[key]
        agree += agrees(kind, r.output, ds[r.source_row], ds.features, input=r.input, **kw)
    return agree, len(rows)
