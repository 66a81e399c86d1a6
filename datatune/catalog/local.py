"""A local catalog: a folder laid out like ../shared/hub.

    datasets/<owner>__<name>/README.md + data files   Hub-layout repos with rows
    cards/<name>/README.md (+ dataset_infos.json)      cards without rows

A repo whose card prose equals a card's is the same dataset: it takes the card's name as an alias
and the card-only entry is dropped, so retrieval never shows a dataset twice.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import datasets
import yaml

from ..errors import CatalogError, DatasetLoadError
from .base import ConfigInfo, DatasetEntry, Feature, features_from_datasets

_FRONT = re.compile(r"^---\s*\n(.*?)\n---\s*\n?", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CACHE_VERSION = "1"


def split_card(text: str) -> tuple[dict, str]:
    """A card's YAML header (as a dict) and its prose."""
    m = _FRONT.match(text)
    meta: dict = {}
    if m:
        try:
            meta = yaml.load(m.group(1), Loader=_Loader) or {}
        except yaml.YAMLError:
            meta = {}
        text = text[m.end():]
    return (meta if isinstance(meta, dict) else {}), _COMMENT.sub("", text).strip()


def summarise_prose(prose: str, limit: int = 1500) -> str:
    """The informative part of a card: skip headings, tables of contents and link lists."""
    keep = []
    for line in prose.splitlines():
        s = line.strip()
        if not s or s.startswith(("#", "- [", "* [", "|", "[More Information")):
            continue
        if s.startswith(("- **", "* **")) and "http" in s:
            continue
        keep.append(s)
        if sum(map(len, keep)) > limit:
            break
    return " ".join(keep)[:limit]


def _as_tuple(v) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    return tuple(str(x) for x in v if x is not None)


def configs_from_meta(meta: dict) -> tuple[ConfigInfo, ...]:
    """Configs with features and split sizes from a card's YAML `dataset_info`."""
    info = meta.get("dataset_info") or []
    if isinstance(info, dict):
        info = [info]
    out = []
    for d in info:
        if not isinstance(d, dict):
            continue
        try:
            feats = features_from_datasets(datasets.Features._from_yaml_list(d.get("features") or []))
        except Exception:  # a card with an odd features block: keep names only
            feats = tuple(Feature(f.get("name", "?"), "unknown") for f in d.get("features") or [] if isinstance(f, dict))
        splits = {s["name"]: int(s.get("num_examples") or 0) for s in d.get("splits") or [] if isinstance(s, dict) and "name" in s}
        out.append(ConfigInfo(str(d.get("config_name") or "default"), feats, splits))
    return tuple(out)


def entry_from_card(dataset_id: str, text: str, *, has_rows: bool, aliases: tuple[str, ...] = ()) -> DatasetEntry:
    meta, prose = split_card(text)
    configs = configs_from_meta(meta)
    if has_rows and meta.get("configs"):
        # only configs whose files are here (the YAML `configs:` list describes the shipped rows)
        shipped = {str(c.get("config_name") or "default") for c in meta["configs"] if isinstance(c, dict)}
        configs = tuple(c for c in configs if c.name in shipped) or configs
    return DatasetEntry(
        id=dataset_id,
        aliases=aliases,
        pretty_name=str(meta.get("pretty_name") or ""),
        task_categories=_as_tuple(meta.get("task_categories")),
        task_ids=_as_tuple(meta.get("task_ids")),
        languages=_as_tuple(meta.get("language") or meta.get("languages")),
        licenses=_as_tuple(meta.get("license") or meta.get("licenses")),
        size_categories=_as_tuple(meta.get("size_categories")),
        summary=summarise_prose(prose),
        configs=configs,
        has_rows=has_rows,
    )


def _entry_to_json(e: DatasetEntry) -> dict:
    d = dict(e.__dict__)
    d["configs"] = [
        {"name": c.name, "splits": c.splits, "features": [[f.name, f.dtype, list(f.labels)] for f in c.features]}
        for c in e.configs
    ]
    return d


def _entry_from_json(d: dict) -> DatasetEntry:
    d = dict(d)
    d["configs"] = tuple(
        ConfigInfo(c["name"], tuple(Feature(n, t, tuple(lb)) for n, t, lb in c["features"]), c["splits"])
        for c in d["configs"]
    )
    for k in ("aliases", "task_categories", "task_ids", "languages", "licenses", "size_categories"):
        d[k] = tuple(d[k])
    return DatasetEntry(**d)


