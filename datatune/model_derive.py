"""The `full` planner mode: the model also writes how the output is derived, and may reject.

In `hybrid` mode (the default, measured best on the embedded 1.5B model) code derives the output
from the chosen answer column. A strong remote model can take on more: here it decides whether the
rows fit (after writing the mapping, so the verdict comes last), the label map (one required key per source class, values an enum of the task's labels),
how a number is extracted (whole value, after a marker, inside \\boxed{}, last number), which
columns hold the options of a multiple-choice row, an input template, and, for free-text tasks, an
instruction the LLM applies per row when no column holds the answer. Whatever the model writes is
still compiled and validated on real rows by `planner.validate`, exactly as in hybrid mode.
"""

from __future__ import annotations

import re
from typing import Literal

import datasets
from pydantic import BaseModel, Field, create_model

from .compile import class_names, render, root
from .llm import LLM
from .plan import Choices, OutputRule
from .task import TaskSpec

NONE = "(none of these)"
_PLACEHOLDER = re.compile(r"{([^{}]+)}")


def source_labels(column: str, features: datasets.Features, sample: list[dict]) -> list[str]:
    """Class names of a ClassLabel column, else its distinct short string values (at most 20)."""
    names = class_names(features, column)
    if names:
        return list(names)
    values = sorted({render(r.get(root(column))).strip() for r in sample} - {""})
    return values if 0 < len(values) <= 20 else []


def derivation_model(spec: TaskSpec, columns: list[str], labels: list[str]) -> type[BaseModel]:
    """A schema with only the decisions this task's output kind needs; every reference is an enum."""
    Col = Literal[tuple(columns)]  # type: ignore[valid-type]
    fields: dict = {
        "input_template": (str, Field(default="", max_length=300,
                                      description="optional: how the input reads, with {column} placeholders; empty for the default")),
    }
    if spec.output_kind == "label" and labels:
        Target = Literal[tuple(spec.labels) + (NONE,)]  # type: ignore[valid-type]
        fields["label_map"] = (create_model("LabelMap", **{f"c{i}": (Target, Field(alias=name)) for i, name in enumerate(labels)}), ...)
    elif spec.output_kind == "number":
        fields["extract"] = (Literal["whole value", "after a marker", "inside \\boxed{}", "last number"], ...)
        fields["marker"] = (str, Field(default="", max_length=8, description="the marker before the final answer, if any"))
    elif spec.output_kind == "letter":
        fields["option_columns"] = (list[Col], Field(min_length=1, max_length=8))
    elif spec.output_kind in ("text", "code"):
        fields["write_output"] = (bool, Field(description="true when no column holds the answer and the LLM must write it per row"))
        fields["instruction"] = (str, Field(default="", max_length=300))
    # the verdict comes last, after the model has worked through the mapping
    fields["fits"] = (bool, Field(description="true when each row gives one task example: the input columns as input, the answer column as its answer"))
    fields["reason"] = (str, Field(max_length=200))
    return create_model("Derivation", **fields)


def derivation_prompt(spec: TaskSpec, entry_line: str, columns_text: str, rows_text: str, output_column: str, inputs: list[str],
                      labels: list[str], errors: str = "") -> list[dict]:
    what = {
        "label": f"Map each class of `{output_column}` ({', '.join(labels)}) to one of the task's labels, or to {NONE!r}.",
        "number": f"Say how the final numeric answer is taken from `{output_column}`.",
        "letter": "Pick the column(s) that hold the answer options.",
        "text": "Say whether the LLM must write the answer per row (only when no column holds it) and how.",
        "code": "Say whether the LLM must write the answer per row (only when no column holds it) and how.",
    }.get(spec.output_kind, "")
    user = (
        f"{entry_line}\nColumns:\n{columns_text}\nSample rows:\n{rows_text}\n\n"
        f"Each row becomes one task example: the input from {inputs}, the answer from `{output_column}`. {what}\n"
        "Then say whether the rows fit the task this way (fits), and why in a few words."
    )
    if errors:
        user += f"\nA previous plan failed on real rows: {errors}."
    return [{"role": "system", "content": "You turn the rows of an existing dataset into training examples for a task. Answer in JSON."}, {"role": "user", "content": user}]


class ModelRejected(Exception):
    """The model judged that the source's rows don't fit the task (its reason is the message)."""


def rule_from(spec: TaskSpec, d: BaseModel, output_column: str, inputs: list[str], columns: list[str],
              labels: list[str]) -> tuple[OutputRule | None, Choices | None, list[str], str, str]:
    """(output rule, choices, inputs, input template, why the rule is unusable) from the model's answer;
    raises ModelRejected when the model says the rows don't fit."""
    if not d.fits:
        raise ModelRejected(f"the planner rejected it: {d.reason or 'no reason given'}")
    template = d.input_template.strip()
    if template and (not (refs := _PLACEHOLDER.findall(template)) or any(root(r) not in columns for r in refs)):
        template = ""  # a template naming unknown columns is ignored, not trusted
    if spec.output_kind == "label":
        if not labels:
            return None, None, inputs, "", f"{output_column} holds no class labels"
        mapping = {name: getattr(d.label_map, f"c{i}") for i, name in enumerate(labels)}
        mapping = {k: v for k, v in mapping.items() if v != NONE}
        if len(set(mapping.values())) < min(2, len(spec.labels)):
            return None, None, inputs, "", f"the label map covers {sorted(set(mapping.values()))} of {spec.labels}"
        return OutputRule(kind="label_map", column=output_column, label_map=mapping), None, inputs, template, ""
    if spec.output_kind == "number":
        extract = {"whole value": "none", "after a marker": "marker", "inside \\boxed{}": "boxed", "last number": "last_number"}[d.extract]
        if extract == "marker" and not d.marker.strip():
            return None, None, inputs, "", "extraction after a marker, but no marker given"
        return (OutputRule(kind="column", column=output_column, extract=extract, marker=d.marker.strip() or None, number=True),
                None, inputs, template, "")
    if spec.output_kind == "letter":
        options = [c for c in dict.fromkeys(d.option_columns) if c != output_column]
        question = [c for c in inputs if c not in options]
        if not options or not question:
            return None, None, inputs, "", "no option columns or no question column besides them"
        return OutputRule(kind="choice_letter", column=output_column), Choices(options=options, strip_prefixes=len(options) == 1), question, template, ""
    if spec.output_kind in ("text", "code") and d.write_output:
        if not d.instruction.strip():
            return None, None, inputs, "", "the LLM should write the output, but no instruction was given"
        return OutputRule(kind="llm", instruction=d.instruction.strip()), None, inputs, template, ""
    return OutputRule(kind="column", column=output_column), None, inputs, template, ""


def derive_with_model(spec: TaskSpec, llm: LLM, *, entry_line: str, columns_text: str, rows_text: str, output_column: str,
                      inputs: list[str], features: datasets.Features, sample: list[dict], errors: str = ""):
    """Ask the model for the derivation; returns what `rule_from` returns."""
    columns = list(features)
    labels = source_labels(output_column, features, sample) if spec.output_kind == "label" else []
    Model = derivation_model(spec, columns, labels)
    d = llm.structured(derivation_prompt(spec, entry_line, columns_text, rows_text, output_column, inputs, labels, errors),
                       Model, stage="plan")
    return rule_from(spec, d, output_column, inputs, columns, labels)
