"""Synthetic top-up: generate rows only where coverage is short.

Gaps are measured, not assumed: labels under their balanced share (or the whole set when the
sources fell short of --size). Generation is label-conditioned (TarGEN) and attribute-guided
(UniGen: attributes the LLM draws from the task and examples, cycled across requests) with a
temperature ramp for diversity; every synthetic row is deduplicated against everything kept.
Synthetic rows are `method = synthetic` and capped by --synthetic-fraction.

Rows are asked for several per call (--synthetic-batch): the prompt is paid once and the model keeps
the rows of one answer apart. Multiple-choice rows come back as parts (question, correct option,
wrong options) that code lays out, so the answer letter is always right and letters stay balanced.
Examples the set does not cover get rows on their subject (see coverage.py).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, Field, create_model

from . import rules
from .core.errors import RequestFailed
from .curate import CurateConfig, curate
from .llm import LLM, InvalidOutput
from .records import Row
from .task import TaskSpec


class Attributes(BaseModel):
    attributes: list[str] = Field(min_length=1, max_length=8)


MAX_INPUT = 600  # characters at most per written input; the limit of a request follows its examples' length


class SyntheticInput(BaseModel):
    input: str = Field(max_length=MAX_INPUT)


class SyntheticRow(BaseModel):
    input: str = Field(max_length=MAX_INPUT)
    output: str = Field(max_length=300)


class Subject(BaseModel):
    subject: str = Field(max_length=80)


def example_subject(example, llm: LLM) -> str:
    """What an example is about, in a few words: written rows get it as their attribute.

    Shown the example itself, the 1.5B copies it (and the copies fall to the contamination filter);
    given its subject, it writes new rows on that subject."""
    msg = (f"Input: {example.input[:400]}\nIn a few words, what kind of text is this input and what is it about? "
           "For example: 'a review of a kitchen blender' or 'a question about train timetables'.")
    try:
        return llm.structured([{"role": "user", "content": msg}], Subject, stage="topup", temperature=0.0).subject.strip() or "the same subject as the example"
    except (InvalidOutput, RequestFailed):
        return "the same subject as the example"


class SyntheticChoice(BaseModel):
    """A multiple-choice item as parts: code places the correct option at the letter the gap needs."""
    question: str = Field(max_length=MAX_INPUT)
    correct: str = Field(max_length=200)
    wrong: list[str]


def batch_model(item: type[BaseModel], n: int, *, wrong: int = 0, max_chars: int = MAX_INPUT) -> type[BaseModel]:
    """The response schema for `n` items at once: `wrong` fixes the wrong-option count of choice items,
    `max_chars` caps each input (the grammar stops a model that would ramble on)."""
    text = (str, Field(max_length=max_chars))
    if item is SyntheticChoice:
        item = create_model("SyntheticChoiceItem", __base__=SyntheticChoice, question=text,
                            wrong=(list[Annotated[str, Field(max_length=200)]], Field(min_length=wrong, max_length=wrong)))
    else:
        item = create_model(item.__name__ + "Item", __base__=item, input=text)
    return create_model(f"{item.__name__}Batch", rows=(list[item], Field(min_length=n, max_length=n)))


def length_limit(shots: list[Row]) -> int:
    """Characters a written input may take: twice the longest example shown, within 150..MAX_INPUT."""
    return min(MAX_INPUT, max(150, 2 * max((len(r.input) for r in shots), default=100)))


def finish_sentence(text: str, limit: int) -> str | None:
    """`text` as written, or, when the length limit cut it off, up to its last full sentence (None if little is left)."""
    text = text.strip()
    if len(text) < limit - 5:
        return text
    end = max(text.rfind(p) for p in (". ", "! ", "? ", ".\n"))
    return text[: end + 1] if end >= limit // 3 else None


def label_gaps(rows: list[Row], spec: TaskSpec, size: int, *, tolerance: float = 0.1) -> dict[str, int]:
    """Rows each label lacks for a balanced set of `size`; a label within `tolerance` of its share is not short."""
    counts = Counter(r.output for r in rows)
    gaps = {}
    for i, lb in enumerate(spec.labels):
        share = size // len(spec.labels) + (1 if i < size % len(spec.labels) else 0)
        if counts.get(lb, 0) < share * (1 - tolerance):
            gaps[lb] = share - counts.get(lb, 0)
    return gaps


def draw_attributes(spec: TaskSpec, llm: LLM) -> list[str]:
    shown = "; ".join(e.input[:120] for e in spec.examples[:3])
    msg = (f"Task: {spec.description}\n" + (f"Examples: {shown}\n" if shown else "") +
           "List short, varied attributes of inputs for this task (topics, styles, lengths, domains), one phrase each.")
    try:
        return llm.structured([{"role": "user", "content": msg}], Attributes, stage="topup").attributes
    except (InvalidOutput, RequestFailed):
        return ["everyday topic"]


def option_count(spec: TaskSpec) -> int:
    """Options per multiple-choice item: as many as the user's examples list, else 4."""
    counts = Counter(rules.choice_count(e.input) for e in spec.examples)
    counts.pop(0, None)
    n = counts.most_common(1)[0][0] if counts else (len(spec.labels) if 2 <= len(spec.labels) <= 8 else 4)
    return max(2, min(n, 8))


