"""The Hugging Face Hub as a catalog: listing with card data, cards, streamed samples, loading.

It can't be reached from an offline machine; then every call fails with an OfflineError that
names --catalog, the way to use a local folder instead. Tested at its seam (a fake HfApi).
"""

from __future__ import annotations

import hashlib

import datasets

from ..core.errors import DatasetLoadError, OfflineError
from ..core.types import DatasetEntry
from .local import configs_from_meta, entry_from_card

OFFLINE_HINT = "pass --catalog PATH (or set DATATUNE_CATALOG) to use a local catalog such as ../shared/hub"


def offline_error(e: Exception) -> OfflineError:
    return OfflineError(f"the Hugging Face Hub can't be reached ({type(e).__name__}); {OFFLINE_HINT}")


def is_connection_error(e: BaseException) -> bool:
    """Whether `e` (or what caused it) means the Hub could not be reached, rather than a real error."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    names = {type(x).__name__ for x in (e, e.__cause__, e.__context__) if x is not None}
    return isinstance(e, (ConnectionError, OfflineModeIsEnabled, TimeoutError)) or bool(
        names & {"ConnectError", "ConnectionError", "ConnectTimeout", "OfflineModeIsEnabled", "LocalEntryNotFoundError", "ReadTimeout"}
    )


def entry_from_info(info) -> DatasetEntry:
    """A DatasetEntry from a huggingface_hub DatasetInfo (with card_data when listed with full=True)."""
    card = getattr(info, "card_data", None)
    meta = card.to_dict() if card is not None and hasattr(card, "to_dict") else dict(card or {})
    tags = list(getattr(info, "tags", None) or [])
    for key, prefix in (("task_categories", "task_categories:"), ("language", "language:"), ("license", "license:")):
        if not meta.get(key):
            meta[key] = [t.split(":", 1)[1] for t in tags if t.startswith(prefix)]
    summary = getattr(info, "description", None) or ""
    e = entry_from_card(info.id, "", has_rows=True)
    e.pretty_name = str(meta.get("pretty_name") or "")
    e.task_categories = tuple(meta.get("task_categories") or ())
    e.task_ids = tuple(meta.get("task_ids") or ())
    e.languages = tuple(meta.get("language") or ())
    e.licenses = tuple([meta["license"]] if isinstance(meta.get("license"), str) else meta.get("license") or ())
    e.size_categories = tuple(meta.get("size_categories") or ())
    e.summary = summary[:1500]
    e.configs = configs_from_meta(meta)
    e.downloads, e.likes = getattr(info, "downloads", None), getattr(info, "likes", None)
    e.last_modified = str(getattr(info, "last_modified", "") or "")  # type: ignore[attr-defined]
    return e


def load_split(dataset_id: str, config: str, split: str, *, offline=offline_error) -> datasets.Dataset:
    """One split from the Hub through `datasets`; `offline(e)` is the error raised when the Hub can't be reached."""
    try:
        return datasets.load_dataset(dataset_id, None if config == "default" else config, split=split)
    except Exception as e:  # noqa: BLE001
        if is_connection_error(e):
            raise offline(e) from e
        raise DatasetLoadError(f"could not load {dataset_id} [{config}/{split}]: {str(e).splitlines()[0][:200]}") from e


class HubCatalog:
    location = "hf://datasets"

    def __init__(self, api=None, *, limit: int = 5000, search: str | None = None):
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi()
        self.api = api
        self.limit = limit
        self.search = search
        self._entries: list[DatasetEntry] | None = None

    def entries(self) -> list[DatasetEntry]:
        if self._entries is None:
            try:
                infos = self.api.list_datasets(full=True, limit=self.limit, search=self.search, sort="downloads")
                self._entries = [entry_from_info(i) for i in infos]
            except Exception as e:  # noqa: BLE001
                if is_connection_error(e):
                    raise offline_error(e) from e
                raise
        return self._entries

    def entry(self, dataset_id: str) -> DatasetEntry:
        try:
            return entry_from_info(self.api.dataset_info(dataset_id))
        except Exception as e:  # noqa: BLE001
            if is_connection_error(e):
                raise offline_error(e) from e
            raise DatasetLoadError(f"{dataset_id} is not on the Hub or is private ({type(e).__name__})") from e

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for e in self.entries():
            h.update(f"{e.id}|{getattr(e, 'last_modified', '')}\n".encode())
        return h.hexdigest()[:16]

    def load(self, dataset_id: str, config: str, split: str) -> datasets.Dataset:
        return load_split(dataset_id, config, split)

    def sample(self, dataset_id: str, config: str, split: str, n: int = 5) -> list[dict]:
        """A few rows without downloading the dataset (streaming)."""
        try:
            ds = datasets.load_dataset(dataset_id, None if config == "default" else config, split=split, streaming=True)
            return list(ds.take(n))
        except Exception as e:  # noqa: BLE001
            if is_connection_error(e):
                raise offline_error(e) from e
            raise DatasetLoadError(f"could not stream {dataset_id}: {str(e).splitlines()[0][:200]}") from e
