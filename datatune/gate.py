"""The embedding relevance gate: a source whose transformed inputs are clearly far from the task's examples is rejected.

The score is relevance.py's: the mean, over a source's transformed inputs (the 24 rows the kind
judge also reads from), of each input's best MiniLM cosine to the example inputs. It grows with the
number of examples (best of k), so the bars depend on k. Calibrated by
benchmarks/acceptance/calibrate.py (RESULTS.md there): 99 catalog configs with rows x 22 tasks that
name their right sources (12 Super-NaturalInstructions tasks with rows, the 7 targets of
tests/test_embedded_builds.py plus the news one with three AG News examples, 2 BIG-bench tasks), 32
rows per config rendered as a plan would (text columns in the default template), and every subset
of 1, 2 and 3 of each task's examples:

| examples | lowest right source | known bad pairs (TREC for AG News) | wrong configs below the hard bar | below the soft bar |
| --- | --- | --- | --- | --- |
| 1 | 0.008 (AG News, one example) | -0.001 to 0.067 | 15% (< -0.02) | 81% (< 0.06) |
| 2 | 0.068 (AG News) | 0.043 to 0.089 | 32% (< 0.03) | 86% (< 0.10) |
| 3 or more | 0.112 (AG News) | 0.081 to 0.095 | 49% (< 0.06) | 92% (< 0.13) |

Right and wrong overlap: MiniLM's cosine follows topic more than genre (news examples about space
put MMLU astronomy above AG News itself; TREC questions sit only 0.01 to 0.05 under AG News). So the
embedding alone can only remove what is clearly far, and the bars are set for no false rejects:

- **fail** (reject outright, the judge is not asked): below the hard bar, which sits at least 0.028
  under every right source measured (0.028 at one example, 0.038 at two, 0.052 at three or more,
  where the fewest right pairs were measured); 24 rows instead of 32 lower a right source's score by
  about 0.015 at the 5th percentile, so the margin is about twice the sampling noise;
- **soft**: between the hard and the soft bar, where the lowest right sources and most near-wrong
  ones are. The LLM kind judge (acceptance.py) decides, stricter than alone: the source is rejected
  when most of the judged inputs are of a kind the examples are not (alone, it rejects only when
  none of them is). TREC against AG News examples lands here (0.04 to 0.09 with two or three examples)
  and the judge reads TREC as questions 3 of 3 (acceptance.py);
- **pass**: at or above the soft bar; the judge's own rule applies.

Against the description (no examples) the score does not separate right from wrong at all: SQuAD
scores 0.012 against the extractive-QA description (rank 95 of 99) while commonsense_qa scores
0.118; TREC 0.014 against its own SNI definition; 8 of 29 right sources fall below the catalog
median. So without examples the score is recorded and no bar is applied: the kind judge and the
structural checks decide. Without an embedder the gate is skipped and the plan's checks say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .relevance import relevance_score

GATE_ROWS = 24  # transformed inputs scored: the rows accept_rows maps for the kind judge
MIN_ROWS = 4  # fewer mapped inputs than this: too few to score, the gate is skipped
# bars by number of example inputs (3 = three or more): calibrated in benchmarks/acceptance (see above)
HARD = {1: -0.02, 2: 0.03, 3: 0.06}
SOFT = {1: 0.06, 2: 0.10, 3: 0.13}
RULE = ("Against the examples (k = 1, 2, 3+): below the hard bar (-0.02, 0.03, 0.06) the source is rejected; "
        "between it and the soft bar (0.06, 0.10, 0.13) it is rejected when most of the LLM-judged inputs are of a kind "
        "the examples are not; at or above the soft bar the judge's own rule applies. Against the description: recorded, no bar.")

Level = Literal["pass", "soft", "fail", "skipped"]


def bars(n_examples: int) -> tuple[float, float]:
    k = max(1, min(3, n_examples))
    return HARD[k], SOFT[k]


def level(score: float, reference: str, n_examples: int = 3) -> Level:
    """The gate's level for a score (used by the calibration report as well as by `relevance_gate`)."""
    if reference != "examples":
        return "skipped"
    hard, soft = bars(n_examples)
    return "fail" if score < hard else "soft" if score < soft else "pass"


