"""The Hugging Face Hub as a source of index entries: the dataset listing with card data, kept fresh.

Listing the Hub with `full=True` returns each dataset's card metadata (task tags, languages, licence,
`dataset_info` features) without downloading anything. A first refresh lists everything (up to a
limit); later ones list by `lastModified`, newest first, and stop at the first dataset that hasn't
changed since the previous refresh, so keeping an index current costs a few requests, not hours.
Datasets deleted from the Hub stay until a `full` refresh.

Tested at its seam with a fake `HfApi`: this machine can't reach the Hub.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable

import datasets

from ..core.errors import DatasetLoadError, OfflineError
from ..core.files import atomic_write_text
from ..core.types import DatasetEntry, entry_from_json, entry_to_json
from .hub import entry_from_info, is_connection_error, load_split  # one converter, one notion of "offline"

log = logging.getLogger(__name__)

LOCATION = "hf://datasets (listing)"
OFFLINE_HINT = "pass --catalog PATH (or set DATATUNE_CATALOG) to index a local catalog such as ../shared/hub"


def _stamp(info) -> str:
    """lastModified as a sortable ISO string ('' when the Hub didn't send one)."""
    v = getattr(info, "last_modified", None) or getattr(info, "lastModified", None)
    if isinstance(v, datetime):
        return v.isoformat()
    return str(v or "")


@dataclass
class RefreshStats:
    listed: int = 0  # listing items read from the Hub
    added: int = 0
    updated: int = 0
    full: bool = False


class HubListing:
    """Entries from the Hub listing, persisted as JSON with each dataset's lastModified."""

    def __init__(self, path: Path | None = None, api=None):
        if path is None:
            from datatune.core.settings import cache_dir

            path = cache_dir("hub") / "listing.json"
        self.path = Path(path)
        self._api = api
        self.entries: dict[str, DatasetEntry] = {}
        self.modified: dict[str, str] = {}
        self.watermark = ""  # newest lastModified seen
        self._read()

    @property
    def api(self):
        if self._api is None:
            from huggingface_hub import HfApi

            self._api = HfApi()
        return self._api

    def refresh(self, *, full: bool = False, limit: int | None = None, search: str | None = None) -> RefreshStats:
        """Fetch what changed since the last refresh (everything on the first one, or with `full`)."""
        full = full or not self.watermark
        stats = RefreshStats(full=full)
        seen: dict[str, DatasetEntry] = {}
        try:
            for info in self._listing(limit=limit, search=search):
                stats.listed += 1
                stamp = _stamp(info)
                if not full and stamp and stamp <= self.watermark:
                    break  # newest first: everything from here on is unchanged
                if info.id in seen:
                    continue
                entry = entry_from_info(info)
                seen[info.id] = entry
                stats.updated += info.id in self.entries
                stats.added += info.id not in self.entries
                self.entries[info.id] = entry
                self.modified[info.id] = stamp
        except Exception as e:  # noqa: BLE001 - the listing is remote; translate what offline looks like
            if is_connection_error(e):
                raise OfflineError(f"the Hugging Face Hub can't be reached ({type(e).__name__}); {OFFLINE_HINT}") from e
            raise
        if full and limit is None and search is None:
            for gone in set(self.entries) - set(seen):  # a complete listing also tells what was deleted
                del self.entries[gone]
                self.modified.pop(gone, None)
        self.watermark = max([self.watermark, *self.modified.values()])
        self._write()
        return stats

    def _listing(self, *, limit: int | None, search: str | None) -> Iterable:
        return self.api.list_datasets(full=True, sort="last_modified", limit=limit, search=search)

    def catalog(self) -> "ListingCatalog":
        return ListingCatalog(list(self.entries.values()), self.modified)

    # -- persistence --------------------------------------------------------------------------
    def _read(self) -> None:
        try:
            d = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        self.entries = {e["id"]: entry_from_json(e) for e in d.get("entries", [])}
        self.modified = dict(d.get("modified", {}))
        self.watermark = d.get("watermark", "")

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({
            "watermark": self.watermark, "modified": self.modified,
            "entries": [entry_to_json(e) for e in self.entries.values()],
        }))


class ListingCatalog:
    """A Catalog over listed Hub entries, for `RetrievalIndex.build(..., samples=False)`.

    Rows load through `datasets` when the Hub is reachable; indexing never needs them.
    """

    location = LOCATION

    def __init__(self, entries: list[DatasetEntry], modified: dict[str, str] | None = None):
        self._entries = entries
        self._modified = modified or {}

    def entries(self) -> list[DatasetEntry]:
        return self._entries

    def entry(self, dataset_id: str) -> DatasetEntry:
        for e in self._entries:
            if dataset_id in e.names:
                return e
        raise DatasetLoadError(f"{dataset_id} is not in the Hub listing; refresh it with `datatune index build`")

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for e in sorted(self._entries, key=lambda e: e.id):
            h.update(f"{e.id}|{self._modified.get(e.id, '')}\n".encode())
        return h.hexdigest()[:16]

    def load(self, dataset_id: str, config: str, split: str) -> datasets.Dataset:
        return load_split(dataset_id, config, split,
                          offline=lambda e: OfflineError(f"the Hugging Face Hub can't be reached ({type(e).__name__}); {OFFLINE_HINT}"))
