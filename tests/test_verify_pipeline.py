"""--verify in the build: the chosen rows are checked, outcomes land in `check`, drops and counts in the card."""

from __future__ import annotations

import json
from collections import Counter

import datasets
import pytest

from datatune.errors import ConfigError
from datatune.pipeline import BuildOptions

from .conftest import schema_of
from .test_pipeline import KEYS, run, smart_fake


def verifying_fake(answer="positive"):
    """smart_fake, plus a verifier that always answers `answer`: every other label disagrees."""
    base = smart_fake()

    def handler(body):
        props = (schema_of(body) or {}).get("properties", {})
        if "answer" in props and "output_column" not in props:
            return json.dumps({"answer": answer})
        return base(body)

    return handler


def test_flag_keeps_every_row_and_records_the_verdict(catalog, fake_llm, tmp_path):
    llm, _ = fake_llm(verifying_fake())
    res = run(catalog, llm, tmp_path, KEYS, size=60, verify="flag")
    train = datasets.load_dataset(str(tmp_path / "out"))["train"]
    checks = Counter(zip(train["output"], train["check"]))
    assert len(train) == 60
    assert set(checks) == {("positive", "agree"), ("negative", "disagree:flagged")}
    v = res.manifest["quality"]["verification"]
    assert v["policy"] == "flag" and v["checked"] == 60 and v["disagree"] == checks[("negative", "disagree:flagged")]
    assert "label verification (flag)" in (tmp_path / "out" / "README.md").read_text()


def test_drop_removes_disagreeing_rows_and_counts_them(catalog, fake_llm, tmp_path):
    llm, _ = fake_llm(verifying_fake())
    res = run(catalog, llm, tmp_path, KEYS, size=60, verify="drop", synthetic=False)
    train = datasets.load_dataset(str(tmp_path / "out"))["train"]
    checked = [(o, c) for o, c in zip(train["output"], train["check"]) if c]
    assert checked and all(c == "agree" for _, c in checked)  # no row that disagreed survived
    assert res.drops["label_disagrees"] >= 25
    # the places they left were refilled from the pool, marked unchecked
    assert len(train) == 60 and all(c == "" for c in train["check"] if c != "agree")


def test_budget_bounds_the_calls(catalog, fake_llm, tmp_path):
    llm, _ = fake_llm(verifying_fake())
    run(catalog, llm, tmp_path, KEYS, size=60, verify="flag", verify_budget=10)
    assert llm.usage.stage("verify").calls <= 10 + 16  # one batch may overshoot (verify.CHUNK)


def test_unknown_policy_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--verify"):
        BuildOptions(out=tmp_path, verify="maybe").validate()