class LocalCatalog:
    """Datasets and cards in a folder. Parsed entries are cached by a fingerprint of the files."""

    def __init__(self, path: str | Path, *, cache: Path | None = None):
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        if not self.path.is_dir():
            raise CatalogError(f"catalog folder not found: {self.path} (pass --catalog PATH to a folder with datasets/ and cards/)")
        self._datasets_dir = self.path / "datasets"
        self._cards_dir = self.path / "cards"
        if not self._datasets_dir.is_dir() and not self._cards_dir.is_dir():
            raise CatalogError(
                f"{self.path} is not a datatune catalog: it has neither datasets/ nor cards/ "
                "(point --catalog at a folder laid out like ../shared/hub, or mirror one with `datatune mirror`)"
            )
        self._cache = cache
        self._entries: list[DatasetEntry] | None = None

    # -- listing -----------------------------------------------------------------------------
    def _card_files(self) -> list[tuple[str, Path, bool]]:
        files = []
        if self._datasets_dir.is_dir():
            for d in sorted(self._datasets_dir.iterdir()):
                if (d / "README.md").is_file():
                    files.append((d.name.replace("__", "/", 1), d / "README.md", True))
        if self._cards_dir.is_dir():
            for d in sorted(self._cards_dir.iterdir()):
                if (d / "README.md").is_file():
                    files.append((d.name, d / "README.md", False))
        return files

    def fingerprint(self) -> str:
        h = hashlib.sha256(_CACHE_VERSION.encode())
        for name, path, rows in self._card_files():
            st = path.stat()
            h.update(f"{name}|{rows}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    def entries(self) -> list[DatasetEntry]:
        if self._entries is None:
            self._entries = self._load_cached() or self._parse_all()
        return self._entries

    def entry(self, dataset_id: str) -> DatasetEntry:
        for e in self.entries():
            if dataset_id in e.names:
                return e
        raise CatalogError(f"dataset {dataset_id!r} is not in the catalog at {self.location} (see `datatune search`)")

    def _cache_file(self) -> Path | None:
        if self._cache is None:
            return None
        return self._cache / f"catalog-{hashlib.sha256(self.location.encode()).hexdigest()[:12]}-{self.fingerprint()}.json"

    def _load_cached(self) -> list[DatasetEntry] | None:
        f = self._cache_file()
        if f is None or not f.is_file():
            return None
        try:
            return [_entry_from_json(d) for d in json.loads(f.read_text())]
        except Exception:  # corrupt cache: rebuild
            return None

    def _parse_all(self) -> list[DatasetEntry]:
        files = self._card_files()
        card_by_prose: dict[str, str] = {}
        texts = {}
        for name, path, rows in files:
            text = path.read_text(encoding="utf-8", errors="replace")
            texts[(name, rows)] = text
            if not rows:
                card_by_prose.setdefault(_prose_key(text), name)
        entries, aliased = [], set()
        for name, path, rows in files:
            text = texts[(name, rows)]
            if rows:
                alias = card_by_prose.get(_prose_key(text))
                aliases = (alias,) if alias and alias != name.split("/")[-1] else ()
                if alias:
                    aliased.add(alias)
                entries.append(entry_from_card(name, text, has_rows=True, aliases=aliases))
        for name, path, rows in files:
            if not rows and name not in aliased and not any(name == e.id.split("/")[-1] for e in entries):
                entries.append(entry_from_card(name, texts[(name, rows)], has_rows=False))
        f = self._cache_file()
        if f is not None:
            tmp = f.with_suffix(".tmp")
            tmp.write_text(json.dumps([_entry_to_json(e) for e in entries]))
            tmp.replace(f)
        return entries

    # -- rows --------------------------------------------------------------------------------
    def repo_dir(self, dataset_id: str) -> Path:
        e = self.entry(dataset_id)
        if not e.has_rows:
            raise DatasetLoadError(f"{e.id} has a card but no rows in {self.location}; it can't be transformed offline")
        return self._datasets_dir / e.id.replace("/", "__", 1)

    def load(self, dataset_id: str, config: str, split: str) -> datasets.Dataset:
        repo = self.repo_dir(dataset_id)
        try:
            return datasets.load_dataset(str(repo), None if config == "default" and not _has_named_configs(repo) else config, split=split)
        except Exception as e:  # noqa: BLE001 - any loader failure means this dataset is skipped
            raise DatasetLoadError(f"could not load {dataset_id} [{config}/{split}]: {str(e).splitlines()[0][:200]}") from e


def _prose_key(text: str) -> str:
    return hashlib.sha1(split_card(text)[1][:4000].encode()).hexdigest()


def _has_named_configs(repo: Path) -> bool:
    meta, _ = split_card((repo / "README.md").read_text(encoding="utf-8", errors="replace"))
    return any(str(c.get("config_name")) != "default" for c in meta.get("configs") or [] if isinstance(c, dict))
