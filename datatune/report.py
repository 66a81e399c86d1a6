"""Reading a built folder back: its rows and spec, the quality report, and the HTML page.

`datatune eval DIR` recomputes the quality measures; `datatune report DIR --html` renders the card
(tables, plans, drops, metrics, LLM usage) and a few example rows of each source as one self-contained
HTML page with the plots inlined.
The card holds text from datasets and the task description: raw HTML in it is escaped, never passed
through, and only the plots datatune wrote under the folder's plots/ are inlined.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import pyarrow.parquet as pq

from .core.errors import CatalogError
from .output import atomic_write_text
from .plan import load_plans
from .records import Row, table_to_rows
from .rundir import KNOWN_OUTPUTS, RunDir, record_outputs
from .task import TaskSpec


def load_built(folder: Path) -> tuple[list[Row], TaskSpec | None]:
    folder = Path(folder)
    files = sorted((folder / "data").glob("*.parquet")) if (folder / "data").is_dir() else []
    if not files:
        raise CatalogError(f"{folder} has no data/*.parquet; pass the --out folder of a finished build")
    rows = [r for f in files for r in table_to_rows(pq.read_table(f))]
    spec = load_plans(folder / "plans.json").task if (folder / "plans.json").is_file() else None
    return rows, spec


def evaluate_folder(folder: Path, *, embedder=None, sample: int = 1000) -> dict:
    from .quality import quality_report

    rows, spec = load_built(folder)
    manifest = folder / "manifest.json"
    drops = {}
    if manifest.is_file():
        drops = (json.loads(manifest.read_text()).get("quality") or {}).get("drops") or {}
    report = quality_report(rows, spec, embedder=embedder, drops=drops, plots_dir=Path(folder) / "plots", sample=sample, embed_sample=sample)
    atomic_write_text(Path(folder) / "quality.json", json.dumps(report, indent=2, default=str))
    record_outputs(folder, ["quality.json", *(f"plots/{f}" for f in (report.get("plots") or {}).values())])
    return report


def datatune_plots(folder: Path) -> set[str]:
    """Names of the plots datatune wrote in folder/plots (per the manifest and the run's record)."""
    folder = Path(folder)
    names: set[str] = set()
    for f in ("manifest.json", "quality.json"):
        try:
            doc = json.loads((folder / f).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        plots = (doc.get("quality") or {}).get("plots") if f == "manifest.json" else doc.get("plots")
        if isinstance(plots, dict):
            names |= {v for v in plots.values() if isinstance(v, str)}
    names |= {r.split("/", 1)[1] for r in (RunDir(folder).read_json("outputs.json") or []) if isinstance(r, str) and r.startswith("plots/")}
    if not names:  # a folder written before plots were recorded: datatune's own plot names
        names = {r.split("/", 1)[1] for r in KNOWN_OUTPUTS if r.startswith("plots/")}
    return {n for n in names if n.lower().endswith(".png") and "/" not in n and "\\" not in n and n not in (".", "..")}


EXAMPLES_PER_SOURCE = 3
EXAMPLE_SOURCES = 12  # the biggest sources; MMLU's 57 subjects would make a page of examples
INPUT_CHARS, OUTPUT_CHARS = 600, 300


def _clip(text: str, limit: int) -> str:
    """text cut to about `limit` characters at a word boundary, saying how much was left out."""
    text = text if isinstance(text, str) else str(text)
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ", limit * 3 // 4)
    cut = cut[:space] if space > 0 else cut
    return f"{cut.rstrip()} … ({len(text) - len(cut):,} more characters)"


def _first_rows_per_source(prov, k: int) -> list[tuple[tuple[str, str], int, list[int]]]:
    """((dataset, config), rows, the first k row numbers) per source of a provenance table, in numpy."""
    import numpy as np
    import pyarrow.compute as pc

    if not prov.num_rows:
        return []
    enc = [pc.fill_null(prov.column(n).combine_chunks(), "").dictionary_encode() for n in ("source_dataset", "source_config")]
    d, c = (e.indices.to_numpy(zero_copy_only=False).astype(np.int64) for e in enc)
    code = d * max(1, len(enc[1].dictionary)) + c
    order = np.argsort(code, kind="stable")
    starts = np.flatnonzero(np.r_[True, code[order][1:] != code[order][:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    names = [e.dictionary.to_pylist() for e in enc]
    return [((names[0][d[order[s]]], names[1][c[order[s]]]), int(n), order[s:s + min(int(n), k)].tolist()) for s, n in zip(starts, sizes)]


def example_rows(folder: Path, per_source: int = EXAMPLES_PER_SOURCE) -> list[tuple[str, list[dict]]]:
    """(source, the first `per_source` rows of it) for each source (dataset and config, or synthetic) of the
    built folder, train split first, sources in order of rows. Reads the provenance columns whole and
    the text columns one record batch at a time, keeping only the chosen rows."""
    folder = Path(folder)
    files = sorted((folder / "data").glob("*.parquet"), key=lambda f: (not f.name.startswith("train"), f.name)) if (folder / "data").is_dir() else []
    chosen: dict[tuple[str, str], list[tuple[int, int]]] = {}  # source -> [(file, row)]
    counts: dict[tuple[str, str], int] = {}
    for i, f in enumerate(files):
        for key, n, first in _first_rows_per_source(pq.read_table(f, columns=["source_dataset", "source_config"]), per_source):
            counts[key] = counts.get(key, 0) + n
            picked = chosen.setdefault(key, [])
            picked += [(i, r) for r in first[: per_source - len(picked)]]
    want: dict[tuple[int, int], dict] = {pos: {} for rows in chosen.values() for pos in rows}
    for i, f in enumerate(files):
        rows_here = sorted(r for fi, r in want if fi == i)
        if not rows_here:
            continue
        pf = pq.ParquetFile(f)
        names = [n for n in ("input", "output", "source_dataset", "source_config", "source_split", "source_row", "method", "check")
                 if n in pf.schema_arrow.names]
        start, j = 0, 0
        for batch in pf.iter_batches(batch_size=4096, columns=names):
            end = start + batch.num_rows
            while j < len(rows_here) and rows_here[j] < end:
                want[(i, rows_here[j])] = {**batch.slice(rows_here[j] - start, 1).to_pylist()[0], "split": f.name.split("-")[0]}
                j += 1
            start = end
            if j == len(rows_here):
                break
    out = []
    for key in sorted(chosen, key=lambda k: -counts[k]):
        dataset, config = key
        name = f"{dataset} / {config}" if dataset and config else dataset or "synthetic (written by the LLM)"
        out.append((f"{name} ({counts[key]:,} rows)", [want[pos] for pos in chosen[key]]))
    return out


def examples_html(folder: Path, per_source: int = EXAMPLES_PER_SOURCE, sources: int = EXAMPLE_SOURCES) -> str:
    """The example-rows section: every value escaped, long texts clipped."""
    groups = example_rows(folder, per_source)
    if not groups:
        return ""
    e = html.escape
    which = "each source" if len(groups) <= sources else f"each of the {sources} biggest of its {len(groups)} sources"
    out = [f'<h2 id="examples">Example rows</h2>\n<p>The first {per_source} rows of {which} in the built set '
           f"(texts over {INPUT_CHARS} / {OUTPUT_CHARS} characters are clipped).</p>"]
    for source, rows in groups[:sources]:
        out.append(f'<h3>{e(source)}</h3>\n<table class="examples"><tr><th>input</th><th>output</th><th>provenance</th></tr>')
        for r in rows:
            where = (f"{r.get('source_dataset')} / {r.get('source_config') or '-'} / {r.get('source_split') or '-'} / row {r.get('source_row')}"
                     if r.get("source_dataset") else "synthetic")
            extra = f"{r.get('method', '')} · {r.get('split', '')} split" + (f" · check: {r['check']}" if r.get("check") else "")
            out.append(f'<tr><td class="text">{e(_clip(r.get("input") or "", INPUT_CHARS))}</td>'
                       f'<td class="text">{e(_clip(r.get("output") or "", OUTPUT_CHARS))}</td>'
                       f"<td><code>{e(where)}</code><br><small>{e(extra)}</small></td></tr>")
        out.append("</table>")
    return "\n".join(out) + "\n"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.8em 0; }} th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }} img {{ max-width: 100%; border: 1px solid #eee; }} code {{ background: #f5f5f5; padding: 0 3px; }}
pre.meta {{ background: #fafafa; border: 1px solid #eee; padding: 0.6em; font-size: 12px; overflow-x: auto; }}
table.examples {{ width: 100%; table-layout: fixed; }} table.examples th:nth-child(1) {{ width: 50%; }} table.examples th:nth-child(3) {{ width: 22%; }}
td.text {{ white-space: pre-wrap; overflow-wrap: anywhere; font-size: 13px; }}
</style></head><body>
{body}
<details><summary>Card metadata (YAML)</summary><pre class="meta">{meta}</pre></details>
</body></html>
"""


def render_html(folder: Path) -> Path:
    """One HTML file beside the card, plots inlined as data URIs so it opens anywhere."""
    from markdown_it import MarkdownIt

    folder = Path(folder)
    card = folder / "README.md"
    if not card.is_file():
        raise CatalogError(f"{folder} has no README.md; pass the --out folder of a finished build")
    text = card.read_text(encoding="utf-8")
    meta = ""
    m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    if m:
        meta, text = m.group(1), text[m.end():]
    # html off: a <script> in a description, licence or label is shown as text, not run
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    plots_dir = folder / "plots"
    allowed = datatune_plots(folder) if plots_dir.is_dir() and not plots_dir.is_symlink() else set()

    def inline(match: re.Match) -> str:
        src = html.unescape(match.group(1))
        name = src[len("plots/"):] if src.startswith("plots/") else None
        p = plots_dir / name if name in allowed else None
        if p is not None and p.is_file() and not p.is_symlink():
            return f'src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}"'
        return match.group(0)

    body = re.sub(r'(?<=<img )src="([^"]*)"', inline, body)
    examples = examples_html(folder)
    at = body.find("<h2>Plans</h2>")
    body = body[:at] + examples + body[at:] if at >= 0 else body + examples
    out = folder / "report.html"
    atomic_write_text(out, _PAGE.format(title=html.escape(f"datatune report: {folder.name}"), body=body, meta=html.escape(meta)))
    record_outputs(folder, ["report.html"])
    return out
