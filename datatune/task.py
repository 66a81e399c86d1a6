"""TaskSpec: what the rows of the built dataset must look like.

The user gives a description and optional few-shot examples; the LLM infers the output kind, the
label set and the language (`infer_spec`), and the result is recorded in plans.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from .core.errors import ConfigError

OutputKind = Literal["label", "number", "letter", "span", "text", "code", "tags"]


class Example(BaseModel):
    input: str
    output: str


class TaskSpec(BaseModel):
    description: str
    examples: list[Example] = Field(default_factory=list)
    output_kind: OutputKind = "text"
    labels: list[str] = Field(default_factory=list)  # for output_kind == "label" (and "letter": the letters)
    language: str = "en"  # ISO 639-1 code of the rows' language
    input_format: str = ""
    output_format: str = ""
    # what a label stands for when the definition says so ('0' -> 'World', '1' -> 'grammatical'):
    # label matching reads these as well as the label strings
    label_meanings: dict[str, str] = Field(default_factory=dict)
    lowercase_letters: bool = False  # letter answers written 'a'..'e', as the user's examples do
    wrong_answer: bool = False  # the task asks for a wrong or implausible answer (piqa's "a process that does not lead to the outcome")
    letters: list[str] = Field(default_factory=list)  # letter tasks: the option letters the task uses ('A'..'D'), when known

    @property
    def is_classification(self) -> bool:
        return self.output_kind in ("label", "letter") and bool(self.labels)


def check_description(description: str) -> str:
    text = (description or "").strip()
    if len(text) < 3:
        raise ConfigError('the task description is empty: say what the dataset is for, e.g. datatune build "classify the sentiment of tweets"')
    return text


def load_examples(path: str | Path) -> list[Example]:
    """Few-shot examples from a JSONL file with `input` and `output` fields on every line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"examples file not found: {p} (give a JSONL file with 'input' and 'output' on each line)")
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}:{n}: not valid JSON ({e.msg}); each line must be an object with 'input' and 'output'") from e
        if not isinstance(obj, dict) or not isinstance(obj.get("input"), str) or "output" not in obj:
            raise ConfigError(f"{p}:{n}: each line needs string fields 'input' and 'output'")
        out.append(Example(input=obj["input"], output=str(obj["output"])))
    if not out:
        raise ConfigError(f"{p} has no examples; remove --examples or add JSONL lines with 'input' and 'output'")
    return out
