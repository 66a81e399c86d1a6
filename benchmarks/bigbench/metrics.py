"""Intrinsic measures of an arm's training set: datatune's own quality code, plus label accuracy.

Near-duplicate rate (ROUGE-L, DataTune's thresholds), unique bigrams per example, tokens per example,
self-BLEU and remote-clique (MiniLM) come from `datatune.quality.quality_report`. Label accuracy is
checked where it can be without a model: a mapped row is traced to its source row through its
provenance and compared with the source's gold answer by gold functions written here, independently of
the plan that produced it (as tests/test_embedded_builds.py does). Synthetic rows have no gold and
are reported as not checkable; their answer format is checked instead (is the output an option of the
input, or a label of the task).
"""

from __future__ import annotations

import re
from collections import Counter

from .student import answer_index, parse_options


def _strip_prefix(opt: str) -> str:
    return re.sub(r"^\s*\(?[A-Za-z]\s*[\).:]\s*", "", str(opt)).strip()


def _math_qa_options(text: str) -> dict[str, str]:
    """allenai/math_qa's `options` string: "a ) 229 , b ) 270 , ..." -> {"a": "229", ...}."""
    parts = re.split(r"(?:^|,)\s*([a-e])\s*\)\s*", str(text))
    return {parts[i]: parts[i + 1].strip().rstrip(",").strip() for i in range(1, len(parts) - 1, 2)}


# source dataset -> gold answer text of a source row (the text of the correct option, or the label)
GOLD_TEXT = {
    "ybisk/piqa": lambda s, f: [s["sol1"], s["sol2"]][s["label"]] if s["label"] in (0, 1) else None,
    "aps/super_glue:copa": lambda s, f: [s["choice1"], s["choice2"]][s["label"]] if s["label"] in (0, 1) else None,
    "cais/mmlu": lambda s, f: s["choices"][s["answer"]],
    "deepmind/aqua_rat": lambda s, f: next((_strip_prefix(o) for o in s["options"] if o.strip().upper().startswith(s["correct"].upper())), None),
    "allenai/math_qa": lambda s, f: _math_qa_options(s["options"]).get(str(s["correct"]).strip().lower()),
    "openai/gsm8k": lambda s, f: s["answer"].split("####")[-1].strip().replace(",", ""),
    "qiaojin/PubMedQA": lambda s, f: s["final_decision"],
    "nyu-mll/glue": lambda s, f: f["label"].names[s["label"]],
    "aps/super_glue": lambda s, f: f["label"].names[s["label"]] if "label" in f and hasattr(f["label"], "names") else None,
    "cardiffnlp/tweet_eval": lambda s, f: f["label"].names[s["label"]],
    "cornell-movie-review-data/rotten_tomatoes": lambda s, f: ["negative", "positive"][s["label"]],
    "fancyzhx/ag_news": lambda s, f: f["label"].names[s["label"]],
}


# source label names that mean a task label whatever the plan says (boolq's True/False are yes/no answers)
SYNONYMS = {"true": "yes", "false": "no"}


def _gold_fn(row):
    return GOLD_TEXT.get(f"{row.source_dataset}:{row.source_config}") or GOLD_TEXT.get(row.source_dataset)


def row_answer_text(row) -> str | None:
    """The answer a row states, as text: the option its letter names, or its output."""
    opts = parse_options(row.input)
    if opts:
        i = answer_index(row.output, opts)
        return opts[i] if i is not None else None
    return str(row.output).strip()


def _same(a: str, b: str) -> bool:
    norm = lambda x: " ".join(str(x).casefold().split()).rstrip(".")  # noqa: E731
    return norm(a) == norm(b)


def label_accuracy(rows, catalog, *, labels: list[str] | None = None) -> dict:
    """Share of checkable rows whose stated answer equals the source's gold answer; format validity of all."""
    loaded: dict = {}
    checked = agree = 0
    by_source: dict[str, list[int]] = {}
    not_checkable: Counter = Counter()
    format_ok = 0
    label_low = {lb.casefold() for lb in labels or []}
    for r in rows:
        stated = row_answer_text(r)
        opts = parse_options(r.input)
        if opts:
            format_ok += stated is not None
        elif label_low:
            format_ok += str(r.output).strip().casefold() in label_low
        else:
            format_ok += bool(str(r.output).strip()) and not (len(str(r.output).strip()) == 1 and str(r.output).strip().isalpha())
        if r.method == "synthetic" or not r.source_dataset:
            not_checkable["synthetic"] += 1
            continue
        fn = _gold_fn(r)
        if fn is None or catalog is None:
            not_checkable["no gold function for " + r.source_dataset] += 1
            continue
        key = (r.source_dataset, r.source_config, r.source_split)
        try:
            if key not in loaded:
                loaded[key] = catalog.load(*key)
            ds = loaded[key]
            gold = fn(ds[int(r.source_row)], ds.features)
        except Exception as e:  # noqa: BLE001 - a source we can't read back is reported, not fatal
            not_checkable[f"unreadable source ({type(e).__name__})"] += 1
            continue
        if gold is None:
            not_checkable["source row has no gold"] += 1
            continue
        if label_low and str(gold).casefold() not in label_low:
            gold = SYNONYMS.get(str(gold).casefold(), gold)
            if str(gold).casefold() not in label_low:
                not_checkable["source labels are not the task's (the label map is the plan's choice)"] += 1
                continue
        ok = stated is not None and _same(stated, gold)
        checked += 1
        agree += ok
        by_source.setdefault(f"{r.source_dataset}:{r.source_config}", [0, 0])
        by_source[f"{r.source_dataset}:{r.source_config}"][0] += ok
        by_source[f"{r.source_dataset}:{r.source_config}"][1] += 1
    return {
        "checked": checked,
        "agree": agree,
        "accuracy": round(agree / checked, 4) if checked else None,
        "by_source": {k: {"agree": a, "checked": n} for k, (a, n) in by_source.items()},
        "not_checkable": dict(not_checkable),
        "answer_format_valid": round(format_ok / len(rows), 4) if rows else None,
    }


def intrinsic(rows, spec, *, embedder=None, sample: int = 1000) -> dict:
    """Headline quality measures of a set (datatune.quality)."""
    from datatune.quality import quality_report

    if not rows:
        return {"rows": 0}
    rep = quality_report(rows, spec, embedder=embedder, sample=sample, embed_sample=sample, by_method=True)
    nd = rep.get("near_duplicates") or {}
    out = {
        "rows": rep["rows"],
        "near_duplicate_rate": nd.get("rate"),
        "near_duplicate_threshold": nd.get("threshold"),
        "unique_bigrams_per_example": rep.get("unique_bigrams_per_example"),
        "tokens_per_example": rep.get("tokens_per_example"),
        "self_bleu": (rep.get("self_bleu") or {}).get("mean"),
        "remote_clique": (rep.get("remote_clique") or {}).get("value"),
        "label_distribution": (rep.get("label_distribution") or {}).get("counts") or (rep.get("label_distribution") or {}).get("top"),
    }
    if rep.get("methods"):
        out["by_method"] = rep["methods"]
    return out