def _prompt(spec: TaskSpec, label: str | None, attributes: list[str], shots: list[Row], *, options: int = 0,
            near: bool = False) -> list[dict]:
    n = len(attributes)
    demo = "\n".join(f"- input: {r.input[:300]}" + ("" if label or options else f"\n  output: {r.output[:200]}") for r in shots)
    if options:
        want = (f"Write {n} new, different multiple-choice items. For each give: question (the question or statement, "
                f"without the options), correct (the full text of the right answer, never a letter), wrong ({options - 1} "
                f"plausible but wrong answers, full text).")
    elif label:
        want = (f"Write {n} new, different inputs" if n > 1 else "Write one new input") + f" whose correct output is \"{label}\"."
    else:
        want = f"Write {n} new, different inputs, each with its correct output." if n > 1 else "Write one new input with its correct output."
    attrs = "Attribute: " + attributes[0] if n == 1 else "Attributes, one per item: " + "; ".join(attributes)
    lines = attrs + ".\n" + (f"Examples of the kind of input:\n{demo}\n" if demo and not near else "")
    return [
        {"role": "system", "content": "You write new, realistic training examples for a task. Never copy an example."},
        {"role": "user", "content": f"Task: {spec.description}\n{want} Keep each input under {length_limit(shots)} characters.\n"
                                    + lines + "Answer in JSON."},
    ]


def _jobs(wants: list[str | None], shots_for: list[list[Row]] | None, batch: int) -> list[tuple[list[int], str | None]]:
    """Consecutive wants that share a label (and demonstrations) go to one request, `batch` at most."""
    jobs: list[tuple[list[int], str | None]] = []
    for i, label in enumerate(wants):
        last = jobs[-1] if jobs else None
        if (last and len(last[0]) < batch and last[1] == label
                and (shots_for is None or shots_for[last[0][0]] == shots_for[i])):
            last[0].append(i)
        else:
            jobs.append(([i], label))
    return jobs


