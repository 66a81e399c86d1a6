"""The HTML report's example rows: a few per source, with provenance, escaped and clipped."""

from __future__ import annotations

import re

from datatune.records import Row
from datatune.rundir import RunDir

XSS = "<script>alert(1)</script>"


def built_folder(tmp_path, rows_by_split):
    from datatune.output import write_output
    from datatune.plan import OutputRule, Plan
    from datatune.task import TaskSpec

    out = tmp_path / "out"
    RunDir(out).open("a" * 16, {}, resume=False, overwrite=False)
    spec = TaskSpec(description="classify the sentiment of reviews", output_kind="label", labels=["positive", "negative"])
    plan = Plan(dataset="src/a", config="default", splits=["train"], input_columns=["text"], output=OutputRule(kind="column", column="label"),
                keep=True, reason="fits", license="mit")
    write_output(out, spec, rows_by_split, [plan], drops={}, manifest={})
    return out


def test_report_shows_example_rows_per_source_escaped_and_clipped(tmp_path):
    from datatune.report import INPUT_CHARS, render_html

    long_input = "word " * 400  # 2,000 characters
    train = [Row(f"review a{i} {XSS}", "positive", "src/a", "default", "train", 10 + i) for i in range(5)]
    train += [Row(long_input if i == 0 else f"review b{i}", "negative", "src/b", "en", "validation", 100 + i) for i in range(2)]
    train += [Row("a synthetic review", "positive", "", "", "", -1, method="synthetic")]
    validation = [Row("held out review", "negative", "src/c", "default", "train", 7)]
    out = built_folder(tmp_path, {"train": train, "validation": validation})
    page = render_html(out).read_text()

    section = page[page.index('<h2 id="examples">'):]
    assert page.index('<h2 id="examples">') < page.index("<h2>Plans</h2>")  # near the top, before the plans
    # sources in order of rows, each with its count; the biggest first
    heads = re.findall(r"<h3>(.*?)</h3>", section)
    assert heads[:2] == ["src/a / default (5 rows)", "src/b / en (2 rows)"]
    assert set(heads[2:]) == {"synthetic (written by the LLM) (1 rows)", "src/c / default (1 rows)"}
    # at most 3 rows of a source: the first ones, with their provenance
    a_rows = section.split("<h3>")[1]
    assert a_rows.count("<tr><td") == 3
    assert "src/a / default / train / row 10" in a_rows and "src/a / default / train / row 12" in a_rows
    assert "row 13" not in a_rows and "mapped · train split" in a_rows
    assert "src/b / en / validation / row 100" in section and "src/c / default / train / row 7" in section
    assert "held out review" in section and "validation split" in section
    # data is escaped, never markup
    assert "<script>" not in page and "review a0 &lt;script&gt;alert(1)&lt;/script&gt;" in section
    # a long text is clipped at a word, saying how much is left out
    clipped = re.search(r"(word (?:word )+)… \(([\d,]+) more characters\)", section)
    assert clipped is not None and len(clipped.group(1)) <= INPUT_CHARS
    assert len(clipped.group(1).rstrip()) + int(clipped.group(2).replace(",", "")) == len(long_input)


def test_example_rows_reads_only_the_chosen_rows_of_a_big_shard(tmp_path):
    from datatune.report import example_rows

    rows = [Row(f"text {i}", "positive" if i % 2 else "negative", f"src/{'ab'[i % 2]}", "default", "train", i) for i in range(20_000)]
    out = built_folder(tmp_path, {"train": rows})
    groups = example_rows(out, per_source=2)
    assert [name for name, _ in groups] == ["src/a / default (10,000 rows)", "src/b / default (10,000 rows)"]
    assert [r["source_row"] for r in groups[0][1]] == [0, 2] and [r["source_row"] for r in groups[1][1]] == [1, 3]
    assert groups[0][1][0]["input"] == "text 0" and groups[1][1][1]["output"] == "positive"


def test_report_of_an_empty_build_has_no_example_section(tmp_path):
    from datatune.report import render_html

    out = built_folder(tmp_path, {"train": []})
    assert 'id="examples"' not in render_html(out).read_text()


def test_examples_show_the_biggest_sources_only(tmp_path):
    from datatune.report import examples_html

    rows = [Row(f"text {i}", "positive", f"src/d{i % 20:02d}", "default", "train", i) for i in range(200 + 5)]
    out = built_folder(tmp_path, {"train": rows})
    page = examples_html(out, per_source=1, sources=4)
    assert page.count("<h3>") == 4 and "each of the 4 biggest of its 20 sources" in page
    assert "<h3>src/d00 / default (11 rows)</h3>" in page  # d00..d04 have 11 rows, the others 10
