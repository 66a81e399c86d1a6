"""Semantic acceptance: are a source's transformed rows the kind of thing the task asks for?

Structural checks (labels inside the set, spans of the passage, numbers) can all pass on rows that
are not the task: TREC questions mapped to news topics, answer-option indexes as 'numbers'. Here
the LLM looks at a few rows exactly as they will be written (input and output) and votes whether
they are examples of the task; each vote sees other rows, and a source stays only when most votes
say yes. The votes and their rows' provenance go to plans.json and the card.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from .llm import InvalidOutput

VOTES = 3
ROWS_PER_VOTE = 3


class Judgement(BaseModel):
    fits: Literal["yes", "no"]


@dataclass
class Acceptance:
    votes: list[str] = field(default_factory=list)  # "yes" / "no" per vote
    rows: list[list[int]] = field(default_factory=list)  # sample indexes each vote saw

    @property
    def accepted(self) -> bool:
        return not self.votes or self.votes.count("yes") * 2 > len(self.votes)

    def to_dict(self) -> dict:
        return {"votes": self.votes, "yes": self.votes.count("yes"), "of": len(self.votes), "accepted": self.accepted}


def _clip(text: str, n: int = 350) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n * 2 // 3] + " … " + text[-n // 3:]


def _prompt(spec, rows: list[tuple[str, str]]) -> list[dict]:
    shots = "".join(f"\nExample input: {_clip(e.input, 250)}\nExample output: {_clip(e.output, 80)}" for e in spec.examples[:2])
    shown = "\n".join(f"Row {i}:\n  input: {_clip(a)}\n  output: {_clip(b, 120)}" for i, (a, b) in enumerate(rows, 1))
    wants = f"\nThe task's input: {spec.input_format}" if spec.input_format else ""
    user = (f"Task: {spec.description[:900]}{wants}{shots}\n\nA dataset gives these rows for the task:\n{shown}\n\n"
            "Are these rows real examples of this task: is each input the same kind of text the task takes "
            "(a question is not a news article, a list of options is not a passage), and is each output the "
            "answer the task asks for? Answer yes or no.")
    return [{"role": "system", "content": "You check training data for a task. Answer in JSON."}, {"role": "user", "content": user}]


def judge_rows(llm, spec, rows: list[tuple[str, str]], *, votes: int = VOTES, per_vote: int = ROWS_PER_VOTE, seed: int = 0) -> Acceptance:
    """`votes` LLM judgements, each over `per_vote` different rows; an invalid reply casts no vote."""
    out = Acceptance()
    if not rows:
        return out
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    for v in range(votes):
        idx = [order[(v * per_vote + j) % len(order)] for j in range(min(per_vote, len(order)))]
        try:
            ans = llm.structured(_prompt(spec, [rows[i] for i in idx]), Judgement, stage="accept")
        except InvalidOutput:
            continue
        out.votes.append(ans.fits)
        out.rows.append(idx)
    return out
