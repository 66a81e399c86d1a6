"""Write the built dataset as a Hugging Face Hub folder.

    data/train-00000-of-00001.parquet (+ validation)   rows with provenance
    README.md      YAML dataset_info + configs, the task, sources with licences, drops, metrics
    plans.json     every plan, re-executable with `datatune apply`
    manifest.json  versions, seed, timings, LLM usage

`datasets.load_dataset(folder)` loads it; `datatune push` publishes exactly these files. What is written is
recorded in the run state (.datatune/outputs.json), so `--overwrite` removes only that.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from .allocate import ChosenSplit
from .core.errors import ConfigError
from .plan import Plan, save_plans
from .records import SCHEMA, Row, as_table, concat, count_by
from .rundir import record_outputs
from .task import TaskSpec

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")
_SECRET_PARAM = re.compile(r"(?i)([?&;][^=&#\s]*(?:key|token|secret|passw|pwd|sig|auth|credential|session)[^=&#\s]*=)[^&#\s]*")


def scrub_secrets(obj):
    """`obj` with credentials taken out of every URL in it: user:password@ and secret-looking query values.

    `--base-url http://user:pass@host/v1?api_key=...` must not reach manifest.json (which is published).
    """
    if isinstance(obj, str):
        return _SECRET_PARAM.sub(r"\1REDACTED", _USERINFO.sub(r"\1", obj)) if "://" in obj or "?" in obj else obj
    if isinstance(obj, dict):
        return {k: scrub_secrets(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub_secrets(v) for v in obj]
    return obj


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# parquet dictionary pages for the columns whose values repeat: an input or a source row is nearly always
# new, and trying a dictionary for it first cost a third of the write
DICTIONARY = [n for n in SCHEMA.names if n not in ("input", "source_row")]


def write_parquet(path: Path, rows: "list[Row] | pa.Table | ChosenSplit") -> None:
    """One split's parquet file, written whole or, for a ChosenSplit, a gathered chunk (row group) at a time."""
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(rows, ChosenSplit):
        with pq.ParquetWriter(tmp, SCHEMA, use_dictionary=DICTIONARY) as writer:
            for batch in rows.batches():
                writer.write_table(batch.select(SCHEMA.names).cast(SCHEMA))
    else:
        pq.write_table(as_table(rows).select(SCHEMA.names).cast(SCHEMA), tmp, use_dictionary=DICTIONARY)
    os.replace(tmp, path)


COUNTED = ["output", "source_dataset", "source_config", "source_split", "method"]  # the columns the card counts


def counted_columns(rows: "list[Row] | pa.Table | ChosenSplit") -> pa.Table:
    """A split's rows with the columns the card and the counts read (for a ChosenSplit, only those are gathered)."""
    return rows.columns(COUNTED) if isinstance(rows, ChosenSplit) else as_table(rows)


def card_yaml(splits: dict[str, int], spec: TaskSpec, licenses: list[str], sizes: dict[str, int] | None = None, methods: set[str] | None = None) -> dict:
    features = []
    for f in SCHEMA:
        features.append({"name": f.name, "dtype": "int64" if str(f.type) == "int64" else "string"})
    return {
        "license": "other" if len(set(licenses)) != 1 else licenses[0],
        "language": [spec.language],
        "tags": ["datatune", "transformed", *(["synthetic"] if "synthetic" in (methods or set()) else [])],
        "configs": [{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits]}],
        "dataset_info": {
            "features": features,
            "splits": [{"name": s, "num_bytes": (sizes or {}).get(s, 0), "num_examples": n} for s, n in splits.items()],
        },
    }


def _table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
    return "\n".join(out)


