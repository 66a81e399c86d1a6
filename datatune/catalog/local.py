"""A local catalog: a folder laid out like ../shared/hub.

    datasets/<owner>__<name>/README.md + data files   Hub-layout repos with rows
    cards/<name>/README.md (+ dataset_infos.json)      cards without rows

A repo whose card prose equals a card's (or, failing that, whose short name is a card's name) is the
same dataset: the two merge into one entry with the repo's id, the card's name as an alias and every
config of either; configs only the card describes are card-only (`ConfigInfo.has_rows` False), so
retrieval never shows a dataset twice and still finds glue's mrpc when only sst2 has rows.

Card YAML is untrusted: it is parsed with a safe loader that refuses alias bombs, and a card's
`data_files` must stay inside its dataset folder. Rows are loaded through `datasets` with a cache
keyed on the catalog folder and the files' size and mtime, so an edited file is read again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

import datasets
import yaml
from huggingface_hub.repocard import REGEX_YAML_BLOCK

from ..core.errors import CatalogError, DatasetLoadError
from ..core.files import atomic_write_text
from ..core.types import ConfigInfo, DatasetEntry, Feature, entry_from_json, entry_to_json, features_from_datasets, label_names
from .sections import config_sections, info_descriptions
from .usage import read_usage, usage_file, with_usage

log = logging.getLogger(__name__)

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CACHE_VERSION = "5"  # 2: ConfigInfo.has_rows; cards merged with their rows folder. 3: ConfigInfo.description. 4: usage counts. 5: the Hub's front-matter pattern
# Aliases may add this many YAML nodes beyond those written (mconala's shared `features: *id001`
# adds a few dozen); a billion-laughs card adds hundreds of millions.
MAX_ALIAS_NODES = 50_000


class CardYAMLError(ValueError):
    """A card's YAML header that is refused (alias bomb, recursive alias) or can't be parsed."""


def parse_yaml(text: str) -> object:
    """YAML with the safe loader, refusing documents whose aliases expand past MAX_ALIAS_NODES.

    PyYAML composes an alias as a reference to the anchored node, so composing is cheap; the cost
    comes when the constructed data is walked (features, JSON, str). The composed graph is measured
    first, and only a bounded one is constructed.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise CardYAMLError(f"invalid YAML ({type(e).__name__})") from e
    except RecursionError as e:
        raise CardYAMLError("YAML nested too deeply") from e
    finally:
        loader.dispose()


def _check_expansion(root) -> None:
    """Raise CardYAMLError when `root` expands (aliases followed) to many more nodes than it holds.

    Sizes are memoised per node, so this takes time in the number of distinct nodes and edges, not
    in the (possibly astronomical) expanded size.
    """
    size: dict[int, int] = {}
    active: set[int] = set()  # nodes on the current path: seeing one again is a recursive alias
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            continue
        if key in size:
            continue
        if key in active:
            raise CardYAMLError("its YAML has a recursive alias")
        active.add(key)
        stack.append((node, True))
        for c in _children(node):
            if id(c) in active:
                raise CardYAMLError("its YAML has a recursive alias")
            if id(c) not in size:
                stack.append((c, False))
    if size[id(root)] > len(size) + MAX_ALIAS_NODES:
        raise CardYAMLError(f"its YAML aliases expand to over {MAX_ALIAS_NODES:,} more nodes than it has (an alias bomb?)")


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [x for kv in node.value for x in kv]
    return []


def read_card(text: str) -> tuple[dict, str, str | None]:
    """A card's YAML header (as a dict), its prose, and why the header was not used (None if it was)."""
    m = REGEX_YAML_BLOCK.search(text)  # the Hub's own front-matter pattern (huggingface_hub.RepoCard splits so)
    meta: object = {}
    problem = None
    if m:
        try:
            meta = parse_yaml(m.group(2)) or {}
        except CardYAMLError as e:
            meta, problem = {}, str(e)
        text = text[m.end():]
    if not isinstance(meta, dict):
        meta, problem = {}, problem or "its YAML header is not a mapping"
    return meta, _COMMENT.sub("", text).strip(), problem


