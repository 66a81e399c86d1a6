"""Answer extraction and plan checks that code can do better than a small model.

marker detection (gsm8k's `#### 42`), `\\boxed{}` extraction (MATH), number parsing, option
letter handling, and the leak check that drops an input column which already holds the answer.
"""

from __future__ import annotations

import re
from collections import Counter

_NUM = re.compile(r"^[-+]?\$?\s*(\d{1,3}(,\d{3})+|\d+)(\.\d+)?%?$")
_LAST_NUM = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")
_OPTION_PREFIX = re.compile(r"^\s*\(?([A-Za-z])\s*[\).:]\s*")


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _symbolic_prefix(line: str) -> str | None:
    m = re.match(r"^([^\w\s]{1,6})\s", line)
    return m.group(1) if m else None


def detect_marker(values: list[str], *, min_share: float = 0.9) -> str | None:
    """A short symbolic prefix on the last line shared by >= 90% of values (gsm8k: '####')."""
    if not values:
        return None
    counts = Counter(p for v in values if (p := _symbolic_prefix(last_line(v))))
    if not counts:
        return None
    marker, n = counts.most_common(1)[0]
    return marker if n / len(values) >= min_share else None


def extract_after_marker(text: str, marker: str) -> str:
    line = last_line(text)
    return line[len(marker):].strip() if line.startswith(marker) else ""


def extract_boxed(text: str) -> str:
    """The content of the last \\boxed{...} (or \\fbox{...}), braces balanced."""
    text = str(text)
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        m = text.rfind("\\boxed ")
        return text[m + 7:].split("$")[0].strip() if m >= 0 else ""
    i = text.index("{", start) + 1
    depth, j = 1, i
    while j < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        j += 1
    return text[i:j - 1].strip() if depth == 0 else ""


def share_with_boxed(values: list[str]) -> float:
    return sum("\\boxed" in str(v) or "\\fbox" in str(v) for v in values) / max(1, len(values))


def is_number(text: str) -> bool:
    return bool(_NUM.match(str(text).strip()))


def normalise_number(text: str) -> str:
    """'1,000' -> '1000', '$5' -> '5', '3.50' -> '3.5'; other text unchanged."""
    t = str(text).strip().replace("$", "").replace(",", "").rstrip("%").strip()
    try:
        f = float(t)
    except ValueError:
        return str(text).strip()
    return str(int(f)) if f == int(f) and "e" not in t.lower() else repr(f).rstrip("0").rstrip(".")


def last_number(text: str) -> str:
    found = _LAST_NUM.findall(str(text))
    return normalise_number(found[-1]) if found else ""


def strip_option_prefix(option: str) -> str:
    """'A)21' -> '21', '(B) yes' -> 'yes'."""
    return _OPTION_PREFIX.sub("", str(option), count=1).strip()


def letter(i: int) -> str:
    return chr(ord("A") + int(i))


def with_choices(body: str, options: list[str]) -> str:
    """A multiple-choice input as datatune writes every one: the question, then `A. option` lines."""
    return body + "\n" + "\n".join(f"{letter(i)}. {o}" for i, o in enumerate(options))


_CHOICE_LINE = re.compile(r"^\s*\(?([A-Z])[.)]\s+\S", re.M)


def choice_count(text: str) -> int:
    """How many `A. ...` lines a multiple-choice input lists (0 when none)."""
    return len(_CHOICE_LINE.findall(text))


def leaks_answer(column_values: list[str], outputs: list[str], *, min_share: float = 0.5) -> bool:
    """True when an input column already states the answer in most rows (aqua_rat's `rationale`)."""
    pairs = [(str(v), str(o)) for v, o in zip(column_values, outputs) if o]
    if not pairs:
        return False
    hits = 0
    for v, o in pairs:
        if len(o) == 1 and o.isalpha():  # an option letter: look for "answer is B", "Answer: B", "(B)" at the end
            pat = rf"(answer|option|correct)[^A-Za-z0-9]{{0,20}}\(?{re.escape(o)}\)?\b|\(?\b{re.escape(o)}\)?\s*$"
            hits += bool(re.search(pat, v) or re.search(pat, v.splitlines()[-1] if v.strip() else "", re.I))
        elif len(o) >= 2:
            hits += o.lower() in v.lower()
        else:
            hits += bool(re.search(rf"\b{re.escape(o)}\b", last_line(v)))
    return hits / len(pairs) >= min_share
