"""Semantic acceptance: are a source's transformed inputs the same kind of text the task takes?

Structural checks (labels inside the set, spans of the passage, numbers) can all pass on rows that
are not the task: TREC questions mapped to news topics, answer-option indexes as 'numbers'.

Asked "are these rows examples of this task? yes/no", the embedded 1.5B said yes to every wrong
pair tried (TREC questions for news topics, commonsense_qa letters for extractive QA, QuAIL for math,
news for movie-review sentiment: 12 of 12 votes yes). Asked instead which kind of text an input is,
from a closed list, it tells a question from a news article and a news article from a review well
enough to vote with (measured: TREC 3 of 3 'question' against the task's 'news article', AG News
3 of 3 'news article' against 'review or opinion'), though not to match exactly (a SQuAD passage
reads as a 'news article', a movie review sometimes as a social media post). So:

- the task's kind is the kind of each example input, or, without examples, of the input the
  description names;
- a few transformed inputs of the source are classified the same way;
- with examples, a source is rejected when none of its inputs is of a kind the examples are;
  without examples (the task's kind is read from prose, less reliably), only when all its inputs
  agree on one other kind.

Kinds that read alike (a question, a math word problem, a passage with a question, a how-to goal)
count as one. The kinds go to plans.json and the card.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, create_model

from .core.errors import RequestFailed
from .llm import InvalidOutput

KINDS = ("news article", "question", "review or opinion", "social media post", "math word problem", "passage with a question",
         "dialogue", "pair of sentences", "program code", "goal or how-to instruction", "other")
_GROUP = {"math word problem": "question", "passage with a question": "question", "goal or how-to instruction": "question"}
ROWS = 4

Kind: type[BaseModel] = create_model("TextKind", kind=(Literal[KINDS], ...))  # type: ignore[valid-type]


def group(kind: str) -> str:
    return _GROUP.get(kind, kind)


@dataclass
class Acceptance:
    task_kinds: list[str] = field(default_factory=list)
    row_kinds: list[str] = field(default_factory=list)
    reference: str = "examples"  # "examples" or "description"

    @property
    def accepted(self) -> bool:
        task, rows = {group(k) for k in self.task_kinds}, [group(k) for k in self.row_kinds]
        if not task or not rows or "other" in task or "other" in rows:
            return True
        if self.reference == "examples":
            return any(k in task for k in rows)
        return not (len(set(rows)) == 1 and rows[0] not in task)

    def to_dict(self) -> dict:
        return {"task_kinds": self.task_kinds, "row_kinds": self.row_kinds, "reference": self.reference, "accepted": self.accepted}


def _clip(text: str, n: int = 600) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n * 2 // 3] + " … " + text[-n // 3:]


_CODE = re.compile(r"[{};=]|\bdef |\breturn\b|\bimport |\w\(.*\)|</?\w+>")


def kind_of_text(llm, text: str) -> str:
    messages = [{"role": "system", "content": "You classify texts. Answer in JSON."},
                {"role": "user", "content": f"Text:\n{_clip(text)}\n\nWhat kind of text is this?"}]
    kind = llm.structured(messages, Kind, stage="accept").kind
    if kind == "program code" and not _CODE.search(text):
        return "other"  # the 1.5B called lines of poetry code: a kind the text itself must show
    return kind


def kind_of_task(llm, description: str) -> str:
    messages = [{"role": "system", "content": "You classify tasks. Answer in JSON."},
                {"role": "user", "content": f"Task: {description[:800]}\n\nWhat kind of text does this task take as its input?"}]
    return llm.structured(messages, Kind, stage="accept").kind


def task_kinds(llm, spec) -> tuple[list[str], str]:
    """The kinds of the task's inputs: of its examples when it has some, else of its description."""
    try:
        if spec.examples:
            return [kind_of_text(llm, e.input) for e in spec.examples[:3]], "examples"
        return [kind_of_task(llm, spec.description)], "description"
    except (InvalidOutput, RequestFailed):
        return [], "examples" if spec.examples else "description"


def judge_inputs(llm, spec, inputs: list[str], *, rows: int = ROWS, seed: int = 0, reference: tuple[list[str], str] | None = None) -> Acceptance:
    """Classify a few of a source's transformed inputs and compare them with the task's kinds."""
    kinds, ref = reference if reference is not None else task_kinds(llm, spec)
    out = Acceptance(task_kinds=list(kinds), reference=ref)
    if not kinds or not inputs:
        return out
    picked = random.Random(seed).sample(inputs, min(rows, len(inputs)))
    for text in picked:
        try:
            out.row_kinds.append(kind_of_text(llm, text))
        except (InvalidOutput, RequestFailed):
            continue
    return out