def generate(spec: TaskSpec, wants: list[str | None], llm: LLM, *, seed: int, attributes: list[str], pool: list[Row],
             reporter=None, shots_for: list[list[Row]] | None = None, batch: int = 5,
             temperatures: tuple[float, float] = (0.7, 1.2)) -> list[Row]:
    """One synthetic row per entry of `wants` (a label, or None for a free row), `batch` rows per LLM call.

    Several rows per call share the prompt's cost and let the model keep them apart from each other.
    Multiple-choice rows come back as question, correct option and wrong options; code lays them out
    with the correct one at the wanted letter (cycled when none is wanted), so letters stay balanced
    and every answer names a listed option. `shots_for` gives the demonstrations per request (an
    uncovered example); otherwise two rows of the same label are drawn from `pool`, or the user's
    examples when the pool is empty.
    """
    rng = random.Random(seed)
    lettered = spec.output_kind == "letter"
    n_options = option_count(spec) if lettered else 0
    if lettered:
        letters = [rules.letter(i) for i in range(n_options)]
        wants = [w if w in letters else letters[i % n_options] for i, w in enumerate(wants)]
    jobs = _jobs([None] * len(wants) if lettered else wants, shots_for, max(1, batch))
    requests, models, temps, limits = [], [], [], []
    for j, (idx, label) in enumerate(jobs):
        if shots_for is not None:
            shots = shots_for[idx[0]]
        else:
            same = [r for r in pool if label is None or lettered or r.output == label] or pool
            shots = rng.sample(same, min(2, len(same))) if same else []
        shots = shots or [Row(e.input, e.output) for e in spec.examples[:2]]
        attrs = [attributes[i % len(attributes)] for i in idx]
        requests.append(_prompt(spec, None if lettered else label, attrs, shots, options=n_options, near=shots_for is not None))
        item = SyntheticChoice if lettered else SyntheticInput if spec.output_kind == "label" else SyntheticRow
        limits.append(length_limit(shots))
        models.append(batch_model(item, len(idx), wrong=n_options - 1, max_chars=limits[-1]))
        lo, hi = temperatures
        temps.append(round(lo + (hi - lo) * j / max(1, len(jobs) - 1), 1))  # temperature ramp across requests
    # requests that share a temperature and a schema run concurrently
    groups: dict[tuple, list[int]] = {}
    for j, t in enumerate(temps):
        groups.setdefault((t, len(jobs[j][0]), limits[j]), []).append(j)
    answers: dict[int, object] = {}
    for (t, _, _), js in groups.items():
        got = llm.structured_many([requests[j] for j in js], models[js[0]], stage="topup", temperature=t)
        answers.update(zip(js, got))
    out: list[Row] = []
    bare = lettered and options_only(spec)
    for j, (idx, label) in enumerate(jobs):
        a = answers.get(j)
        if isinstance(a, Exception) or a is None:
            continue
        for want, item in zip([wants[i] for i in idx], a.rows):
            row = _row(spec, want, item, rng, limits[j], bare)
            if row is not None:
                out.append(row)
    return out


_BARE_LABEL = re.compile(r"\(?[A-Za-z0-9]\)?[.)]?")


def options_only(spec: TaskSpec) -> bool:
    """Whether the task's items are their options alone (no question above them), as its examples show."""
    return bool(spec.examples) and all(
        rules.choice_count(e.input) and rules.choice_count(e.input) == len([x for x in e.input.splitlines() if x.strip()])
        for e in spec.examples)


def _row(spec: TaskSpec, want: str | None, item, rng: random.Random, limit: int = MAX_INPUT, bare: bool = False) -> Row | None:
    """One written item as a row, or None when it is unusable; `bare`: the task's items are options alone."""
    if isinstance(item, SyntheticChoice):
        if len(item.question) >= limit - 5:
            return None  # a question cut off by the length limit
        correct = rules.strip_option_prefix(item.correct)
        wrong = [rules.strip_option_prefix(w) for w in item.wrong]
        question = "" if bare else item.question.strip()
        if question and rules.strip_option_prefix(question) in (correct, *wrong):
            return None  # an option written again as the question
        if not (question or bare) or not correct or not all(wrong) or len({correct, *wrong}) < len(wrong) + 1:
            return None  # an empty or repeated option makes the item ambiguous
        if any(_BARE_LABEL.fullmatch(o) for o in (correct, *wrong)):
            return None  # options written as "A"/"B" (or "1"/"2") say nothing
        rng.shuffle(wrong)
        at = ord(want) - ord("A")
        options = wrong[:at] + [correct] + wrong[at:]
        text = rules.with_choices(question, options)
        return Row(text.lstrip("\n"), want, method="synthetic")
    text = finish_sentence(item.input, limit)
    output = want if want is not None else getattr(item, "output", "").strip()
    return Row(text, output, method="synthetic") if text and output else None


@dataclass
class ToppedUp:
    """What top-up gives back: the rows (sourced and synthetic), the synthetic rows it threw away
    by reason, and the example coverage before and after (with an embedder and user examples)."""

    rows: list[Row]
    drops: Counter = field(default_factory=Counter)
    stats: dict = field(default_factory=dict)


def topup(rows: list[Row], spec: TaskSpec, *, options, llm: LLM, reporter=None, max_rounds: int = 3, embedder=None) -> ToppedUp:
    """Rows plus synthetic rows for the gaps; the rows unchanged when nothing is short.

    Two kinds of gap: labels under their balanced share (or rows short of --size), then, with an
    `embedder` and user examples, examples with too few rows in their embedding neighbourhood
    (see coverage.py).
    """
    done = ToppedUp(rows)
    done.rows = _fill_gaps(rows, spec, options=options, llm=llm, reporter=reporter, drops=done.drops, max_rounds=max_rounds)
    if embedder is not None and spec.examples:
        done.rows = _cover_examples(done.rows, spec, options=options, llm=llm, reporter=reporter, drops=done.drops, embedder=embedder,
                                    stats=done.stats)
    return done


