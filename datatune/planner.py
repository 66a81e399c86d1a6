"""Plan one candidate (dataset, config): the LLM picks the columns, code derives and checks the rest.

Measured on the embedded 1.5B model (DESIGN.md): plans written wholly by the model were right in
at most 23 of 30 runs and rejected no wrong dataset; with the model choosing only the input and
answer columns, and code doing label maps, answer extraction, option rendering, the leak check and
validation on real rows, 27 of 30 were right and every wrong pair was rejected. This module is that
split. A failed validation re-asks the model with the errors (bounded), then rejects.
"""

from __future__ import annotations

import math
import random
import re
import statistics
from dataclasses import dataclass
from typing import Literal

import datasets
from pydantic import BaseModel, create_model

from . import rules
from .compile import answer_key, answers_of, class_names, compile_plan, get_path, one_line, parse_path, render, root, same_answer
from .core.errors import RequestFailed
from .core.types import ConfigInfo, DatasetEntry
from .labels import check_label_map, match_labels, norm, propose_label_map
from .llm import LLM, InvalidOutput
from .model_derive import ModelRejected, derive_with_model
from .plan import Choices, OutputRule, Plan
from .task import TaskSpec

SAMPLE_ROWS = 200
PLANNER_MODES = ("hybrid", "full")
PlannerMode = Literal["hybrid", "full"]


@dataclass
class Candidate:
    entry: DatasetEntry
    config: ConfigInfo
    rank: int = 0
    score: float = 0.0
    siblings: tuple[str, ...] = ()  # other configs of the same kind (same schema and labels)
    why: tuple[str, ...] = ()  # what matched in retrieval

    @property
    def key(self) -> str:
        return f"{self.entry.id}:{self.config.name}"


def reject(c: Candidate, reason: str, *, kind: str = "planner", **checks) -> Plan:
    return Plan(dataset=c.entry.id, config=c.config.name, splits=list(c.config.splits), keep=False, reason=reason, reject_kind=kind,
                license=c.entry.license, rank=c.rank, checks=checks)


# -- what the model is asked --------------------------------------------------------------------
def column_choice_model(columns: list[str]) -> type[BaseModel]:
    """Every column reference is an enum of the real column names: the model can't invent one."""
    Col = Literal[tuple(columns)]  # type: ignore[valid-type]
    from pydantic import Field

    return create_model(
        "ColumnChoice",
        input_columns=(list[Col], Field(min_length=1, max_length=min(4, len(columns)))),
        output_column=(Col, ...),
    )