def split_card(text: str) -> tuple[dict, str]:
    """A card's YAML header (as a dict; empty when refused or unparseable) and its prose."""
    meta, prose, _ = read_card(text)
    return meta, prose


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


def configs_from_meta(meta: dict, *, has_rows: bool = True) -> tuple[ConfigInfo, ...]:
    """Configs with features and split sizes from a card's YAML `dataset_info`.

    Real cards are odd in many ways (integer class names, a mapping where a list belongs, a feature
    that `datasets` can't read, `num_examples: null`): whatever can be read is kept, the rest is
    left out, and nothing raises.
    """
    info = meta.get("dataset_info") if isinstance(meta, dict) else None
    if isinstance(info, dict):
        info = [info]
    if not isinstance(info, list):
        return ()
    out, seen = [], set()
    for d in info:
        if not isinstance(d, dict):
            continue
        name = str(d.get("config_name") or "default")
        if name in seen:
            continue
        seen.add(name)
        out.append(ConfigInfo(name, _features(d.get("features")), _splits(d.get("splits")), has_rows))
    return tuple(out)


def _features(raw) -> tuple[Feature, ...]:
    if isinstance(raw, dict):  # {name: dtype} or the dataset_infos.json form
        try:
            return features_from_datasets(datasets.Features.from_dict(raw))
        except Exception:  # noqa: BLE001
            raw = [{"name": k, "dtype": v} for k, v in raw.items()]
    if not isinstance(raw, list):
        return ()
    try:
        return features_from_datasets(datasets.Features._from_yaml_list(raw))
    except Exception:  # noqa: BLE001 - one odd feature: read the others one by one
        pass
    out = []
    for f in raw:
        if not isinstance(f, dict) or f.get("name") is None:
            continue
        try:
            out.extend(features_from_datasets(datasets.Features._from_yaml_list([f])))
        except Exception:  # noqa: BLE001
            out.append(Feature(str(f["name"]), *_loose_dtype(f.get("dtype"))))
    return tuple(out)


def _loose_dtype(dtype) -> tuple[str, tuple[str, ...]]:
    """A feature `datasets` refuses: its dtype string, or its class names when it is a class_label."""
    if isinstance(dtype, str):
        return dtype, ()
    if isinstance(dtype, dict) and isinstance(dtype.get("class_label"), dict):
        return "class_label", label_names(dtype["class_label"].get("names"))
    return "unknown", ()


def _splits(raw) -> dict[str, int]:
    if isinstance(raw, dict):  # {name: {num_examples: n}}
        raw = [{"name": k, **(v if isinstance(v, dict) else {})} for k, v in raw.items()]
    if not isinstance(raw, list):
        return {}
    out = {}
    for s in raw:
        if isinstance(s, dict) and s.get("name") is not None:
            try:
                out[str(s["name"])] = max(0, int(s.get("num_examples") or 0))
            except (TypeError, ValueError):
                out[str(s["name"])] = 0
    return out


def entry_from_card(dataset_id: str, text: str, *, has_rows: bool, aliases: tuple[str, ...] = ()) -> DatasetEntry:
    meta, prose = split_card(text)
    return entry_from_meta(dataset_id, meta, prose, has_rows=has_rows, aliases=aliases)