def _cover_examples(rows: list[Row], spec: TaskSpec, *, options, llm: LLM, reporter, drops, embedder, stats) -> list[Row]:
    """Synthetic rows written after each uncovered example, swapped in for sourced rows of the same output."""
    from .coverage import example_coverage

    before = example_coverage(rows, spec.examples, embedder)
    stats["example_coverage_before"] = before.to_dict()
    budget = int(options.size * options.synthetic_fraction) - sum(r.method == "synthetic" for r in rows)
    if not before.uncovered or budget <= 0:
        stats["example_coverage"] = before.to_dict()
        return rows
    if reporter:
        reporter.event("topup", message=f"top-up: synthetic rows near {len(before.uncovered)} uncovered examples")
    new: list[Row] = []
    for i in before.uncovered:
        need = min(budget - len(new), before.min_neighbours - before.neighbours[i])
        if need <= 0:
            break
        e = spec.examples[i]
        label = e.output if spec.output_kind == "label" and e.output in spec.labels else None
        # twice what is needed, keeping the ones that landed nearest the example: the 1.5B often wanders
        # off its subject, batched or at higher temperatures more so (hence one row per call, cooler)
        fresh = generate(spec, [label] * (2 * need), llm, seed=options.seed + 100 + i, pool=rows, shots_for=[[Row(e.input, e.output)]] * (2 * need),
                         attributes=[example_subject(e, llm)], batch=1, temperatures=(0.5, 0.8))
        result = curate(rows + new + fresh, spec, eval_texts=options.eval_texts, config=CurateConfig(embedding_duplicates=False))
        ok = result.survivors_from(len(rows) + len(new))  # the fresh rows that survived, as curated
        if ok:
            sims = embedder.encode([r.input for r in ok]) @ embedder.encode([e.input])[0]
            ok = [ok[j] for j in sorted(range(len(ok)), key=lambda j: -float(sims[j]))]
        drops["synthetic_rejected"] += len(fresh) - len(ok)
        drops["synthetic_further_from_example"] += max(0, len(ok) - need)
        new += ok[:need]
    # keep --size: each new row replaces a sourced row with the same output, taken from the end
    out = list(rows)
    for r in new:
        if len(out) < options.size:
            out.append(r)
            continue
        for j in range(len(out) - 1, -1, -1):
            if out[j].method != "synthetic" and (spec.output_kind != "label" or out[j].output == r.output):
                out[j] = r
                break
    stats["example_coverage"] = example_coverage(out, spec.examples, embedder).to_dict()
    return out


def _fill_gaps(rows: list[Row], spec: TaskSpec, *, options, llm: LLM, reporter, drops, max_rounds: int) -> list[Row]:
    size = options.size
    budget = int(size * options.synthetic_fraction)
    if spec.output_kind == "label" and spec.labels:
        need = label_gaps(rows, spec, size)
    else:
        need = {None: size - len(rows)} if len(rows) < size else {}
    total_need = min(budget, sum(need.values()))
    if total_need <= 0:
        return rows[:size]
    if reporter:
        reporter.event("topup", message=f"top-up: {total_need} synthetic rows for " + ", ".join(f"{k or 'all'}={v}" for k, v in need.items()))
    attributes = draw_attributes(spec, llm)
    made: list[Row] = []
    cfg = CurateConfig(embedding_duplicates=False)
    for rnd in range(max_rounds):
        counts = Counter(r.output for r in made)
        wants = [lb for lb, n in need.items() for _ in range(max(0, n - counts.get(lb, 0) if lb else n - len(made)))]
        wants = wants[: total_need - len(made)]
        if not wants:
            break
        fresh = generate(spec, wants, llm, seed=options.seed + rnd, attributes=attributes, pool=rows, reporter=reporter,
                         batch=options.synthetic_batch)
        # dedup against everything kept: run the curation filters over kept + synthetic, keep surviving synthetic rows
        result = curate(rows + made + fresh, spec, eval_texts=options.eval_texts, config=cfg)
        new = result.survivors_from(len(rows) + len(made))  # the fresh rows that survived, as curated
        drops["synthetic_rejected"] += len(fresh) - len(new)
        made += new
    return rows + made[:total_need]