@dataclass
class GateVerdict:
    """What the relevance gate measured and decided for one source (goes to plan.checks["relevance_gate"])."""

    score: float | None = None  # mean best cosine of the source's inputs to the reference
    threshold: float | None = None  # the hard bar: below it the source is rejected
    soft_threshold: float | None = None  # below it the kind judge decides, strictly
    reference: str = "examples"  # "examples" or "description"
    n_examples: int = 0
    rows: int = 0  # transformed inputs scored
    level: Level = "skipped"
    reason: str = ""
    votes: dict = field(default_factory=dict)  # the kind judge's tally when it was combined (soft level)

    @property
    def applied(self) -> bool:
        return self.level != "skipped"

    @property
    def accepted(self) -> bool:
        return self.level != "fail"

    def to_dict(self) -> dict:
        out = {"level": self.level, "accepted": self.accepted, "applied": self.applied, "reference": self.reference,
               "score": None if self.score is None else round(self.score, 3), "threshold": self.threshold,
               "soft_threshold": self.soft_threshold, "n_examples": self.n_examples, "rows": self.rows, "reason": self.reason}
        if self.votes:
            out["votes"] = self.votes
        return out


def relevance_gate(inputs: list[str], spec, embedder, *, rows: int = GATE_ROWS) -> GateVerdict:
    """Score a source's transformed inputs against the task's examples (else its description) and place them against the bars."""
    refs = [e.input for e in spec.examples if e.input.strip()]
    reference = "examples" if refs else "description"
    if embedder is None:
        return GateVerdict(reference=reference, n_examples=len(refs), reason="skipped: the build has no embedder, so the relevance gate was not run")
    texts = [t for t in inputs if str(t).strip()][:rows]
    if len(texts) < MIN_ROWS:
        return GateVerdict(reference=reference, n_examples=len(refs), rows=len(texts),
                           reason=f"skipped: only {len(texts)} transformed inputs to score (the gate needs {MIN_ROWS})")
    score = relevance_score(texts, refs or [spec.description], embedder)
    if not refs:
        return GateVerdict(score=score, reference="description", rows=len(texts),
                           reason=f"not a gate without examples: cosine {score:.2f} to the description is recorded only "
                                  "(calibration: right sources score as low against descriptions as wrong ones)")
    hard, soft = bars(len(refs))
    lv = level(score, "examples", len(refs))
    reason = {"fail": f"its rows are far from the examples: cosine {score:.2f}, bar {hard:.2f}",
              "soft": f"its rows are only loosely near the examples: cosine {score:.2f}, below {soft:.2f} (hard bar {hard:.2f})",
              "pass": f"its rows are near the examples: cosine {score:.2f}, bar {soft:.2f}"}[lv]
    return GateVerdict(score=score, threshold=hard, soft_threshold=soft, reference="examples", n_examples=len(refs),
                       rows=len(texts), level=lv, reason=reason)


def combine(gate: GateVerdict, judge) -> tuple[bool, str]:
    """The gate and the kind judge's verdict (acceptance.Acceptance, or None when it was not asked) -> (keep, reason when not).

    fail: rejected whatever the judge says. soft: rejected when most judged inputs are of a kind the
    task's examples are not. Otherwise the judge's own rule (no input of the task's kind) decides."""
    if gate.level == "fail":
        return False, gate.reason
    if judge is None:
        return True, ""
    from .acceptance import group

    task = {group(k) for k in judge.task_kinds}
    rows = [group(k) for k in judge.row_kinds]
    if gate.level == "soft" and task and "other" not in task and len(rows) >= 2:
        off = [k for k in rows if k not in task and k != "other"]
        gate.votes = {"judged": len(rows), "other_kind": len(off)}
        if 2 * len(off) > len(rows):
            return False, (f"{gate.reason}, and {len(off)} of {len(rows)} of its inputs read as another kind of text: "
                           f"{', '.join(judge.row_kinds)} against the {judge.reference}' {', '.join(judge.task_kinds)}")
    if not judge.accepted:
        return False, (f"its inputs are not the kind of text the task takes: {', '.join(judge.row_kinds)} "
                       f"against the {judge.reference}' {', '.join(judge.task_kinds)}")
    return True, ""