def entry_from_meta(dataset_id: str, meta: dict, prose: str, *, has_rows: bool, aliases: tuple[str, ...] = (),
                    infos: dict | None = None) -> DatasetEntry:
    """`infos`: the card's dataset_infos.json, read for what it says of each config."""
    configs = configs_from_meta(meta, has_rows=has_rows)
    described = {**info_descriptions(infos or {}), **config_sections(prose, [c.name for c in configs])}
    if described:
        configs = tuple(dataclasses.replace(c, description=described.get(c.name, "")) for c in configs)
    if has_rows and isinstance(meta.get("configs"), list):
        # the YAML `configs:` list describes the shipped rows: other dataset_info configs are card-only
        shipped = {str(c.get("config_name") or "default") for c in meta["configs"] if isinstance(c, dict)}
        if any(c.name in shipped for c in configs):
            configs = tuple(c if c.name in shipped else dataclasses.replace(c, has_rows=False) for c in configs)
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
            for f in (path, path.with_name(INFOS)):
                if f.is_file():
                    st = f.stat()
                    h.update(f"{name}|{rows}|{f.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        usage = usage_file(self.path)
        if usage is not None:
            st = usage.stat()
            h.update(f"usage|{usage.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
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
            return [entry_from_json(d) for d in json.loads(f.read_text())]
        except Exception:  # corrupt cache: rebuild
            return None

    def _parse_all(self) -> list[DatasetEntry]:
        files = self._card_files()
        parsed: dict[tuple[str, bool], tuple[dict, str]] = {}
        infos: dict[tuple[str, bool], dict] = {}
        for name, path, rows in files:
            meta, prose, problem = read_card(path.read_text(encoding="utf-8", errors="replace"))
            if problem:
                log.warning("card %s: %s; its YAML header is ignored (no metadata, prose only)", path, problem)
            parsed[(name, rows)] = (meta, prose)
            infos[(name, rows)] = _read_infos(path)
        cards = {name: parsed[(name, False)] for name, _, rows in files if not rows}
        # prose shared by several cards (a bare template) says nothing about which dataset it is
        by_prose: dict[str, list[str]] = {}
        for name, (_, prose) in cards.items():
            if prose:
                by_prose.setdefault(_prose_hash(prose), []).append(name)
        entries, merged = [], set()
        for name, _, rows in files:
            if not rows:
                continue
            meta, prose = parsed[(name, True)]
            short = name.split("/")[-1]
            same = by_prose.get(_prose_hash(prose)) if prose else None
            card = same[0] if same and len(same) == 1 else (short if short in cards else None)
            aliases = (card,) if card and card != short else ()
            e = entry_from_meta(name, meta, prose, has_rows=True, aliases=aliases, infos=infos[(name, True)])
            if card:
                merged.add(card)
                e = merge_card(e, entry_from_meta(card, *cards[card], has_rows=False, infos=infos[(card, False)]))
            entries.append(e)
        for name, (meta, prose) in cards.items():
            if name not in merged:
                entries.append(entry_from_meta(name, meta, prose, has_rows=False, infos=infos[(name, False)]))
        usage = usage_file(self.path)
        if usage is not None:
            entries = with_usage(entries, read_usage(usage))
        f = self._cache_file()
        if f is not None:
            atomic_write_text(f, json.dumps([entry_to_json(e) for e in entries]))
        return entries

    # -- rows --------------------------------------------------------------------------------
    def repo_dir(self, dataset_id: str) -> Path:
        e = self.entry(dataset_id)
        if not e.has_rows:
            raise DatasetLoadError(f"{e.id} has a card but no rows in {self.location}; it can't be transformed offline")
        return self._datasets_dir / e.id.replace("/", "__", 1)

    def load(self, dataset_id: str, config: str, split: str) -> datasets.Dataset:
        e = self.entry(dataset_id)
        repo = self.repo_dir(dataset_id)
        try:
            if not e.config(config).has_rows:
                raise DatasetLoadError(
                    f"{e.id} [{config}] is card only: {self.location} has rows for "
                    f"{', '.join(c.name for c in e.row_configs()) or 'none of its configs'}; it can't be transformed offline"
                )
        except KeyError:
            pass  # not in the card's dataset_info: let `datasets` say whether it exists
        meta, _, problem = read_card((repo / "README.md").read_text(encoding="utf-8", errors="replace"))
        if problem:
            raise DatasetLoadError(f"could not load {e.id}: its README.md is refused ({problem}); fix the card's YAML header")
        check_data_files(repo, meta, e.id)
        name = None if config == "default" and not _has_named_configs(meta) else config
        cache = rows_cache_dir(repo)
        try:
            marker = cache / f"checked-{hashlib.sha256(f'{name}|{split}'.encode()).hexdigest()[:16]}"
            if not marker.exists():
                coerced = _check_files(repo, name, split, cache, e.id, config)
                if coerced is not None:
                    return coerced
                marker.touch()
            return datasets.load_dataset(str(repo), name, split=split, cache_dir=str(cache))
        except DatasetLoadError:
            raise
        except Exception as x:  # noqa: BLE001 - any loader failure means this dataset is skipped
            raise DatasetLoadError(f"could not load {dataset_id} [{config}/{split}]: {str(x).splitlines()[0][:200] if str(x) else type(x).__name__}") from x


INFOS = "dataset_infos.json"


def _read_infos(card: Path) -> dict:
    """The dataset_infos.json beside a card, or {} when there is none or it doesn't parse."""
    f = card.with_name(INFOS)
    if not f.is_file() or f.stat().st_size > 20_000_000:
        return {}
    try:
        d = json.loads(f.read_text(encoding="utf-8", errors="replace"))
    except ValueError:
        log.warning("%s is not valid JSON; its config descriptions are ignored", f)
        return {}
    return d if isinstance(d, dict) else {}


def merge_card(rows: DatasetEntry, card: DatasetEntry) -> DatasetEntry:
    """A rows folder's entry with what its card adds: the card's other configs (card-only), and any
    metadata the folder's own README lacks."""
    have = {c.name for c in rows.configs}
    said = {c.name: c.description for c in card.configs if c.description}
    own = tuple(c if c.description or c.name not in said else dataclasses.replace(c, description=said[c.name]) for c in rows.configs)
    extra = tuple(dataclasses.replace(c, has_rows=False) for c in card.configs if c.name not in have)
    fill = {k: getattr(card, k) for k in ("pretty_name", "task_categories", "task_ids", "languages", "licenses", "size_categories", "summary")
            if not getattr(rows, k)}
    return dataclasses.replace(rows, configs=own + extra, **fill)


def _prose_hash(prose: str) -> str:
    return hashlib.sha1(prose[:4000].encode()).hexdigest()


def _prose_key(text: str) -> str:
    return _prose_hash(split_card(text)[1])


def _has_named_configs(meta: dict) -> bool:
    return any(str(c.get("config_name")) != "default" for c in meta.get("configs") or [] if isinstance(c, dict))


# -- data files: inside the folder, keyed on their content, one type per column ---------------------
def check_data_files(repo: Path, meta: dict, dataset_id: str) -> None:
    """Refuse a card whose `configs:` data_files (or data_dir) point outside its dataset folder."""
    configs = meta.get("configs")
    if not isinstance(configs, list):
        return
    for c in configs:
        if not isinstance(c, dict):
            continue
        for p in _paths(c.get("data_files")) + _paths(c.get("data_dir")):
            if not _inside(repo, p):
                raise DatasetLoadError(
                    f"could not load {dataset_id}: the card's data_files point outside the dataset folder ({p!r}); "
                    f"data files must be relative paths inside {repo}"
                )


def _paths(v) -> list[str]:
    if v is None:
        return []
    if isinstance(v, (str, int, float)):
        return [str(v)]
    if isinstance(v, dict):
        if "path" in v:
            return _paths(v["path"])
        return [p for x in v.values() for p in _paths(x)]
    if isinstance(v, list):
        return [p for x in v for p in _paths(x)]
    return [str(v)]


def _inside(repo: Path, pattern: str) -> bool:
    p = pattern.strip()
    if not p or "://" in p or p.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", p) or "\x00" in p:
        return False
    parts = re.split(r"[\\/]+", p)
    if ".." in parts:
        return False
    root = repo.resolve()
    target = (repo / p.split("*", 1)[0].rstrip("/\\") if "*" in p else repo / p).resolve()
    return target == root or root in target.parents


def _datasets_cache_root() -> Path:
    """Where `datasets` keeps prepared data, read now (tests and users set HF_HOME after import)."""
    from ..core.settings import datasets_cache_override

    return datasets_cache_override() or Path(datasets.config.HF_DATASETS_CACHE)


def files_fingerprint(repo: Path) -> str:
    """Size, mtime, ctime and inode of every file in a dataset folder: changes when any file is edited."""
    h = hashlib.sha256(_CACHE_VERSION.encode())
    for root, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if d not in (".git", ".cache"))
        for f in sorted(files):
            p = Path(root) / f
            try:
                st = p.stat()
            except OSError:
                continue
            h.update(f"{p.relative_to(repo).as_posix()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}\n".encode())
    return h.hexdigest()[:16]


def rows_cache_dir(repo: Path) -> Path:
    """The `datasets` cache for one dataset folder of one catalog, in its current state.

    `datasets` keys a local folder's cache on the folder's name and card, so an edited data file, or
    another catalog with a folder of the same name, would get the first one's rows. Here each
    (resolved folder, files fingerprint) has its own cache_dir; older states of the folder are removed.
    """
    real = repo.resolve()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", real.name)[:60]
    slot = _datasets_cache_root() / "datatune-local" / f"{slug}-{hashlib.sha256(str(real).encode()).hexdigest()[:12]}"
    here = slot / files_fingerprint(repo)
    if not here.is_dir():
        if slot.is_dir():
            for old in slot.iterdir():
                shutil.rmtree(old, ignore_errors=True)
        here.mkdir(parents=True, exist_ok=True)
    return here


_KINDS = ((bool, "boolean"), ((int, float), "number"), (str, "string"), (list, "list"), (dict, "object"))


def _kind(v) -> str | None:
    for t, k in _KINDS:
        if isinstance(v, t):
            return k
    return None


def _check_files(repo: Path, name: str | None, split: str, cache: Path, dataset_id: str, config: str) -> datasets.Dataset | None:
    """Before a (config, split) is first prepared: its files must be inside the folder, and a JSON
    Lines column must hold one type. `datasets` would JSON-encode every value of a mixed column
    ('"do not , under"' for a plain string); instead, a column the card declares a string keeps its
    strings as they are and gets other values as JSON text (the rows are returned, loaded here), and
    any other mixed column is refused with the file and column named."""
    builder = datasets.load_dataset_builder(str(repo), name, cache_dir=str(cache))
    data_files = builder.config.data_files or {}
    if split not in data_files:
        return None  # `datasets` says which splits there are
    files = [Path(str(f)) for f in data_files[split]]
    root = repo.resolve()
    for f in files:
        if root not in f.resolve().parents:
            raise DatasetLoadError(f"could not load {dataset_id}: the card's data_files point outside the dataset folder ({f})")
    features = builder.info.features
    mixed = {}
    for f in files:
        if f.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            for col, why in _mixed_columns(f).items():
                mixed.setdefault(col, (f, why))
    if not mixed:
        return None
    for col, (f, why) in mixed.items():
        declared = features.get(col) if features is not None else None
        if declared is not None and not (isinstance(declared, datasets.Value) and declared.dtype in ("string", "large_string")):
            raise DatasetLoadError(
                f"could not load {dataset_id} [{config}/{split}]: column {col!r} of {os.path.relpath(f, root)} "
                f"mixes {why}, but the card declares it {declared!r}; give every value of the column one type"
            )
        log.warning("%s [%s/%s]: column %r of %s mixes %s; values that aren't strings are kept as JSON text",
                    dataset_id, config, split, col, f.name, why)
    return _load_coerced(files, set(mixed), features)


def _mixed_columns(path: Path) -> dict[str, str]:
    """Top-level columns of a JSON Lines file whose values (nulls aside) are of more than one JSON type."""
    first: dict[str, tuple[str, int]] = {}
    out: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                return out  # not JSON Lines (one JSON document): `datasets` reads it its own way
            if not isinstance(row, dict):
                return out
            for k, v in row.items():
                kind = _kind(v)
                if kind is None or k in out:
                    continue
                if k not in first:
                    first[k] = (kind, i)
                elif first[k][0] != kind:
                    out[k] = f"{first[k][0]} (line {first[k][1]}) and {kind} (line {i})"
    return out


def _load_coerced(files: list[Path], text_columns: set[str], features) -> datasets.Dataset:
    rows = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            rows.extend(json.loads(line) for line in fh if line.strip())
    names = list(features) if features is not None else list(dict.fromkeys(k for r in rows for k in r))
    cols = {n: [r.get(n) for r in rows] for n in names}
    for n in text_columns & set(cols):
        cols[n] = [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in cols[n]]
    return datasets.Dataset.from_dict(cols, features=features)
