"""Task expansion: description (+ examples) -> an explicit TaskSpec.

The LLM proposes the output kind, label set, language and formats; code overrides what the
examples prove (their outputs are labels, numbers or letters) and what the description names
(a language, the casing of a label).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from . import rules
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
        user = f"Request: {description}" + (f"\nExamples:\n{shown}" if shown else "")
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


def _apply_evidence(spec: TaskSpec, description: str, examples: list[Example]) -> None:
    """What code can tell for sure overrides the model."""
    outs = [e.output.strip() for e in examples]
    if outs:
        distinct = list(dict.fromkeys(outs))
        if all(len(o) == 1 and o.isalpha() and o.isupper() for o in outs):
            spec.output_kind, spec.labels = "letter", []
        elif all(rules.is_number(o) for o in outs):
            spec.output_kind, spec.labels = "number", []
        elif spec.output_kind == "label" or (len(distinct) <= max(2, len(outs) // 2) and all(len(o) <= 30 for o in distinct)):
            spec.output_kind = "label"
            spec.labels = list(dict.fromkeys(distinct + [lb for lb in spec.labels if lb.lower() not in {d.lower() for d in distinct}])) if spec.labels else distinct
    low = description.lower()
    if re.search(r"\b(each|every|per) (token|word)\b|\btoken[- ]level\b", low):
        spec.output_kind = "tags"  # one tag per token: the labels are tag types, not row labels
    for name, code in LANGUAGES.items():
        if re.search(rf"\bin {name}\b|\b{name}[- ]language\b", low):
            spec.language = code
    if spec.output_kind == "tags":
        return
    if spec.output_kind == "label":
        # casing as the user wrote it: "positive or negative" -> labels "positive", "negative"
        fixed = []
        for lb in spec.labels:
            m = re.search(rf"\b{re.escape(lb)}\b", description, re.I)
            fixed.append(m.group(0) if m else lb)
        spec.labels = list(dict.fromkeys(fixed))
        if len(spec.labels) < 2:
            spec.output_kind, spec.labels = "text", []