def plan_summary(p: Plan) -> str:
    if not p.keep:
        return f"rejected: {p.reason}"
    o = p.output
    how = {"label_map": lambda: f"label map {o.column}: " + ", ".join(f"{k}→{v}" for k, v in o.label_map.items()),
           "choice_letter": lambda: f"letter of {o.column} over options {p.choices.options if p.choices else ''}",
           "column": lambda: f"{o.column}" + (f" (extract {o.extract}{' ' + o.marker if o.marker else ''})" if o.extract != "none" else ""),
           "choice_text": lambda: f"text of the option {o.column} points at, over {o.options}",
           "llm": lambda: f"LLM: {o.instruction}"}.get(o.kind, lambda: o.kind)()
    for key in ("role_swap", "transform"):
        if p.checks.get(key):
            how += f"; {p.checks[key]}"
    if gate := p.checks.get("relevance_gate"):
        if gate.get("score") is not None:
            how += f"; rows' cosine to the {gate.get('reference', 'examples')} {gate['score']:.2f}"
    if p.checks.get("acceptance"):
        a = p.checks["acceptance"]
        how += f"; inputs read as {', '.join(a.get('row_kinds', []))} (task: {', '.join(a.get('task_kinds', []))})"
    return f"input {p.input_columns} → output {how}"


def metrics_summary(report: dict) -> dict:
    """The headline numbers of a quality report (datatune/quality.py), flat, for the card."""
    out = {}
    nd = report.get("near_duplicates") or {}
    if nd:
        out[f"near-duplicate rate (ROUGE-L >= {nd.get('threshold')})"] = nd.get("rate")
    for key, name in (("unique_bigrams_per_example", "unique bigrams per example"), ("tokens_per_example", "tokens per example")):
        if key in report:
            out[name] = report[key]
    if report.get("self_bleu"):
        out["self-BLEU (1-5, mean)"] = report["self_bleu"].get("mean")
    if ls := report.get("lexical_sample"):
        out["lexical measures read"] = f"a seeded sample of {ls['rows']:,} of {ls['of']:,} rows"
    if report.get("remote_clique"):
        out["remote-clique (MiniLM)"] = report["remote_clique"].get("value")
    if cov := report.get("example_coverage"):
        out[f"examples covered (>= {cov['min_neighbours']} rows within cosine {cov['threshold']})"] = f"{cov['covered']} of {cov['examples']}"
    if v := report.get("verification"):
        out[f"label verification ({v['policy']})"] = ", ".join(f"{k} {v[k]}" for k in ("checked", "agree", "disagree", "relabelled", "dropped", "error") if v.get(k))
    if cov := report.get("example_coverage_before"):
        out["examples covered before top-up"] = f"{cov['covered']} of {cov['examples']}"
    return out


