"""A few real values per config, for datasets whose rows are in the catalog.

Values show what a column holds where its name doesn't (`text` of tweets vs of news, `####` answers),
which helps both the ranker and a person reading a hit. And rows reveal label sets that the schema
hides: a string column that takes only a handful of short values over the first rows (PubMedQA's
`final_decision`: yes / no / maybe) is a label column in all but dtype. Loading is best-effort: a
config that fails to load just has no samples.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import datasets

from datatune.core.errors import DatasetLoadError
from datatune.core.types import Catalog, ConfigInfo, DatasetEntry

log = logging.getLogger(__name__)

SCAN_ROWS = 100  # rows read to tell a categorical string column
MAX_CATEGORIES = 12
MAX_CATEGORY_CHARS = 24


def sample_values(catalog: Catalog, entry: DatasetEntry, *, rows: int = 3, chars: int = 160) -> dict[str, dict]:
    """Config name -> {"text": first `rows` string values of each column, "labels": {column: values}}."""
    out: dict[str, dict] = {}
    if not entry.has_rows:
        return out
    with _quiet():
        for config in entry.configs:
            got = _sample(catalog, entry, config, rows, chars)
            if got:
                out[config.name] = got
    return out


def _sample(catalog: Catalog, entry: DatasetEntry, config: ConfigInfo, rows: int, chars: int) -> dict | None:
    if not config.splits:
        return None
    split = min(config.splits, key=lambda s: config.splits[s] or 1 << 62)
    try:
        ds = catalog.load(entry.id, config.name, split)
        head = ds.select(range(min(SCAN_ROWS, len(ds)))).to_dict()
    except (DatasetLoadError, KeyError, ValueError, OSError) as e:
        log.info("no samples for %s [%s]: %s", entry.id, config.name, e)
        return None
    text = [v.strip()[:chars] for vals in head.values() for v in vals[:rows] if isinstance(v, str) and v.strip()]
    return {"text": " | ".join(text), "labels": categorical_columns(head)}


def categorical_columns(columns: dict[str, list]) -> dict[str, list[str]]:
    """String columns whose values, over enough rows, are a few short repeated strings."""
    out = {}
    for name, vals in columns.items():
        strs = [v.strip() for v in vals if isinstance(v, str)]
        if len(strs) < 10 or len(strs) < len(vals):
            continue
        distinct = list(dict.fromkeys(strs))
        if len(distinct) <= min(MAX_CATEGORIES, len(strs) // 3) and all(0 < len(v) <= MAX_CATEGORY_CHARS for v in distinct):
            out[name] = sorted(distinct)
    return out


@contextmanager
def _quiet():
    """datasets draws a progress bar per split it prepares: noise when loading a few rows."""
    was_disabled = datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.utils.enable_progress_bars()
