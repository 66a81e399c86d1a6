"""How much the Hub's users use each dataset (downloads, likes), for a local catalog.

The Hub API reports `downloads` and `likes` per dataset (`HfApi.list_datasets(full=True)`); the Hub
catalog reads them from there. A local catalog reads them from a saved listing of such records, a
JSON list of objects with `id`, `downloads` and `likes`: `hub_usage.json` in the catalog folder, or
prompt2model's `prompt2model-index/preprocessed_datasets.json` (1,811 Hub API records, 2023), which
../shared/hub carries. Retrieval uses the counts as a weak prior among datasets that already fit
(`retrieval_index/popularity.py`); a catalog without them ranks as before.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from ..core.types import DatasetEntry

log = logging.getLogger(__name__)

USAGE_FILES = ("hub_usage.json", "prompt2model-index/preprocessed_datasets.json")
MAX_BYTES = 200_000_000


def usage_file(catalog_dir: Path) -> Path | None:
    """The first listing of Hub API records the catalog folder has, or None."""
    for name in USAGE_FILES:
        f = catalog_dir / name
        if f.is_file():
            return f
    return None


def read_usage(path: Path) -> dict[str, tuple[int | None, int | None]]:
    """Dataset name (lowercase) -> (downloads, likes), from a JSON list of Hub API records.
    A file that is too large, not JSON or not such a list gives {} and a warning: no counts, no failure."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ValueError(f"over {MAX_BYTES:,} bytes")
        records = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        if not isinstance(records, list):
            raise ValueError("not a JSON list")
    except (OSError, ValueError) as e:
        log.warning("%s: usage counts not read (%s); retrieval ranks without them", path, e)
        return {}
    out: dict[str, tuple[int | None, int | None]] = {}
    for r in records:
        if isinstance(r, dict) and isinstance(r.get("id"), str):
            out[r["id"].lower()] = (_count(r.get("downloads")), _count(r.get("likes")))
    return out


def _count(v) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 else None


def with_usage(entries: list[DatasetEntry], usage: dict[str, tuple[int | None, int | None]]) -> list[DatasetEntry]:
    """Entries with the counts of the first of their names the listing knows (id, short name, aliases)."""
    if not usage:
        return entries
    out = []
    for e in entries:
        found = next((usage[n.lower()] for n in e.names if n.lower() in usage), None)
        out.append(replace(e, downloads=found[0], likes=found[1]) if found and e.downloads is None else e)
    return out
