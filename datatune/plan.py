"""The plan language: what to do with one (dataset, config) to turn its rows into task rows.

A plan is data (saved in plans.json, re-executable with `datatune apply`); `compile.py` turns it
into a plain function over rows. Column references are field paths into a row: `question`,
`answers.text[0]`, `tokens` (a list, joined with spaces when rendered).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from .core.errors import ConfigError
from .core.files import atomic_write_text
from .task import TaskSpec

PLAN_VERSION = 1


class OutputRule(BaseModel):
    """How a row's `output` is derived."""

    kind: Literal["column", "label_map", "choice_letter", "choice_text", "llm", "verify_answer", "distractor_letter"]
    column: str | None = None  # field path of the answer
    extract: Literal["none", "marker", "boxed", "last_number"] = "none"
    marker: str | None = None  # for extract == "marker"
    number: bool = False  # normalise the result as a number ("1,000" -> "1000")
    label_map: dict[str, str] = Field(default_factory=dict)  # source label name -> target label
    instruction: str | None = None  # for kind == "llm": what the model writes per row
    # choice_letter / choice_text: `column` holds the answer as an index, a letter or an option key
    option_keys: str | None = None  # path of the options' keys ('choices.label'): the answer is looked up there
    options: list[str] = Field(default_factory=list)  # choice_text: the option paths whose text is the output
    index_base: Literal[0, 1] = 0  # choice_text / choice_letter with numbers: '1' is the first option when 1
    lowercase: bool = False  # choice_letter: 'a'..'e', as the task's examples write them
    wrong: bool = False  # choice_text: the output is a wrong option (the one after the correct one), for tasks that ask for one
    # Rows rewritten by rule into a task the source does not hold as such, one output row per source row:
    # - verify_answer: the input gets 'Answer: <candidate>', the row's own answer or (half the rows) another row's;
    #   the output is label_map['correct'] or label_map['incorrect'], in the task's label strings;
    # - distractor_letter: the row's answer among n_options - 1 other rows' answers, lettered; the output is its letter.
    # `column` is the row's answer: a string, a list of accepted answers, or a SQuAD `answers` struct. Other rows'
    # answers come from `pool`, drawn from the source's rows at plan time, and each row's draw is seeded by `seed`
    # and the row's own text: the same plan gives the same rows whatever the batch boundaries or the split.
    pool: list[str] = Field(default_factory=list)
    seed: int = 0
    n_options: int = 4


class Choices(BaseModel):
    """Multiple-choice rendering: options from one list column or several columns, lettered A, B, ..."""

    options: list[str]  # one list-valued path, or several scalar paths
    strip_prefixes: bool = True  # 'A)21' -> '21' before re-lettering


class LLMField(BaseModel):
    """A field the LLM writes per row, with the compiled row as context (translate, paraphrase...)."""

    target: Literal["input", "output"]
    instruction: str


