"""A second reading of each set: the embedded LLM answers test items with the set's nearest rows as examples.

Why: the trained student (a 22M MiniLM cross-encoder, N rows) cannot learn these tasks at all, not
even from rows that are all correct (see NOTES.md), so its scores say little about the sets. A model
that already has some of the skill can show whether a set's rows carry it: the same prompt as the
few-shot arm (the task's two examples), plus the `k` rows of the set nearest to the item (MiniLM cosine
over inputs). The score minus the few-shot score on the same items is what the set's rows add.

Rows are used the way the student uses them (`student.groups_from_rows`): a lettered task takes rows
whose input lists options (their answer becomes a letter); a label task takes rows whose output is
one of its labels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .arms import answer_model, few_shot_messages
from .student import Group, parse_options
from .tasks import LETTERS, Item


@dataclass
class Demo:
    text: str
    answer: str


def demos_from_groups(groups: list[Group], *, lettered: bool) -> list[Demo]:
    out = []
    for g in groups:
        has_options = bool(parse_options(g.input))
        if lettered and has_options:
            out.append(Demo(g.input, LETTERS[g.correct]))
        elif not lettered and not has_options:
            out.append(Demo(g.input, g.candidates[g.correct]))
    return out


def icl_choices(task, examples: list[Item], items: list[Item], groups: list[Group], llm, embedder, *, k: int = 4) -> tuple[list[int | None], dict]:
    """The LLM's choice per item given the task's examples and the k nearest demonstrations from the set."""
    demos = demos_from_groups(groups, lettered=task.lettered)
    t0 = time.perf_counter()
    near: list[list[Demo]] = [[] for _ in items]
    if demos:
        d = embedder.encode([x.text for x in demos])
        q = embedder.encode([it.text for it in items])
        sims = q @ d.T
        for i in range(len(items)):
            order = np.argsort(-sims[i])[:k]
            near[i] = [demos[j] for j in reversed(order)]  # the nearest last, next to the item
    choices: list[int | None] = [None] * len(items)
    groups_by_enum: dict[tuple[str, ...], list[int]] = {}
    for i, it in enumerate(items):
        enum = tuple(LETTERS[: len(it.options)]) if it.lettered else tuple(it.options)
        groups_by_enum.setdefault(enum, []).append(i)
    for enum, idx in groups_by_enum.items():
        msgs = [few_shot_messages(task, [*examples, *near[i]], items[i]) for i in idx]
        answers = llm.structured_many(msgs, answer_model(enum), stage="icl")
        for i, a in zip(idx, answers):
            if not isinstance(a, Exception):
                choices[i] = enum.index(a.answer)
    return choices, {"demos_available": len(demos), "k": k, "seconds": round(time.perf_counter() - t0, 2),
                     "failures": sum(c is None for c in choices)}