def clip(value: str, n: int = 160) -> str:
    """Long values cut to their start and end, so answer markers at the end stay visible."""
    value = value.replace("\n", " ⏎ ")
    return value if len(value) <= n else value[: n * 2 // 3] + " … " + value[-n // 3:]


def describe_columns(config: ConfigInfo) -> str:
    lines = []
    for f in config.features:
        extra = f" (classes: {', '.join(map(str, f.labels[:12]))})" if f.labels else ""
        lines.append(f"- {f.name}: {f.dtype}{extra}")
    return "\n".join(lines)


def spec_line(spec: TaskSpec) -> str:
    out = {"label": f"one of: {', '.join(spec.labels)}", "number": "a number", "letter": "the letter of the correct option",
           "span": "a span of the input passage", "tags": "one tag per token", "code": "program code", "text": "free text"}[spec.output_kind]
    return f"Task: {spec.description}\nOutput: {out}"


def sample_text(sample: list[dict]) -> str:
    return "\n".join("{" + ", ".join(f"{k}: {clip(render(v))}" for k, v in r.items()) + "}" for r in sample[:3])


def dataset_line(spec: TaskSpec, c: Candidate) -> str:
    return f"{spec_line(spec)}\n\nDataset {c.entry.id} (config {c.config.name}): {clip(c.entry.summary, 300)}"


def column_prompt(spec: TaskSpec, c: Candidate, sample: list[dict], errors: str = "") -> list[dict]:
    user = (
        f"{dataset_line(spec, c)}\nColumns:\n{describe_columns(c.config)}\nSample rows:\n{sample_text(sample)}\n\n"
        "Pick the columns a model should read as the task input, and the one column that holds the answer."
    )
    if errors:
        user += f"\nA previous choice failed on real rows: {errors}. Choose differently if another choice fits."
    return [{"role": "system", "content": "You map dataset columns to a task. Answer in JSON."}, {"role": "user", "content": user}]


# -- what code derives ---------------------------------------------------------------------------
def sample_rows(ds: datasets.Dataset, n: int = SAMPLE_ROWS, seed: int = 0) -> list[dict]:
    idx = sorted(random.Random(seed).sample(range(len(ds)), min(n, len(ds))))
    return ds.select(idx).to_list()


def _answer_path(column: str, features: datasets.Features) -> str:
    """SQuAD-style `answers` (a struct of lists) -> `answers.text[0]`."""
    f = features.get(root(column))
    sub = getattr(f, "feature", f)
    if isinstance(sub, dict) and "text" in sub:
        return f"{column}.text[0]"
    return column


def _is_list(f) -> bool:
    return isinstance(f, (datasets.Sequence, list)) or isinstance(f, getattr(datasets, "List", ()))


def find_options(features: datasets.Features, answer: str, prefer: list[str]) -> tuple[list[str], str | None]:
    """Where a row's answer options are: one list column, a struct's `text` list (with its `label`
    keys), or string columns named stem + number/letter (sol1/sol2, answerA..answerC); ([], None) if none.

    Columns the model listed (`prefer`) come first; the answer column is never an option.
    """
    names = [c for c in prefer if root(c) in features] + [c for c in features if c not in prefer]
    for c in dict.fromkeys(root(c) for c in names):
        if c == root(answer):
            continue
        f = features[c]
        if isinstance(f, dict) and "text" in f and _is_list(f["text"]):
            keys = f"{c}.label" if "label" in f and _is_list(f["label"]) else None
            return [f"{c}.text"], keys
        if _is_list(f) and isinstance(getattr(f, "feature", None), datasets.Value) and f.feature.dtype in ("string", "large_string"):
            return [c], None
    numbered = numbered_columns(features, len(class_names(features, answer) or []))
    return [c for c in numbered if c != root(answer)], None


def _answers_pick_options(column: str, options: list[str], labels, sample: list[dict]) -> bool:
    """Whether `column` points into `options` on the sampled rows: an index or a letter (a class label
    counts), or the text of one of the row's options in at least half of them."""
    if labels:
        return True
    pairs = [(r, render(get_path(r, parse_path(column))).strip()) for r in sample]
    pairs = [(r, v) for r, v in pairs if v]
    if pairs and all(v.lstrip("-").isdigit() or (len(v) == 1 and v.isalpha()) for _, v in pairs):
        return True
    hits = 0
    for r, v in pairs:
        opts = []
        for o in options:
            got = get_path(r, parse_path(o))
            opts.extend(got if isinstance(got, list) else [got])
        hits += answer_key(v) in {answer_key(render(x)) for x in opts}
    return hits >= 0.5 * max(1, len(pairs))


def _index_column(features: datasets.Features, sample: list[dict], *, exclude: set[str]) -> str | None:
    """A column whose values are option indexes or letters (label, answerKey): few distinct small values."""
    for name, f in features.items():
        if name in exclude:
            continue
        vals = {render(r.get(name)).strip() for r in sample} - {"", "-1"}
        if 2 <= len(vals) <= 6 and all(v.isdigit() and int(v) <= 6 or (len(v) == 1 and v.isalpha()) for v in vals):
            return name
    return None


def _index_base(values: list[str], n_options: int) -> int:
    """1 when the answers count options from 1 (social_i_qa's '1'..'3'), else 0."""
    nums = [int(v) for v in values if v.strip().lstrip("-").isdigit()]
    return 1 if nums and min(nums) >= 1 and max(nums) == n_options else 0


def derive_output(spec: TaskSpec, column: str, features: datasets.Features, sample: list[dict], inputs: list[str],
                  label_map: dict[str, str] | None = None, seed: int = 0) -> tuple[OutputRule | None, Choices | None, list[str], str]:
    """The output rule (and option rendering) for the chosen answer column, or a reason to reject.

    `label_map` is the label matching already done for a label task (code and checked LLM pairs);
    without it, code matches the names here. A QA source answers a verification task (question +
    candidate answer -> correct or not) or a multiple-choice task without options by rows rewritten
    by rule (`answer_pairs`, `distractor_choices`).
    """
    labels = class_names(features, column)
    values = [render(r.get(root(column))) for r in sample]
    f = features.get(root(column))
    is_seq = _is_list(f)

    if spec.output_kind == "tags" or (labels and is_seq):
        if not (labels and is_seq):
            return None, None, inputs, f"{column} is not a sequence of tags, one per token"
        # parallel annotations (POS or chunk tags beside NER tags) are not input text
        inputs = [c for c in inputs if not class_names(features, c)]
        if not inputs:
            return None, None, inputs, "no token column among the inputs"
        return OutputRule(kind="column", column=column), None, inputs, ""

    if spec.output_kind == "label":
        source = labels if labels else sorted({v.strip() for v in values if v.strip()})
        free = not labels and len(source) > 20
        mapping = {} if free else label_map if label_map is not None else match_labels(source, spec.labels, spec.label_meanings)
        covered = set(mapping.values())
        need = max(2, math.ceil(len(spec.labels) / 2)) if len(spec.labels) >= 2 else 1
        if len(covered) < min(need, len(spec.labels)) and not labels and (verdicts := verification_labels(spec)):
            return answer_pairs(verdicts, column, features, sample, inputs, seed)
        if free:
            return None, None, inputs, f"{column} is free text, not a label"
        if len(covered) < min(need, len(spec.labels)):
            what = f"only {sorted(covered)} of" if covered else "none of"
            return None, None, inputs, f"labels of {column} ({', '.join(source[:8])}) give {what} the task's labels ({', '.join(spec.labels)})"
        return OutputRule(kind="label_map", column=column, label_map=mapping), None, inputs, ""

    group = numbered_columns(features)
    if spec.output_kind in ("text", "span", "code", "letter") and root(column) in group:
        # the model named one option column (cosmos_qa's answer0) as the answer: the answer is the option
        # an index column points at, so that column is the answer and the group holds the options
        index = _index_column(features, sample, exclude=set(group))
        if index:
            column = index
            labels, values = class_names(features, column), [render(r.get(column)) for r in sample]
    options, keys = find_options(features, column, inputs)
    if spec.output_kind == "letter":
        if options and not keys and not _answers_pick_options(column, options, labels, sample):
            options = []  # a list of strings that isn't the answer's options (mbpp's test_list beside its text)
        if not options:
            return distractor_choices(spec, column, features, sample, inputs, seed)
        question = [c for c in inputs if root(c) != root(column) and root(c) not in {root(o) for o in options}]
        if not question:
            return None, None, inputs, "no question column besides the options"
        choices = Choices(options=options, strip_prefixes=len(options) == 1)
        base = 0 if keys else _index_base(values, len(options) if len(options) > 1 else max(2, len(labels or [])))
        return OutputRule(kind="choice_letter", column=column, option_keys=keys, index_base=base, lowercase=spec.lowercase_letters), choices, question, ""

    index_like = bool(labels) or (bool(values) and all(v.strip().lstrip("-").isdigit() or (len(v.strip()) == 1 and v.strip().isalpha()) for v in values if v.strip()))
    if spec.output_kind in ("text", "span", "code") and index_like and options:
        # the answer is an option's index or letter: the output is that option's text (piqa, cosmos_qa)
        question = [c for c in inputs if root(c) != root(column) and root(c) not in {root(o) for o in options}]
        if not question:
            return None, None, inputs, "no question column besides the options"
        n = len(options) if len(options) > 1 else 4
        base = 0 if keys else _index_base(values, n)
        return OutputRule(kind="choice_text", column=column, options=options, option_keys=keys, index_base=base, wrong=spec.wrong_answer), None, question, ""

    if spec.wrong_answer:
        return None, None, inputs, "the task asks for a wrong answer, and this dataset has no wrong options to take one from"
    if labels:
        return None, None, inputs, f"{column} is a class label, the task wants {spec.output_kind}"

    if spec.output_kind == "number":
        marker = rules.detect_marker(values)
        if marker:
            return OutputRule(kind="column", column=column, extract="marker", marker=marker, number=True), None, inputs, ""
        if rules.share_with_boxed(values) >= 0.9:
            return OutputRule(kind="column", column=column, extract="boxed", number=True), None, inputs, ""
        return OutputRule(kind="column", column=column, number=True), None, inputs, ""

    if spec.output_kind == "span":
        if options and root(column) in {root(o) for o in options}:
            return None, None, inputs, f"{column} holds answer options, not a span of a passage"
        # option columns rendered into the input would let a letter or option pass as a 'span'
        inputs = [c for c in inputs if root(c) not in {root(o) for o in options}]
        return OutputRule(kind="column", column=_answer_path(column, features)), None, inputs, ""

    # a SQuAD `answers` struct, as input (question generation: passage + answer -> question) or output, is its text
    inputs = [_answer_path(c, features) if _answer_struct(features.get(c)) else c for c in inputs]
    column = _answer_path(column, features) if _answer_struct(features.get(column)) else column
    return OutputRule(kind="column", column=column), None, inputs, ""


def _answer_struct(f) -> bool:
    """SQuAD's `answers`: a struct of lists with `text` (and `answer_start`), not options with `label` keys."""
    return isinstance(f, dict) and "text" in f and "label" not in f


# -- rows rewritten by rule: answer verification, distractors drawn from other rows ------------------
_CORRECT_WORDS = {"yes", "true", "correct", "right", "valid", "1", "y", "t"}
_WRONG_WORDS = {"no", "false", "incorrect", "wrong", "invalid", "0", "n", "f"}
_ABOUT_AN_ANSWER = re.compile(r"\b(?:the|an?|candidate|given|proposed|provided|this|its)\s+(?:\w+\s+)?answers?\b[^.?!\n]{0,80}?"
                              r"\b(?:correct|incorrect|right|wrong|valid|accurate|true|false)\b"
                              r"|\b(?:correct|incorrect|right|wrong|valid|accurate)\s+(?:\w+\s+)?answers?\b", re.I)
POOL_SIZE = 256
TRANSFORMS = {  # what each rewrite does, in words, for plans.json and the card
    "verify_answer": lambda o: (f"answer verification pairs: each row's question with its own answer ({o.label_map['correct']!r}) "
                                f"or, for half the rows, another row's answer ({o.label_map['incorrect']!r}), drawn from {len(o.pool)} "
                                f"answers of the source sampled at plan time, seed {o.seed}"),
    "distractor_letter": lambda o: (f"multiple choice from other rows: each row's answer among {o.n_options - 1} distractors, other rows' "
                                    f"answers distinct from it and each other, drawn from {len(o.pool)} answers of the source "
                                    f"sampled at plan time, shuffled with seed {o.seed}; the output is the answer's letter"),
}


def _says_correct(label: str, meaning: str) -> bool | None:
    """Whether a label means 'the answer is correct' (True), 'it is not' (False) or neither (None)."""
    m = norm(meaning)
    if m:
        if re.search(r"\b(?:not|incorrect|wrong|false|invalid|inaccurate|isn t|doesn t)\b", m):
            return False
        if re.search(r"\b(?:correct|right|true|valid|accurate)\b", m):
            return True
    w = norm(label)
    return True if w in _CORRECT_WORDS else False if w in _WRONG_WORDS else None


def verification_labels(spec: TaskSpec) -> dict[str, str] | None:
    """{'correct': label, 'incorrect': label} when the task asks whether a given answer is correct: two labels,
    one meaning correct and one not (by the definition's meanings, else the words), and a definition about an answer."""
    if spec.output_kind != "label" or len(spec.labels) != 2 or not _ABOUT_AN_ANSWER.search(spec.description):
        return None
    says = {lb: _says_correct(lb, spec.label_meanings.get(lb, "")) for lb in spec.labels}
    right = [lb for lb, v in says.items() if v is True]
    wrong = [lb for lb, v in says.items() if v is False]
    return {"correct": right[0], "incorrect": wrong[0]} if len(right) == 1 and len(wrong) == 1 else None


_WRITES_A_QUESTION = re.compile(r"\b(?:write|generate|ask|create|produce|formulate|compose|pose)\w*\s+(?:(?!answers?\b)\w+\s+){0,2}questions?\b", re.I)


def writes_a_question(spec: TaskSpec) -> bool:
    """The task's output is a question (question generation), by its examples or its definition."""
    outs = [e.output.strip() for e in spec.examples]
    return spec.output_kind == "text" and (bool(outs) and all(o.endswith("?") for o in outs) or bool(_WRITES_A_QUESTION.search(spec.description)))


def swap_roles(spec: TaskSpec, output_column: str, inputs: list[str], columns: list[str], sample: list[dict]) -> tuple[str, list[str], str]:
    """A task that writes the question over a QA source: the question column is the output and the answer an input.
    The model, asked for the column holding the answer, names the QA source's answer column."""
    if not writes_a_question(spec) or _question_like(output_column, sample):
        return output_column, inputs, ""
    q = next((c for c in [*inputs, *columns] if c != output_column and _question_like(c, sample)), None)
    if q is None:
        return output_column, inputs, ""
    return q, [c for c in inputs if c != q] + [output_column], f"{q} is the output and {output_column} an input: the task writes the question"


def _question_like(column: str, sample: list[dict]) -> bool:
    if re.search(r"question|query|problem", root(column), re.I):
        return True
    vals = [render(get_path(r, parse_path(column))).strip() for r in sample]
    return bool(vals) and sum(v.endswith("?") for v in vals) >= 0.5 * len(vals)


def _answers_are_spans(column: str, inputs: list[str], sample: list[dict]) -> bool:
    """Whether the answer is a piece of the input text in at least half of the sampled rows."""
    hits = n = 0
    for r in sample:
        a = answers_of(get_path(r, parse_path(column)))
        if not a:
            continue
        n += 1
        text = " ".join(render(get_path(r, parse_path(c))) for c in inputs)
        hits += bool(a[0].strip()) and a[0].strip().lower() in text.lower()
    return n > 0 and hits >= 0.5 * n


OWN_ANSWERS = 0.9  # share of distinct answers in the sample from which each row has an answer of its own


def answer_pool(column: str, features: datasets.Features, sample: list[dict], inputs: list[str], need: int) -> tuple[list[str], list[str], str]:
    """(pool, inputs, why not): other rows' answers to draw from, when `column` holds short free-text answers
    to a question among the inputs. The pool is drawn at plan time from the sample, so it is part of the plan."""
    inputs = [c for c in inputs if root(c) != root(column)]
    if class_names(features, column):
        return [], inputs, f"{column} is a class label, not an answer to draw other rows' answers from"
    firsts = [a[0] for a in (answers_of(get_path(r, parse_path(column))) for r in sample) if a]
    # other rows' answers are wrong for this row when the input asks a question, or when every row has
    # an answer of its own about the whole input (code and its description, an article and its title):
    # not for shared answers, nor for spans of a passage (they answer a question the row doesn't show)
    own = len({answer_key(a) for a in firsts}) >= OWN_ANSWERS * max(1, len(firsts)) and not _answers_are_spans(column, inputs, sample)
    if not inputs or not (own or any(_question_like(c, sample) for c in inputs)):
        return [], inputs, "no question among the input columns, and rows share their answers"
    if len(firsts) < 0.5 * len(sample):
        return [], inputs, f"{column} is empty in most rows"
    if statistics.median(len(a) for a in firsts) > 100:
        return [], inputs, f"{column} holds long texts, not short answers"
    pool: dict[str, str] = {}
    for a in firsts:
        if len(a) <= 200 and answer_key(a):
            pool.setdefault(answer_key(a), one_line(a))  # as the rows show it: 'May\xa01' -> 'May 1'
    pool = list(pool.values())[:POOL_SIZE]
    if len(pool) < max(20, 3 * need):
        return [], inputs, f"{column} has only {len(pool)} distinct answers in {len(sample)} rows, too few to draw others from"
    return pool, inputs, ""


def answer_pairs(verdicts: dict[str, str], column: str, features, sample, inputs, seed: int):
    """Verification rows: question + the row's own answer (correct) or another row's (incorrect), half each."""
    pool, inputs, why = answer_pool(column, features, sample, inputs, 1)
    if not pool:
        return None, None, inputs, f"the task asks whether an answer is correct, and {why}"
    return OutputRule(kind="verify_answer", column=column, label_map=verdicts, pool=pool, seed=seed), None, inputs, ""


def distractor_choices(spec: TaskSpec, column: str, features, sample, inputs, seed: int):
    """Multiple-choice rows from a QA source without options: the answer among other rows' answers."""
    n = len(spec.letters) if len(spec.letters) >= 2 else 4
    pool, inputs, why = answer_pool(column, features, sample, inputs, n)
    if not pool:
        return None, None, inputs, f"no answer options in the dataset, and {why}"
    return OutputRule(kind="distractor_letter", column=column, pool=pool, seed=seed, n_options=n, lowercase=spec.lowercase_letters), None, inputs, ""


def numbered_columns(features: datasets.Features, n: int = 0) -> list[str]:
    """The largest group of string columns named stem + number or letter (`choice1`, `answerA`), in order.

    With `n`, only a group of exactly `n` columns (one per class of the answer) counts.
    """
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, f in features.items():
        m = re.fullmatch(r"(.*?[a-z_])(\d+|[A-E])", name)
        if m and isinstance(f, datasets.Value) and f.dtype in ("string", "large_string"):
            key = m.group(2).zfill(4) if m.group(2).isdigit() else m.group(2)
            groups.setdefault(m.group(1) + ("#" if m.group(2).isdigit() else "@"), []).append((key, name))
    fits = [sorted(g) for g in groups.values() if len(g) >= 2 and (not n or len(g) == n)]
    return [name for _, name in max(fits, key=len)] if fits else []


def validate(plan: Plan, spec: TaskSpec, features: datasets.Features, sample: list[dict]) -> tuple[list[str], dict]:
    """Run the compiled plan on real rows; the errors that break the spec (empty when it's good)."""
    mapper = compile_plan(plan, features)
    results = [mapper.map_row(r) for r in sample]
    kept_rows = [r for r, (_, _, reason) in zip(sample, results) if reason is None]
    kept = [(i, o) for i, o, reason in results if reason is None]
    n = len(results)
    checks = {"rows_checked": n, "rows_kept": len(kept), "drops": {}}
    for _, _, reason in results:
        if reason:
            checks["drops"][reason] = checks["drops"].get(reason, 0) + 1
    errors = []
    if n == 0:
        return ["the dataset has no rows"], checks
    empties = n - len(kept) - checks["drops"].get("label_unmapped", 0) - checks["drops"].get("no_label", 0)
    if empties / n > 0.05:
        errors.append(f"{empties} of {n} rows gave an empty input or output")
    if not kept:
        return errors or ["no row survived the plan"], checks
    outs = [o for _, o in kept]
    share = lambda pred: sum(map(pred, kept)) / len(kept)  # noqa: E731
    if spec.output_kind == "label":
        outside = sorted({o for o in outs if o not in spec.labels})
        if outside:
            errors.append(f"outputs outside the label set: {outside[:5]}")
        checks["labels_covered"] = sorted(set(outs) & set(spec.labels))
        if len(checks["labels_covered"]) < min(2, len(spec.labels)):
            errors.append(f"outputs cover only {checks['labels_covered']} of {spec.labels}")
        labelled = len(kept) + checks["drops"].get("label_unmapped", 0)
        checks["mapped_share"] = round(len(kept) / max(1, labelled), 3)
        missing = [lb for lb in spec.labels if lb not in checks["labels_covered"]]
        if missing:
            checks["labels_missing"] = missing
        if checks["mapped_share"] < 0.1 or (checks["mapped_share"] < 0.5 and missing):
            # TREC's 'ENTY:sport' and 'ENTY:techmeth' name two news topics, but 3% of its questions map to one;
            # poem_sentiment keeps (33% of its verses are positive or negative, and it fills both labels)
            errors.append(f"only {checks['mapped_share']:.0%} of its labelled rows have a label the task knows"
                          + (f", and it gives none of {missing}" if missing else ""))
    elif spec.output_kind == "number":
        s = share(lambda io: rules.is_number(io[1]))
        checks["numeric_share"] = round(s, 3)
        if s < 0.95:
            errors.append(f"only {s:.0%} of outputs are numbers")
        if len(kept) >= 50 and len(set(outs)) <= 10:
            # QuAIL's correct_answer_id is a number too: an option index or class id, not an answer
            errors.append(f"its {len(kept)} answers take only {len(set(outs))} values: an index or class id, not a numeric answer")
    elif spec.output_kind == "letter":
        s = share(lambda io: len(io[1]) == 1 and io[1].isalpha())
        if s < 0.95:
            errors.append(f"only {s:.0%} of outputs are option letters")
        if len(set(outs)) < 2:
            errors.append("every answer is the same letter")
        if spec.letters:
            beyond = sorted({o for o in outs if o not in spec.letters})
            if len(beyond) and sum(o in beyond for o in outs) / len(outs) > 0.02:
                # AQuA's five options for a task whose questions have four
                errors.append(f"answers {beyond} are beyond the task's options {spec.letters[0]}-{spec.letters[-1]}")
    elif spec.output_kind == "tags":
        s = share(lambda io: len(io[1].split()) == len(io[0].split()))
        checks["aligned_share"] = round(s, 3)
        if s < 0.95:
            errors.append(f"only {s:.0%} of rows have one tag per token")
    elif spec.output_kind == "span":
        # a span of the passage itself: the longest input field, not rendered options or a letter found in them
        def passage(row: dict) -> str:
            vals = [render(get_path(row, parse_path(c))) for c in plan.input_columns]
            return max(vals, key=len) if vals else ""

        spans = [o for (_, o), r in zip(kept, kept_rows) if len(o.strip()) >= 2 and o in passage(r) and o.strip() != passage(r).strip()]
        s = len(spans) / len(kept)
        if plan.choices is not None:
            errors.append("a span task takes no answer options")
        if len(set(outs)) < 0.5 * len(outs):
            errors.append(f"its {len(outs)} answers take only {len(set(outs))} values, not spans of a passage")
        checks["span_share"] = round(s, 3)
        if s < 0.95:
            errors.append(f"only {s:.0%} of outputs are spans of the input")
    else:
        s = share(lambda io: io[1].strip() != io[0].strip())
        if s < 0.95:
            errors.append("the output repeats the input")
    if plan.output is not None and plan.output.kind in TRANSFORMS:
        errors += _check_rewrites(plan.output, kept, kept_rows, checks)
    return errors, checks


def _check_rewrites(out: OutputRule, kept: list[tuple[str, str]], rows: list[dict], checks: dict) -> list[str]:
    """Rewritten rows checked against their source rows: a pair says correct exactly when it shows the row's
    own answer, and about half do; a question's options are distinct and the answer is at the output letter."""
    errors = [] if len(kept) >= min(20, len(rows)) else [f"only {len(kept)} rows could be rewritten"]
    path, good, correct = parse_path(out.column or ""), 0, 0
    for (text, o), r in zip(kept, rows):
        answers = answers_of(get_path(r, path))
        if out.kind == "verify_answer":
            shown = text.rsplit("\nAnswer: ", 1)[-1]
            own = answer_key(shown) == answer_key(answers[0])
            correct += o == out.label_map["correct"]
            good += (o == out.label_map["correct"]) == own and (own or not same_answer(shown, answers))
        else:
            opts = [line.split(". ", 1)[-1] for line in text.splitlines()[-out.n_options:]]
            at = ord(o.upper()) - ord("A")
            good += (len({answer_key(x) for x in opts}) == out.n_options and 0 <= at < len(opts)
                     and answer_key(opts[at]) == answer_key(answers[0]) and not any(same_answer(x, answers) for i, x in enumerate(opts) if i != at))
    checks["rewrites_ok_share"] = round(good / len(kept), 3)
    if good < 0.99 * len(kept):
        errors.append(f"only {good / len(kept):.0%} of the rewritten rows hold together (answer shown, distinct options)")
    if out.kind == "verify_answer":
        checks["correct_share"] = round(correct / len(kept), 3)
        if not 0.3 <= correct / len(kept) <= 0.7:
            errors.append(f"{correct / len(kept):.0%} of the pairs show the correct answer, not about half")
    return errors


def drop_leaks(inputs: list[str], plan: Plan, features, sample: list[dict]) -> tuple[list[str], list[str]]:
    """Input columns (other than the first) that state the answer in most rows are removed."""
    mapper = compile_plan(plan, features)
    mapped = [(r, mapper.map_row(r)) for r in sample]
    outs = [o for _, (_, o, why) in mapped if why is None]
    rows = [r for r, (_, _, why) in mapped if why is None]
    leaked = []
    for col in inputs[1:]:
        vals = [render(r.get(root(col))) for r in rows]
        if rules.leaks_answer(vals, outs):
            leaked.append(col)
    return [c for c in inputs if c not in leaked], leaked


def _label_need(spec: TaskSpec) -> int:
    """How many of the task's labels a source must fill: at least two, and at least half of them."""
    return min(len(spec.labels), max(2, math.ceil(len(spec.labels) / 2)))


def _opaque(label: str) -> bool:
    """A label that is a code rather than a word: '0', 'HUM', 'ENTY:sport', 'not_equivalent'."""
    t = str(label).strip()
    return t.lstrip("-").isdigit() or (t.isupper() and len(t) <= 5) or "_" in t or ":" in t


def _row_text(row: dict, skip: str) -> str:
    return "\n".join(f"{k}: {clip(render(v), 300)}" for k, v in row.items() if k != skip and isinstance(v, (str, list)) and render(v).strip())


def label_map_for(spec: TaskSpec, column: str, features: datasets.Features, sample: list[dict], llm: LLM | None, *,
                  seed: int = 0) -> tuple[dict[str, str], dict]:
    """Source label -> task label for one column: code first (names, stems, negation, the definition's
    meanings), then, while task labels stay uncovered, the LLM's proposal, kept only where blind LLM
    labels of that label's rows agree with it. Returns the map and what the check found."""
    names = class_names(features, column)
    if names is None:
        names = sorted({render(r.get(root(column))).strip() for r in sample if render(r.get(root(column))).strip()})
        if len(names) > 20:
            return {}, {}
    mapping = match_labels(names, spec.labels, spec.label_meanings)
    if llm is None or len(set(mapping.values())) == len(spec.labels) or len(names) > 16:
        return mapping, {}
    # the LLM is asked only where names can't be read as words: codes (HUM, ENTY:sport, 0/1, not_equivalent),
    # labels the definition explains, or a partial match; 'World'/'Sports' against 'positive'/'negative' differ in meaning
    if not (mapping or spec.label_meanings or any(_opaque(x) for x in [*names, *spec.labels])):
        return mapping, {}
    unmatched = [n for n in names if n not in mapping]
    if not unmatched:
        return mapping, {}
    try:
        proposed = propose_label_map(llm, spec, names, column, known=mapping)
    except (InvalidOutput, RequestFailed):
        return mapping, {"proposed": {}, "error": "no valid label map from the LLM"}
    proposed = {k: v for k, v in proposed.items() if k not in mapping and (v not in mapping.values() or v in proposed.values())}
    if not proposed:
        return mapping, {"proposed": {}}
    by_label: dict[str, list[str]] = {}
    for r in sample:
        v = r.get(root(column))
        name = names[v] if isinstance(v, int) and class_names(features, column) and 0 <= v < len(names) else render(v).strip()
        if name in proposed:
            by_label.setdefault(name, []).append(_row_text(r, root(column)))
    try:
        check = check_label_map(llm, spec, proposed, by_label, seed=seed)
    except (InvalidOutput, RequestFailed):
        return mapping, {"proposed": proposed, "error": "the blind label check got no valid answer"}
    taken = set(mapping.values())
    confirmed = {k: v for k, v in check.confirmed.items() if not (k in check.corrected and v in taken)}
    return {**mapping, **confirmed}, check.to_dict()


def usable_columns(columns: list[str], sample: list[dict], *, empty: float = 0.9) -> list[str]:
    """The columns the model may choose from: not those empty in `empty` of the sampled rows (mbpp's
    `test_setup_code` is '' in 199 of 200: as an input it gives no row). All of them if fewer than two are left."""
    full = [c for c in columns if sum(not render(r.get(c)).strip() for r in sample) < empty * len(sample)]
    return full if len(full) >= 2 else columns


def plan_candidate(spec: TaskSpec, c: Candidate, ds: datasets.Dataset, *, llm: LLM, max_reasks: int = 1, seed: int = 0,
                   mode: PlannerMode = "hybrid") -> Plan:
    """A validated plan for one (dataset, config), or a reject with its reason.

    `mode` is who decides what: "hybrid" (the model picks columns, code derives the rest) or "full"
    (the model also writes the derivation and may reject; see model_derive). Code validates both.
    """
    if mode not in PLANNER_MODES:
        raise ValueError(f"unknown planner mode {mode!r} (choose one of {', '.join(PLANNER_MODES)})")
    features = ds.features
    columns = list(features)
    sample = sample_rows(ds, seed=seed)
    if not sample:
        return reject(c, "no rows")
    label_maps: dict[str, dict[str, str]] = {}  # label column -> source label -> task label
    label_checks: dict[str, dict] = {}  # label column -> what the LLM proposed and the blind check found
    if spec.is_classification and spec.output_kind == "label":
        label_cols = [col for col in columns if class_names(features, col)]
        string_labels = any(isinstance(features[col], datasets.Value) and features[col].dtype == "string"
                            and len({render(r[col]) for r in sample}) <= 20 for col in columns)
        if label_cols and not verification_labels(spec):
            # class labels are mapped even beside a string column of few values (circa's free-text
            # `judgements` beside its `goldstandard1` classes): the model may name the string column,
            # and code then prefers the class label column that fills the task's labels best
            for col in label_cols:
                label_maps[col], info = label_map_for(spec, col, features, sample, llm, seed=seed)
                if info:
                    label_checks[col] = info
            if not string_labels and not any(len(set(m.values())) >= _label_need(spec) for m in label_maps.values()):
                names = ", ".join(class_names(features, label_cols[0]) or [])
                got = max((sorted(set(m.values())) for m in label_maps.values()), key=len, default=[])
                return reject(c, f"its labels ({names}) don't match the task's ({', '.join(spec.labels)})"
                              + (f": they give only {got}" if got else ""), label_check=label_checks)
    Choice = column_choice_model(usable_columns(columns, sample))
    errors = ""
    last: Plan | None = None
    for attempt in range(max_reasks + 1):
        try:
            choice = llm.structured(column_prompt(spec, c, sample, errors), Choice, stage="plan")
        except (InvalidOutput, RequestFailed) as e:
            return reject(c, f"the planner gave no valid column choice ({e})")
        output_column = choice.output_column
        if label_maps:
            # code knows which label column fills the task's labels best (TREC: coarse_label, not fine_label)
            best = max(label_maps, key=lambda col: (len(set(label_maps[col].values())), col == output_column))
            if len(set(label_maps.get(output_column, {}).values())) < len(set(label_maps[best].values())):
                output_column = best
        inputs = [col for col in dict.fromkeys(choice.input_columns) if col != output_column and col not in label_maps]
        if not inputs:
            errors = "the input columns must differ from the answer column"
            continue
        template, swapped = "", ""
        if mode == "full":
            try:
                rule, choices, inputs, template, why = derive_with_model(
                    spec, llm, entry_line=dataset_line(spec, c), columns_text=describe_columns(c.config),
                    rows_text=sample_text(sample), output_column=output_column, inputs=inputs,
                    features=features, sample=sample, errors=errors)
            except (InvalidOutput, RequestFailed) as e:
                return reject(c, f"the planner gave no valid derivation ({e})")
            except ModelRejected as e:
                return reject(c, str(e), input_columns=inputs, output_column=output_column)
        else:
            output_column, inputs, swapped = swap_roles(spec, output_column, inputs, columns, sample)
            lm = label_maps.get(output_column)
            if lm is None and spec.output_kind == "label":
                lm, info = label_map_for(spec, output_column, features, sample, llm, seed=seed)
                if info:
                    label_checks[output_column] = info
            rule, choices, inputs, why = derive_output(spec, output_column, features, sample, inputs, label_map=lm, seed=seed)
        if rule is None:
            errors = why
            last = reject(c, why, input_columns=inputs, output_column=output_column)
            continue
        plan = Plan(
            dataset=c.entry.id, config=c.config.name, splits=list(c.config.splits) or ["train"], keep=True,
            roles={col: ("output" if col == output_column else "input" if col in {root(i) for i in inputs} or (choices and col in choices.options) else "irrelevant") for col in columns},
            input_columns=inputs, input_template=template, choices=choices, output=rule, license=c.entry.license, rank=c.rank,
            checks={"planner_mode": mode, **({"label_check": label_checks[output_column]} if output_column in label_checks else {})},
        )
        if swapped:
            plan.checks["role_swap"] = swapped
        if rule.kind in TRANSFORMS:
            plan.checks["transform"] = TRANSFORMS[rule.kind](rule)
        elif len(inputs) > 1:  # a transform's output is made by rule: no input column can state it
            inputs, leaked = drop_leaks(inputs, plan, features, sample)
            if leaked:
                plan.input_columns = inputs
                plan.checks["leaked_columns_dropped"] = leaked
                for col in leaked:
                    plan.roles[root(col)] = "irrelevant"
        errs, checks = validate(plan, spec, features, sample)
        plan.checks.update(checks)
        if not errs:
            plan.reason = f"input {plan.input_columns} -> output {rule.kind} of {rule.column}" + "".join(
                f" ({plan.checks[k]})" for k in ("role_swap", "transform") if k in plan.checks)
            return plan
        errors = "; ".join(errs)
        last = reject(c, errors, **checks)
    return last or reject(c, errors or "no valid plan")