class Plan(BaseModel):
    dataset: str
    config: str
    splits: list[str]
    keep: bool
    reason: str = ""
    # why a plan is not kept, as a kind code can test (the reason says it to a person)
    reject_kind: Literal["card_only", "load_failed", "planner", "acceptance"] | None = None
    roles: dict[str, Literal["input", "output", "irrelevant", "ambiguous"]] = Field(default_factory=dict)
    input_columns: list[str] = Field(default_factory=list)
    input_template: str = ""  # '{question}\n{context}'; empty = default rendering of input_columns
    choices: Choices | None = None
    output: OutputRule | None = None
    drop_if_missing: list[str] = Field(default_factory=list)  # rows lacking these fields are dropped
    llm_fields: list[LLMField] = Field(default_factory=list)
    license: str = "unknown"
    rank: int = 0
    checks: dict = Field(default_factory=dict)  # what validation measured on real rows
    # what planning expects of a kept plan: rows it will give over its splits, and those outside test splits
    est_rows: int = 0
    est_rows_not_test: int | None = None  # None: not estimated (all of est_rows count)
    same_plan_as: str | None = None  # a sibling config run on that config's plan (MMLU's subjects)

    @model_validator(mode="before")
    @classmethod
    def _estimates_of_an_older_file(cls, data):
        # plans.json written before these fields kept them among the checks
        if isinstance(data, dict) and isinstance(data.get("checks"), dict):
            checks = data["checks"]
            moved = {k: checks[k] for k in ("est_rows", "est_rows_not_test", "same_plan_as") if k in checks and k not in data}
            if moved:
                data = {**data, **moved, "checks": {k: v for k, v in checks.items() if k not in moved}}
        return data

    @model_validator(mode="after")
    def _kind_of_an_older_file(self) -> "Plan":
        # plans.json written before reject kinds said "card only" in the reason alone
        if not self.keep and self.reject_kind is None and self.reason.startswith("card only"):
            self.reject_kind = "card_only"
        return self

    @property
    def card_only(self) -> bool:
        return self.reject_kind == "card_only"

    @property
    def rows_not_test(self) -> int:
        """Rows expected outside test splits: what counts as enough while planning."""
        return self.est_rows if self.est_rows_not_test is None else self.est_rows_not_test

    @property
    def needs_llm(self) -> bool:
        return bool(self.llm_fields) or (self.output is not None and self.output.kind == "llm")

    @property
    def key(self) -> str:
        return f"{self.dataset}:{self.config}"


class BuildRecord(BaseModel):
    """What, beside the plans, decides a build's rows: `datatune apply` takes these unless a flag is given.

    The defaults are the build's own defaults; a plans.json written before this record has none
    (`PlanFile.build` is None) and `apply` falls back to its flags' defaults."""

    catalog: str | None = None  # the catalog's location (a folder, or hf://datasets for the Hub)
    size: int = 1000
    seed: int = 0
    validation_fraction: float = 0.0
    per_source_cap: float = 0.5
    splits: list[str] | None = None  # --splits (planning already applied it; kept to say what was asked)
    synthetic: bool = True
    synthetic_fraction: float = 0.5
    synthetic_batch: int = 5
    curate: bool = True
    verify: str = "off"
    verify_budget: int | None = None
    embed: bool = False  # an embedder ordered the sources by relevance (and measured the rows)
    eval_texts: int = 0  # evaluation texts rows were filtered against (--eval-file): how many ...
    eval_sha256: str | None = None  # ... and which (the file itself is not kept)
    model: str | None = None  # the LLM (for per-row fields, top-up, verification): for the record

    @classmethod
    def of(cls, options, *, catalog: str, embed: bool, model: str | None = None) -> "BuildRecord":
        """The record of a build run with `options` (a pipeline.BuildOptions)."""
        texts = list(options.eval_texts or [])
        if "://" not in catalog:  # a folder: absolute, so apply finds it from any working directory
            catalog = str(Path(catalog).expanduser().resolve())
        return cls(catalog=catalog, size=options.size, seed=options.seed, validation_fraction=options.validation_fraction,
                   per_source_cap=options.per_source_cap, splits=options.splits, synthetic=options.synthetic,
                   synthetic_fraction=options.synthetic_fraction, synthetic_batch=options.synthetic_batch, curate=options.curate,
                   verify=options.verify, verify_budget=options.verify_budget, embed=embed, eval_texts=len(texts),
                   eval_sha256=eval_digest(texts) if texts else None, model=model)


def eval_digest(texts: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()


class PlanFile(BaseModel):
    version: int = PLAN_VERSION
    task: TaskSpec
    plans: list[Plan]
    build: BuildRecord | None = None  # what else reproduces the rows; None in files written before it


def save_plans(path: Path, task: TaskSpec, plans: list[Plan], build: BuildRecord | None = None) -> None:
    atomic_write_text(path, PlanFile(task=task, plans=plans, build=build).model_dump_json(indent=2))


def load_plans(path: str | Path) -> PlanFile:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"plans file not found: {p} (it is written as plans.json in every build's output folder)")
    try:
        return PlanFile.model_validate(json.loads(p.read_text()))
    except (json.JSONDecodeError, ValueError) as e:
        raise ConfigError(f"{p} is not a datatune plans file ({str(e).splitlines()[0][:150]})") from e
