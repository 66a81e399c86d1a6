"""A BIG-bench task.json as multiple-choice items, the user's two examples, and the held-out test set.

Items are rendered the way datatune renders a multiple-choice source (compile.py): the question, then
one line per option, `A. text`. Options are shuffled once per item with a seeded generator (BIG-bench
also presents them in a random order), so the correct option is not always first. Tasks whose choices
are not appended to the input (`append_choices_to_input: false`, e.g. implicatures' yes/no) are label
tasks: the input is the text alone and the answer is the option text.

Scores follow BIG-bench's multiple_choice_grade: an item earns the target score of the chosen option
(divided by the item's best score), and the normalized score is 100 * (score - chance) / (1 - chance)
with chance the expected score of a uniform random choice (1 / number of options for one correct
option): 0 is chance, 100 is perfect, below 0 is worse than chance.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

# the subtask the DataTune paper's runs used (../shared/MANIFEST.md, section 4: "The runs show the
# subtasks used"); other tasks with subtasks take their first one in name order
DEFAULT_SUBTASKS = {"cause_and_effect": "two_sentences", "elementary_math_qa": "question_only"}
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class TaskError(ValueError):
    pass


@dataclass
class Item:
    idx: int  # index of the example in task.json
    question: str  # the task's raw input (may be empty: cause_and_effect's options are the whole item)
    options: list[str]  # in presentation order
    scores: list[float]  # target score of each option
    lettered: bool  # options listed in the input as lettered lines; the answer is a letter

    @property
    def text(self) -> str:
        """The input as the student, the few-shot model and the build see it."""
        if not self.lettered:
            return self.question.strip()
        lines = [f"{LETTERS[i]}. {o}" for i, o in enumerate(self.options)]
        q = self.question.strip()
        return (q + "\n" if q else "") + "\n".join(lines)

    @property
    def correct(self) -> int:
        best = max(self.scores)
        return self.scores.index(best)

    @property
    def answer(self) -> str:
        """The output of this item as an example row: a letter, or the label text."""
        return LETTERS[self.correct] if self.lettered else self.options[self.correct]

    def credit(self, choice: int | None) -> float:
        """BIG-bench multiple_choice_grade of one choice (None = no answer = 0)."""
        best = max(self.scores)
        if choice is None or not 0 <= choice < len(self.options) or best <= 0:
            return 0.0
        return self.scores[choice] / best

    @property
    def chance(self) -> float:
        best = max(self.scores)
        return sum(s / best for s in self.scores) / len(self.scores) if best > 0 else 0.0


@dataclass
class Task:
    name: str  # "cause_and_effect/two_sentences"
    path: str
    description: str  # what the build is told: the task's description (+ the subtask's instruction)
    keywords: list[str]
    preferred_score: str
    lettered: bool
    items: list[Item]
    labels: list[str] = field(default_factory=list)  # for label tasks: the shared option set


def resolve_task_path(path: str | Path, subtask: str | None = None) -> Path:
    """The task.json to read: the file itself, or for a task whose examples live in subtask folders, the
    named subtask, the one the paper used (DEFAULT_SUBTASKS), or the first in name order."""
    p = Path(path)
    if p.is_dir():
        p = p / "task.json"
    if not p.is_file():
        raise TaskError(f"no task.json at {p}")
    if subtask:
        sub = p.parent / subtask / "task.json"
        if not sub.is_file():
            raise TaskError(f"no subtask {subtask!r} under {p.parent} (have: {', '.join(_subtasks(p.parent)) or 'none'})")
        return sub
    data = json.loads(p.read_text(encoding="utf-8"))
    if data.get("examples"):
        return p
    subs = _subtasks(p.parent)
    if not subs:
        raise TaskError(f"{p} has no examples and no subtask folders")
    name = DEFAULT_SUBTASKS.get(p.parent.name)
    return p.parent / (name if name in subs else subs[0]) / "task.json"


def _subtasks(folder: Path) -> list[str]:
    return sorted(d.name for d in folder.iterdir() if (d / "task.json").is_file())


def load_task(path: str | Path, *, subtask: str | None = None, seed: int = 0) -> Task:
    p = resolve_task_path(path, subtask)
    data = json.loads(p.read_text(encoding="utf-8"))
    parent = None  # a subtask's task.json sits one folder below its task's
    if (p.parent.parent / "task.json").is_file():
        parent = json.loads((p.parent.parent / "task.json").read_text(encoding="utf-8"))
    examples = data.get("examples") or []
    mc = [e for e in examples if isinstance(e.get("target_scores"), dict) and e["target_scores"]]
    if not mc:
        raise TaskError(f"{p}: only multiple-choice tasks (examples with target_scores) are supported")
    append = data.get("append_choices_to_input", True)
    # an item whose input is empty can only be answered with its options in view
    lettered = bool(append) or any(not str(e.get("input", "")).strip() for e in mc)
    rng = random.Random(f"{seed}:options")
    items = []
    for i, e in enumerate(mc):
        keys = list(e["target_scores"])
        if lettered:
            keys = sorted(keys)
            rng.shuffle(keys)
        items.append(Item(i, str(e.get("input", "")), keys, [float(e["target_scores"][k]) for k in keys], lettered))
    labels: list[str] = []
    if not lettered:
        sets = {tuple(it.options) for it in items}
        if len(sets) == 1:
            labels = list(next(iter(sets)))
    name = data.get("name", p.parent.name)
    top = (parent or data).get("name", name)
    full = f"{top}/{name}" if parent else name
    desc = (parent or data).get("description") or data.get("description") or full
    prefix = str(data.get("task_prefix") or "").strip()
    desc = _sentence(desc)
    if prefix and prefix.lower() not in desc.lower():
        desc += " " + _sentence(prefix)
    if lettered:
        desc += " Answer with the letter of the correct option."
    return Task(full, str(p), desc, list(data.get("keywords") or (parent or {}).get("keywords") or []),
                str(data.get("preferred_score", "multiple_choice_grade")), lettered, items, labels)


def _sentence(text: str) -> str:
    text = " ".join(str(text).split())
    return text if text.endswith((".", "?", "!")) else text + "."


@dataclass
class Split:
    examples: list[Item]  # the two the user shows
    test: list[Item]  # every other item: never shown to the build
    eval_subset: list[Item]  # the seeded subsample the students are scored on

    @property
    def eval_texts(self) -> list[str]:
        """What the build's contamination check compares rows with: every test input, and its raw question."""
        out = []
        for it in self.test:
            out.append(it.text)
            if it.lettered and it.question.strip():
                out.append(it.question.strip())
        return out

    def summary(self) -> dict:
        return {"examples": [it.idx for it in self.examples], "test_items": len(self.test),
                "eval_items": [it.idx for it in self.eval_subset]}