def card_body(spec: TaskSpec, rows_by_split: "dict[str, list[Row] | pa.Table | ChosenSplit]", plans: list[Plan], drops: dict[str, int],
              usage: dict, metrics: dict | None, relevance: dict | None = None) -> str:
    tables = {s: counted_columns(r) for s, r in rows_by_split.items()}
    everything = concat(list(tables.values()))
    by_source = [((d or "(synthetic)", c, sp), n) for (d, c, sp), n in count_by(everything, ["source_dataset", "source_config", "source_split"])]
    lic = {p.dataset: p.license for p in plans}
    methods = count_by(everything, ["method"])
    parts = [
        "# Dataset built with datatune\n",
        f"**Task:** {spec.description}\n",
        f"Output kind: `{spec.output_kind}`" + (f"; labels: {', '.join(f'`{x}`' for x in spec.labels)}" if spec.labels else "") + f"; language: `{spec.language}`.\n",
        "Every row carries its provenance: `source_dataset`, `source_config`, `source_split`, `source_row` "
        "(index in that split) and `method` (`mapped`: compiled plan, no LLM; `llm`: a field written by the LLM; `synthetic`); "
        "`check` holds the label-verification outcome when the build ran with `--verify` (empty: not checked).\n",
        "## Sources\n",
        "Rows come from train splits first; a validation or test split only where train could not fill the set "
        "(`--splits` restricts them).\n",
        _table(["dataset", "config", "split", "licence", "rows"], [
            [f"[{d}](https://huggingface.co/datasets/{d})" if d != "(synthetic)" else d, c, sp or "-", lic.get(d, "-"), n]
            for (d, c, sp), n in by_source
        ]),
        "\n## Rows\n",
        _table(["split", "rows"], [[s, t.num_rows] for s, t in tables.items()]),
        "\n" + _table(["method", "rows"], [[m, n] for (m,), n in methods]),
    ]
    if spec.labels:
        dist = {k: n for (k,), n in count_by(everything, ["output"])}
        parts += ["\n## Labels\n", _table(["label", "rows"], [[lb, dist.get(lb, 0)] for lb in spec.labels])]
    planned = [p for p in plans if not p.card_only]
    card_only = [p.dataset for p in plans if p.card_only]
    scores = (relevance or {}).get("scores", {})
    parts += ["\n## Plans\n", _table(["rank", "dataset", "config", "relevance", "plan"],
                                      [[p.rank, p.dataset, p.config, scores.get(p.key, "-"), plan_summary(p)] for p in planned])]
    if scores:
        parts.append(f"\nRelevance: mean cosine (MiniLM) of a source's rows to the task's {relevance['reference']}; "
                     "a dataset's configs are used nearest first" + (f"; far sources, used only to fill gaps: {', '.join(relevance['weak'])}" if relevance.get("weak") else "") + ".\n")
    if card_only:
        parts.append(f"\nRetrieved but card-only in this catalog (no rows to transform): {', '.join(card_only)}.\n")
    parts += ["\n## Dropped rows\n", _table(["reason", "rows"], [[k, v] for k, v in sorted(drops.items(), key=lambda kv: -kv[1])]) if drops else "None."]
    if metrics:
        parts += ["\n## Quality metrics\n", _table(["metric", "value"], [[k, v] for k, v in metrics_summary(metrics).items()])]
        for name, file in (metrics.get("plots") or {}).items():
            parts.append(f"\n![{name.replace('_', ' ')}](plots/{file})")
    t = usage.get("total", {})
    parts += ["\n## LLM usage\n", f"{t.get('calls', 0)} calls, {t.get('cache_hits', 0)} cache hits, "
              f"{t.get('prompt_tokens', 0)} prompt and {t.get('completion_tokens', 0)} completion tokens.\n"]
    return "\n".join(parts) + "\n"


def write_output(out: Path, spec: TaskSpec, rows_by_split: "dict[str, list[Row] | pa.Table | ChosenSplit]", plans: list[Plan], *, drops: dict[str, int],
                 manifest: dict, metrics: dict | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    if data.is_symlink() or (out / "plots").is_symlink():
        raise ConfigError(f"{out}/{'data' if data.is_symlink() else 'plots'} is a symlink; datatune writes only into real folders: choose another --out")
    data.mkdir(exist_ok=True)
    for old in data.glob("*-?????-of-?????.parquet"):  # the splits of an earlier run (nothing else)
        if not old.is_symlink():
            old.unlink()
    written = [f"data/{split}-00000-of-00001.parquet" for split in rows_by_split]
    record_outputs(out, [*written, "plans.json", "README.md", "manifest.json",
                         *(f"plots/{f}" for f in ((metrics or {}).get("plots") or {}).values())])
    for split, rows in rows_by_split.items():
        write_parquet(data / f"{split}-00000-of-00001.parquet", rows)
    save_plans(out / "plans.json", spec, plans)
    tables = {s: counted_columns(r) for s, r in rows_by_split.items()}
    everything = concat(list(tables.values()))
    used = set(pc.unique(everything.column("source_dataset")).to_pylist()) if everything.num_rows else set()
    licenses = sorted({p.license for p in plans if p.keep and p.dataset in used}) or ["unknown"]
    sizes = {s: (data / f"{s}-00000-of-00001.parquet").stat().st_size for s in tables}
    methods = set(pc.unique(everything.column("method")).to_pylist()) if everything.num_rows else set()
    meta = yaml.safe_dump(card_yaml({s: t.num_rows for s, t in tables.items()}, spec, licenses, sizes, methods), sort_keys=False, allow_unicode=True)
    atomic_write_text(out / "README.md", f"---\n{meta}---\n\n" + card_body(spec, tables, plans, drops, manifest.get("llm", {}), metrics, manifest.get("source_relevance")))
    atomic_write_text(out / "manifest.json", json.dumps(scrub_secrets(json.loads(json.dumps(manifest, default=str))), indent=2))
