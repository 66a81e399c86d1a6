"""What a catalog is: a list of dataset entries (card + schema) and a way to load rows.

Two implementations share this interface: `LocalCatalog` (a folder like ../shared/hub) and
`HubCatalog` (huggingface_hub + datasets). Everything downstream sees only these records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol

import datasets


@dataclass(frozen=True)
class Feature:
    """One column of a config: name, a short dtype string, and ClassLabel names when it has them."""

    name: str
    dtype: str  # "string", "int32", "list<string>", "class_label", "struct", ...
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigInfo:
    """One config of a dataset. `has_rows` is False for a config the catalog knows only from a card
    (a rows folder that ships some of a dataset's configs: glue's sst2 but not mrpc); such a config
    is retrievable but can't be loaded or transformed. Check it per config, not only
    `DatasetEntry.has_rows`, which is True when any config has rows."""

    name: str
    features: tuple[Feature, ...]
    splits: dict[str, int] = field(default_factory=dict, hash=False, compare=False)
    has_rows: bool = True
    # the card's own words about this config (GLUE's '#### mrpc' section): configs of one card differ
    # in what they are for, and retrieval reads this next to the dataset's prose
    description: str = field(default="", hash=False, compare=False)

    @property
    def num_rows(self) -> int:
        return sum(self.splits.values())


@dataclass
class DatasetEntry:
    """A dataset as retrieval and planning see it."""

    id: str  # repo id, e.g. "cornell-movie-review-data/rotten_tomatoes", or a card name
    aliases: tuple[str, ...] = ()  # other names it is known by (the 2022 card name)
    pretty_name: str = ""
    task_categories: tuple[str, ...] = ()
    task_ids: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    size_categories: tuple[str, ...] = ()
    summary: str = ""  # the card's prose, trimmed
    configs: tuple[ConfigInfo, ...] = ()
    has_rows: bool = False  # True when the catalog has rows for at least one config (see ConfigInfo.has_rows)
    # how much the Hub's users use it (the Hub API's `downloads`, `likes`); None when unknown
    downloads: int | None = None
    likes: int | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Every name this entry answers to, for relevance checks and exclusions."""
        short = self.id.split("/")[-1]
        return tuple(dict.fromkeys((self.id, short, *self.aliases)))

    @property
    def license(self) -> str:
        return ", ".join(self.licenses) or "unknown"

    def config(self, name: str) -> ConfigInfo:
        for c in self.configs:
            if c.name == name:
                return c
        raise KeyError(name)

    def row_configs(self) -> tuple[ConfigInfo, ...]:
        """The configs whose rows are in the catalog (none for a card-only entry)."""
        return tuple(c for c in self.configs if c.has_rows) if self.has_rows else ()


class Catalog(Protocol):
    """Where datasets come from. The only code that reads dataset files lives behind this."""

    location: str

    def entries(self) -> list[DatasetEntry]: ...

    def entry(self, dataset_id: str) -> DatasetEntry: ...

    def load(self, dataset_id: str, config: str, split: str) -> datasets.Dataset: ...

    def fingerprint(self) -> str: ...


def features_from_datasets(features: datasets.Features) -> tuple[Feature, ...]:
    """Summarise `datasets.Features` as `Feature` records (ClassLabel names kept)."""
    return tuple(Feature(name, *_describe(f)) for name, f in features.items())


def _describe(f) -> tuple[str, tuple[str, ...]]:
    if isinstance(f, datasets.ClassLabel):
        return "class_label", label_names(f.names)
    if isinstance(f, datasets.Value):
        return str(f.dtype), ()
    if isinstance(f, (datasets.Sequence, datasets.List, datasets.LargeList)) if hasattr(datasets, "List") else isinstance(f, datasets.Sequence):
        inner = f.feature
        if isinstance(inner, datasets.ClassLabel):
            return "list<class_label>", label_names(inner.names)
        if isinstance(inner, dict):
            return "struct", ()
        dtype, labels = _describe(inner)
        return f"list<{dtype}>", labels
    if isinstance(f, list):
        dtype, labels = _describe(f[0]) if f else ("any", ())
        return f"list<{dtype}>", labels
    if isinstance(f, dict):
        return "struct", ()
    return type(f).__name__.lower(), ()


def label_names(names) -> tuple[str, ...]:
    """Class names as strings, whatever a card wrote: `{0: 0, 1: 1}` (medical_questions_pairs), a list
    with gaps (`null`), or a mapping with missing ids. Position i stays the name of label id i; a
    missing name becomes the id itself."""
    if names is None:
        return ()
    if isinstance(names, dict):
        try:
            by_id = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError):
            return tuple(str(v) for v in names.values())
        if not by_id:
            return ()
        names = [by_id.get(i) for i in range(max(by_id) + 1)]
    elif isinstance(names, (str, bytes)):
        names = [names]
    return tuple(str(i) if n is None else str(n) for i, n in enumerate(names))


def iter_ids(entries: Iterable[DatasetEntry]) -> list[str]:
    return [e.id for e in entries]


# -- entries as JSON (the catalog's parse cache and the retrieval index store both keep them) ------
def entry_to_json(e: DatasetEntry) -> dict:
    return {
        "id": e.id, "aliases": list(e.aliases), "pretty_name": e.pretty_name,
        "task_categories": list(e.task_categories), "task_ids": list(e.task_ids), "languages": list(e.languages),
        "licenses": list(e.licenses), "size_categories": list(e.size_categories), "summary": e.summary,
        "has_rows": e.has_rows, "downloads": e.downloads, "likes": e.likes,
        "configs": [
            {"name": c.name, "splits": dict(c.splits), "has_rows": c.has_rows, "description": c.description,
             "features": [[f.name, f.dtype, [str(x) for x in f.labels]] for f in c.features]}
            for c in e.configs
        ],
    }


def entry_from_json(d: dict) -> DatasetEntry:
    configs = tuple(
        ConfigInfo(c["name"], tuple(Feature(n, t, tuple(lb)) for n, t, lb in c["features"]), dict(c["splits"]),
                   has_rows=c.get("has_rows", True), description=c.get("description", ""))
        for c in d["configs"]
    )
    tup = {k: tuple(d.get(k) or ()) for k in ("aliases", "task_categories", "task_ids", "languages", "licenses", "size_categories")}
    return DatasetEntry(id=d["id"], pretty_name=d.get("pretty_name", ""), summary=d.get("summary", ""), has_rows=d.get("has_rows", False),
                        configs=configs, downloads=d.get("downloads"), likes=d.get("likes"), **tup)