def split_task(task: Task, *, n_examples: int = 2, n_eval: int = 150, seed: int = 0) -> Split:
    """Two examples as a user would pick them (seeded; the second with a different answer when one
    exists, so a yes/no task shows both labels), the rest the test set, and a seeded eval subsample."""
    rng = random.Random(f"{seed}:examples")
    order = list(range(len(task.items)))
    rng.shuffle(order)
    chosen: list[int] = []
    for i in order:
        if len(chosen) >= n_examples:
            break
        answers = {task.items[j].answer for j in chosen}
        if task.items[i].answer not in answers or all(task.items[j].answer in answers for j in order if j not in chosen):
            chosen.append(i)
    for i in order:  # too few distinct answers: fill up
        if len(chosen) >= n_examples:
            break
        if i not in chosen:
            chosen.append(i)
    examples = [task.items[i] for i in chosen]
    shown = {it.text for it in examples}
    test = [it for it in task.items if it.idx not in chosen and it.text not in shown]
    if not test:
        raise TaskError(f"{task.name}: no items left for the test set")
    sub = sorted(random.Random(f"{seed}:eval").sample(range(len(test)), min(n_eval, len(test))))
    return Split(examples, test, [test[i] for i in sub])


def write_examples(items: list[Item], path: Path) -> Path:
    """The examples file the build reads (`datatune build --examples`): JSONL with input and output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"input": it.text, "output": it.answer}) + "\n" for it in items), encoding="utf-8")
    return path


def write_eval_file(texts: list[str], path: Path) -> Path:
    """The eval file (`datatune build --eval-file`): JSONL with one test input per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"input": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def normalized_score(credits: list[float], chances: list[float]) -> float:
    """BIG-bench normalized score: 100 * (mean credit - mean chance) / (1 - mean chance)."""
    if not credits:
        raise ValueError("no items scored")
    score = sum(credits) / len(credits)
    chance = sum(chances) / len(chances)
    if chance >= 1:
        return 0.0
    return 100.0 * (score - chance) / (1.0 - chance)


def score_choices(items: list[Item], choices: list[int | None]) -> dict:
    credits = [it.credit(c) for it, c in zip(items, choices)]
    chances = [it.chance for it in items]
    n = len(credits)
    mean = sum(credits) / n
    chance = sum(chances) / n
    # standard error of the normalized score over items (sampling noise of the test subset)
    se = (sum((x - mean) ** 2 for x in credits) / max(1, n - 1) / n) ** 0.5 * 100 / (1 - chance) if chance < 1 else 0.0
    return {
        "items": n,
        "accuracy": round(mean, 4),
        "chance": round(chance, 4),
        "normalized_score": round(normalized_score(credits, chances), 2),
        "normalized_se": round(se, 2),
        "unanswered": sum(c is None for c in choices),
        # position bias shows here: how often each option position (A, B, ...) was chosen
        "chosen_positions": {LETTERS[k]: n for k, n in sorted(Counter(c for c in choices if c is not None).items())},
        "predictions": list(choices),
    }


def item_dict(it: Item) -> dict:
    return asdict(it)
