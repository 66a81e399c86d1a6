"""Reading a built folder back: its rows and spec, the quality report, and the HTML page.

`datatune eval DIR` recomputes the quality measures; `datatune report DIR --html` renders the card
(tables, plans, drops, metrics, LLM usage) as one self-contained HTML page with the plots inlined.
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


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.8em 0; }} th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }} img {{ max-width: 100%; border: 1px solid #eee; }} code {{ background: #f5f5f5; padding: 0 3px; }}
pre.meta {{ background: #fafafa; border: 1px solid #eee; padding: 0.6em; font-size: 12px; overflow-x: auto; }}
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
    out = folder / "report.html"
    atomic_write_text(out, _PAGE.format(title=html.escape(f"datatune report: {folder.name}"), body=body, meta=html.escape(meta)))
    record_outputs(folder, ["report.html"])
    return out
