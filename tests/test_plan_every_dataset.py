"""No card or dataset crashes planning: every config with rows in ../shared/hub, for several task kinds.

A fake LLM answers every request with a random valid instance of its schema, so the planner meets
column choices a real model could make. The assertion is only that a plan or a reject with a
reason comes back, never an exception (issue: a real 2022 card with integer class names raised a
TypeError in planning).
"""

from __future__ import annotations

import pytest

from datatune.pipeline import BuildOptions
from datatune.planner import Candidate
from datatune.progress import Reporter
from datatune.rundir import RunDir
from datatune.stages import Context
from datatune.stages.plans import plan_one
from datatune.task import TaskSpec

from .schema_fill import schema_filler

SPECS = [
    TaskSpec(description="Classify the sentiment of a text as positive or negative", output_kind="label", labels=["positive", "negative"]),
    TaskSpec(description="Decide if two sentences mean the same: answer 0 or 1", output_kind="label", labels=["0", "1"],
             label_meanings={"1": "the same meaning", "0": "not the same meaning"}),
    TaskSpec(description="Answer multiple-choice questions with the letter of the option", output_kind="letter"),
    TaskSpec(description="Solve math word problems; the answer is a number", output_kind="number"),
    TaskSpec(description="Answer a question by copying a span of the passage", output_kind="span"),
    TaskSpec(description="Write an answer to the question", output_kind="text"),
]


@pytest.mark.slow  # 28 s on 2 shared cores (pytest --durations)
def test_every_dataset_plans_or_rejects_with_a_reason(catalog, fake_llm, tmp_path):
    entries = [e for e in catalog.entries() if e.has_rows]
    assert entries
    failures = []
    planned = 0
    for i, spec in enumerate(SPECS):
        llm, _ = fake_llm(schema_filler(seed=i))
        for e in entries:
            for cfg in e.configs[:2]:
                if not getattr(cfg, "has_rows", True):
                    continue
                c = Candidate(e, cfg)
                try:
                    plan = plan_one(spec, c, Context(catalog, llm, BuildOptions(out=tmp_path), Reporter(), RunDir(tmp_path)))
                except Exception as ex:  # noqa: BLE001 - the point of the test
                    failures.append(f"{spec.output_kind} {e.id}:{cfg.name}: {type(ex).__name__}: {ex}")
                    continue
                planned += 1
                assert plan.keep or plan.reason, (e.id, cfg.name)
    assert not failures, "\n".join(failures[:20])
    assert planned >= len(entries) * len(SPECS)
