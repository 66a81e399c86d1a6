"""Task expansion: description (+ examples) -> an explicit TaskSpec.

The LLM proposes the output kind, label set, language and formats; code overrides what the
examples prove (their outputs are labels, numbers or letters) and what the description names
(a language, the casing of a label).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from . import definitions, rules
from .curate import LANGUAGE_NAMES
from .llm import LLM, InvalidOutput
from .task import Example, TaskSpec

LANGUAGES = LANGUAGE_NAMES  # language name -> ISO 639-1 code, one table for the whole package


class SpecAnswer(BaseModel):
    output_kind: Literal["label", "number", "letter", "span", "text", "code", "tags"]
    labels: list[str] = Field(max_length=12)
    language: str = Field(max_length=8)
    input_format: str = Field(max_length=160)
    output_format: str = Field(max_length=160)


SYSTEM = (
    "You turn a dataset request into a specification. output_kind: label (one of a fixed set of class names), "
    "number (a numeric answer), letter (the letter of a multiple-choice option), span (a span copied from a given "
    "passage), tags (one tag per token of a sentence), code (program code), text (free text). labels: the class "
    "names when output_kind is label, else empty. language: ISO 639-1 code of the rows."
)


def expand_task(description: str, examples: list[Example], llm: LLM | None) -> TaskSpec:
    spec = TaskSpec(description=description, examples=examples)
    answer: SpecAnswer | None = None
    if llm is not None:
        shown = "\n".join(f"input: {e.input[:200]}\noutput: {e.output[:100]}" for e in examples[:3])
        user = f"Request: {description[:1500]}" + (f"\nExamples:\n{shown}" if shown else "")
        try:
            answer = llm.structured([{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}], SpecAnswer, stage="task")
        except InvalidOutput:
            answer = None
    if answer is not None:
        spec.output_kind = answer.output_kind
        spec.labels = [lb.strip() for lb in answer.labels if lb.strip()] if answer.output_kind == "label" else []
        spec.language = (answer.language or "en").lower()[:2]
        spec.input_format, spec.output_format = answer.input_format, answer.output_format
    _apply_evidence(spec, description, examples)
    return spec


def _in_text(label: str, text: str) -> bool:
    return bool(re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text, re.I))


def _cased(labels: list[str], *spellings: list[str]) -> list[str]:
    """Each label as the user spelled it: the examples first, then the definition."""
    known = {}
    for group in spellings:
        for sp in group:
            known.setdefault(sp.lower(), sp)
    return list(dict.fromkeys(known.get(lb.lower(), lb) for lb in labels))


def _is_letter_set(outs: list[str]) -> bool:
    return bool(outs) and all(len(o) == 1 and o.isalpha() and o.isascii() for o in outs) and (all(o.isupper() for o in outs) or all(o.islower() for o in outs))


def _letters(description: str, examples: list[Example], outs: list[str]) -> list[str]:
    """The option letters a task uses: those its definition quotes ("A", "B", "C", and "D"), else the run
    A, B, C, ... of option letters its examples show."""
    quoted = [q for q in definitions.quoted_labels(description) if len(q) == 1 and q.isalpha()]
    if len(quoted) >= 2:
        last = max(q.upper() for q in quoted)
    else:
        shown = {m.upper() for e in examples for m in re.findall(r"\(([A-Za-z])\)|^\s*([A-Za-z])[.)]\s", e.input, re.M) for m in m if m}
        if not shown:
            return []
        shown |= {o.upper() for o in outs}
        if "A" not in shown:
            return []
        # options run A, B, C, ... without a gap; a letter past the run is something else (code's `set(y)`)
        last = "A"
        while chr(ord(last) + 1) in shown:
            last = chr(ord(last) + 1)
    letters = [chr(c) for c in range(ord("A"), ord(last) + 1)]
    return [x.lower() for x in letters] if all(o.islower() for o in outs) else letters


def _apply_evidence(spec: TaskSpec, description: str, examples: list[Example]) -> None:
    """What the definition and the examples show overrides the model.

    Example outputs are labels only when the definition names them, or when they repeat: two
    examples answering 'the Lord' and 'Sunset' are not a label set (they are spans). Numbers are
    labels when the definition says what they stand for ('Label the text "0" if ... world'), and
    every label the definition quotes or lists joins the set.
    """
    outs = [e.output.strip() for e in examples]
    distinct = list(dict.fromkeys(outs))
    quoted, listed = definitions.quoted_labels(description), definitions.listed_labels(description)
    meanings = definitions.label_meanings(description)
    low = description.lower()
    named = quoted + [x for x in listed if x.lower() not in {q.lower() for q in quoted}]
    if outs:
        if _is_letter_set(outs) and (spec.output_kind == "letter" or any(rules.choice_count(e.input) or re.search(r"\([A-Ea-e]\)", e.input) for e in examples)
                                     or re.search(r"\b(option|choice|multiple)", low)
                                     or (all(o.upper() <= "E" for o in outs) and not any(o in meanings for o in outs))):
            spec.output_kind, spec.labels = "letter", []
            spec.lowercase_letters = all(o.islower() for o in outs)
            spec.letters = _letters(description, examples, outs)
        elif all(rules.is_number(o) for o in outs):
            digits = [x for x in quoted if x.isdigit()] + [k for k in meanings if k.isdigit()] + definitions.label_range(description)
            small = all(o.lstrip("-").isdigit() and abs(int(o)) <= 10 for o in outs)
            if small and (digits or re.search(r"\b(classif|categor|label)", low) or spec.output_kind == "label"):
                spec.output_kind = "label"
                spec.labels = sorted(dict.fromkeys(distinct + digits), key=lambda x: int(x) if x.lstrip("-").isdigit() else 99)
            else:
                spec.output_kind, spec.labels = "number", []
        else:
            in_named = [o for o in distinct if any(o.lower() == n.lower() for n in named)]
            repeats = len(distinct) < len(outs) and all(len(o) <= 30 for o in distinct)
            if len(in_named) == len(distinct) and len(named) >= 2:
                # the definition names the labels: every example output is one of them
                group = named
                covering = [g for g in definitions.quoted_by_sentence(description) if len(g) >= 2 and all(o.lower() in {x.lower() for x in g} for o in distinct)]
                if covering:  # "Label the instances as 'ironic' or 'not'", not the 'polarity' of the sentence before
                    group = min(covering, key=len)
                elif len(quoted) >= 2 and all(o.lower() in {q.lower() for q in quoted} for o in distinct):
                    group = quoted
                spec.output_kind, spec.labels = "label", _cased(group, distinct, named)
            elif spec.output_kind == "label" and (repeats or all(_in_text(lb, description) for lb in spec.labels + distinct)):
                spec.labels = _cased(list(dict.fromkeys(distinct + spec.labels)), distinct, named)
            else:
                if spec.output_kind in ("label", "letter", "number"):  # the examples show neither
                    spec.output_kind, spec.labels = "text", []
                if all(len(o) >= 2 and o in e.input for o, e in zip(outs, examples)):
                    spec.output_kind = "span"
    elif re.search(r"\b(?:with|is|as|give|gives|output)\s+(?:an?|the|one)\s+(?:number|integer|numeric)|\bnumer(?:ic|ical) (?:answer|value|result)", low) \
            and spec.output_kind in ("text", "label", "span"):
        spec.output_kind, spec.labels = "number", []
    elif re.search(r"\b(span|extract\w*|copy\w*|copies)\b", low) and re.search(r"\b(passage|context|paragraph|article|text|document)\b", low) \
            and spec.output_kind in ("span", "text", "label"):
        spec.output_kind, spec.labels = "span", []
    elif spec.output_kind == "text" and len(named) >= 2 and re.search(r"\b(classif\w*|categori[sz]\w*|label\w*|sentiment|topic)\b", low):
        # "classify ... as positive or negative": the definition names the labels though the model did not say so
        spec.output_kind, spec.labels = "label", (quoted if len(quoted) >= 2 else listed)
    elif spec.output_kind == "label":
        # no examples: the model's labels, joined by the ones the definition names beside them
        for group in (quoted, listed):
            if len(group) >= 2 and any(lb.lower() in {g.lower() for g in group} for lb in spec.labels):
                spec.labels = _cased(list(dict.fromkeys([*group, *[lb for lb in spec.labels if _in_text(lb, description)]])), group)
                break
        else:
            spec.labels = _cased(spec.labels, named)
    if spec.output_kind in ("text", "span") and re.search(
            r"\b(?:wrong|incorrect|implausible|false)\s+(?:answer|option|solution|process|response)|\bdoes not lead to\b", low):
        spec.wrong_answer = True
    if re.search(r"\b(each|every|per) (token|word)\b|\btoken[- ]level\b", low):
        spec.output_kind = "tags"  # one tag per token: the labels are tag types, not row labels
    for name, code in LANGUAGES.items():
        if re.search(rf"\bin {name}\b|\b{name}[- ]language\b", low):
            spec.language = code
    if spec.output_kind == "tags":
        return
    if spec.output_kind == "label":
        fixed = []
        for lb in spec.labels:  # casing as the user wrote it: "positive or negative" -> "positive", "negative"
            m = re.search(rf"(?<!\w){re.escape(lb)}(?!\w)", description, re.I)
            fixed.append(lb if lb in outs or not m else m.group(0))
        spec.labels = list(dict.fromkeys(fixed))
        spec.label_meanings = {lb: meanings[lb] for lb in spec.labels if lb in meanings and meanings[lb].lower() != lb.lower()}
        if len(spec.labels) < 2:
            spec.output_kind, spec.labels = "text", []
