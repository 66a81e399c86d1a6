"""The retrieval index: build (incrementally), save, load, and search.

A search runs five rankers over the (dataset, config) documents - BM25 over the lexical text, MiniLM
cosine against the dataset description and against the config's task sentence, label match, and
task-tag match - and fuses their ranks (weighted RRF) at the level of a *result group*: one dataset
and one kind of config, so MMLU's 19 subjects are one result, while tweet_eval's stance and emotion
configs, which are different tasks, can be two. A soft language prior prefers datasets in the task's
language; a dataset's second result is demoted. Filters are applied before ranking.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from datatune.core.errors import CatalogError
from datatune.core.types import Catalog, DatasetEntry

from . import ann as _ann
from . import store
from .ann import AnnSet
from .dense import DIM, SPLIT_ROWS, Encoder, ScoringMatrix
from .documents import Document, config_labels, documents_for
from .explain import query_terms, why
from .filters import Filters, document_mask
from .fusion import Weights, demote_repeats, rrf, top
from .kernels import segment_max, segments_reached
from .labels import LabelMatch
from .languages import language_name, query_languages
from .lexical import Lexical
from .samples import sample_values
from .tags import TagMatch, tag_texts
from .text import text_hash

log = logging.getLogger(__name__)

# Tuned on ../shared/eval/retrieval_dev.jsonl by benchmarks/retrieval/tune.py (see RESULTS.md).
DEFAULT_WEIGHTS = Weights()


@dataclass
class Hit:
    """One search result: a dataset and its best-matching config, with every config of the same kind."""

    dataset_id: str
    config: str
    score: float
    why: tuple[str, ...]
    entry: DatasetEntry = field(repr=False)
    configs: tuple[str, ...] = ()  # configs of this dataset with the same task and labels as `config`

    def to_dict(self) -> dict:
        e = self.entry
        return {
            "dataset_id": self.dataset_id, "config": self.config, "configs": list(self.configs),
            "score": round(float(self.score), 6), "why": list(self.why), "pretty_name": e.pretty_name,
            "license": e.license, "languages": list(e.languages), "task_categories": list(e.task_categories),
            "has_rows": e.has_rows,
        }


@dataclass
class BuildStats:
    entries: int = 0
    documents: int = 0
    vectors: int = 0
    embedded: int = 0  # vectors computed in this build
    reused: int = 0  # vectors taken from the previous index
    seconds: float = 0.0
    loaded: bool = False  # True when load_or_build found the saved index current
    ann: dict | None = None  # per dense role: vectors in its graph, added / removed / reused this build (ann.py)
    ann_seconds: float = 0.0  # building the graphs


class RetrievalIndex:
    """Search over a catalog's cards and schemas. Build with `load_or_build(catalog)`.

    One index serves one thread at a time (searches set torch's thread count while they run).

    Dense search is exact below `ann.EXACT_BELOW` vectors and reads inverted-file (faiss IVF) candidates from it on (ann.py);
    `use_ann(False)` makes a large index search exactly (what the benchmark compares against).
    """

    ann_candidates = 400  # rows asked of an ANN index at first (x4 until the rankers' depth is covered)

    def __init__(self, *, entries: list[DatasetEntry], docs: list[tuple[int, str, str, int, int]], lexical: Lexical,
                 vectors: np.ndarray, row_keys: list[str], fingerprint: str, location: str, samples: dict[str, dict[str, dict]],
                 encoder: Encoder | None = None, weights: Weights = DEFAULT_WEIGHTS, stats: BuildStats | None = None,
                 ann: AnnSet | None = None):
        self.entries = entries
        self.lexical = lexical
        self.vectors = vectors
        self.row_keys = row_keys  # hash of the dense text behind each vector
        self._scoring = ScoringMatrix(vectors)
        self.fingerprint = fingerprint
        self.location = location
        self.samples = samples
        self.encoder = encoder or Encoder()
        self.weights = weights
        self.stats = stats or BuildStats(entries=len(entries), documents=len(docs), vectors=len(vectors))
        self._docs = docs  # (entry index, config name, kind, row of its dense vector, row of its task vector)
        self.doc_entry = np.fromiter((d[0] for d in docs), dtype=np.int32, count=len(docs))
        self.doc_config = [d[1] for d in docs]
        self.doc_row = np.fromiter((d[3] for d in docs), dtype=np.int32, count=len(docs))
        self.doc_task_row = np.fromiter((d[4] for d in docs), dtype=np.int32, count=len(docs))
        configs = [entries[d[0]].config(d[1]) if entries[d[0]].configs else None for d in docs]
        self.doc_num_rows = np.fromiter((c.num_rows if c else 0 for c in configs), dtype=np.int64, count=len(docs))
        # result groups (one dataset, one kind of config) are runs of consecutive documents
        starts = [i for i in range(len(docs)) if i == 0 or docs[i][0] != docs[i - 1][0] or docs[i][2] != docs[i - 1][2]]
        if len({(docs[i][0], docs[i][2]) for i in starts}) != len(starts):
            raise ValueError("documents of one dataset and kind must be consecutive")
        self.group_start = np.asarray(starts, dtype=np.int64)
        self.group_end = np.append(self.group_start[1:], len(docs))
        sizes = self.group_end - self.group_start
        self._task_per_group = bool(np.all(self.doc_task_row == np.repeat(self.doc_task_row[self.group_start], sizes)))
        # per-group lookups a search would otherwise redo over 100k documents
        self._group_entry = self.doc_entry[self.group_start]
        self._group_row = self.doc_row[self.group_start]
        self._group_task_row = self.doc_task_row[self.group_start]
        row_of = {k: r for r, k in enumerate(row_keys)}
        self.tags = TagMatch(entries, {t: row_of[text_hash(t)] for e in entries for t in tag_texts(e) if text_hash(t) in row_of})
        self.labels = LabelMatch([config_labels(c, samples.get(entries[d[0]].id, {}).get(d[1])) for c, d in zip(configs, docs)])
        self._entry_langs = [{language_name(x).lower() for x in e.languages} for e in entries]
        self._masks: OrderedDict[Filters, np.ndarray] = OrderedDict()
        self._langs: dict[frozenset, np.ndarray] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._tag_rows = np.asarray(sorted({row_of[text_hash(t)] for e in entries for t in tag_texts(e) if text_hash(t) in row_of}),
                                    dtype=np.int64)
        self.ann = ann  # None: exact search (the usual case below EXACT_BELOW vectors)
        self._ann_on = ann is not None
        self._role_allowed: OrderedDict[Filters, dict[str, np.ndarray]] = OrderedDict()

    @staticmethod
    def role_rows(docs: Sequence[tuple]) -> dict[str, np.ndarray]:
        """The matrix rows each dense role searches: dataset descriptions, config task sentences."""
        return {"dense": np.unique(np.asarray([d[3] for d in docs], dtype=np.int64)),
                "task": np.unique(np.asarray([d[4] for d in docs], dtype=np.int64))}

    def use_ann(self, on: bool = True) -> None:
        """Search through the ANN indexes (when the index has them) or exactly over every vector."""
        self._ann_on = bool(on) and self.ann is not None

    def build_ann(self, threads: int = 0) -> AnnSet:
        """Build the ANN indexes in memory for an index that has none (one below EXACT_BELOW vectors:
        the benchmark and the tests compare the two paths on it), and search through them."""
        self.ann = AnnSet.build(self.vectors, self.role_rows(self._docs), self.row_keys, threads=threads)
        self._ann_on = True
        return self.ann

    @property
    def dense_mode(self) -> str:
        return "ann" if self._ann_on else "exact"

    def __len__(self) -> int:
        return len(self._docs)

    # -- building -----------------------------------------------------------------------------
    @staticmethod
    def folder_for(catalog: Catalog, root: Path | None = None) -> Path:
        if root is None:
            from datatune.core.settings import cache_dir

            root = cache_dir("index")
        return store.index_dir(Path(root), catalog.location)

    @staticmethod
    def current_fingerprint(catalog: Catalog, *, encoder: Encoder | None = None, samples: bool | None = None) -> str:
        enc = encoder or Encoder()
        samples = _want_samples(catalog, samples)
        return store.fingerprint(catalog.fingerprint(), catalog.location, enc.model_id,
                                 max_seq_length=enc.max_seq_length, samples=samples)

    @classmethod
    def load_or_build(cls, catalog: Catalog, *, root: Path | None = None, progress=False,
                      samples: bool | None = None, encoder: Encoder | None = None, force: bool = False) -> "RetrievalIndex":
        """The saved index when its inputs haven't changed, else an incremental rebuild (saved).

        samples: read a few rows per config where the catalog has them; by default only when the
        catalog is a local folder (from the Hub that would mean downloading every dataset).
        progress: True (tqdm bars on stderr), False, or a reporter with `bar(stage, total, unit)` (see `_bar`).
        """
        folder = cls.folder_for(catalog, root)
        fp = cls.current_fingerprint(catalog, encoder=encoder, samples=samples)
        meta = store.read_meta(folder)
        if not force and meta is not None and meta.get("fingerprint") == fp:
            try:
                index = cls.load(folder, encoder=encoder)
                index.stats.loaded = True
                return index
            except Exception as e:  # noqa: BLE001 - an unreadable index is rebuilt, whatever broke it
                log.warning("index at %s is unreadable (%s); rebuilding", folder, e)
        return cls.build(catalog, root=root, progress=progress, samples=samples, encoder=encoder)

    @classmethod
    def build(cls, catalog: Catalog, *, root: Path | None = None, progress=False, samples: bool | None = None,
              encoder: Encoder | None = None, save: bool = True) -> "RetrievalIndex":
        """Build the index for a catalog, reusing the saved one's vectors and samples where inputs are unchanged."""
        t0 = time.perf_counter()
        samples = _want_samples(catalog, samples)
        encoder = encoder or Encoder()
        folder = cls.folder_for(catalog, root)
        fp = cls.current_fingerprint(catalog, encoder=encoder, samples=samples)
        prev_vectors, prev_samples = _previous(folder, encoder.model_id)
        entries = list(catalog.entries())
        if not entries:  # bm25s can't index nothing: say what is wrong instead
            raise CatalogError(f"the catalog at {catalog.location} has no dataset cards; add datasets/<owner>__<name>/README.md "
                               "or cards/<name>/README.md to it, or point --catalog at another catalog")

        all_samples: dict[str, dict[str, dict]] = {}
        rows = [e for e in entries if e.has_rows and samples]
        bar = _bar(progress, len(rows), "samples")
        for e in rows:
            h = store.entry_hash(e)
            all_samples[e.id] = prev_samples[h] if h in prev_samples else sample_values(catalog, e)
            bar.update(1)
        bar.close()

        docs: list[Document] = []
        owner: list[int] = []
        for i, e in enumerate(entries):
            mine = documents_for(e, all_samples.get(e.id))
            kinds = list(dict.fromkeys(d.kind for d in mine))
            for d in sorted(mine, key=lambda d: kinds.index(d.kind)):  # a result group's documents together
                docs.append(d)
                owner.append(i)
        lexical = Lexical.build([d.lexical for d in docs])

        text_of = {d.key: d.dense for d in docs}
        for d in docs:
            text_of.setdefault(d.task_key, d.task)
        for e in entries:  # task tags are embedded too (see tags.py)
            for t in tag_texts(e):
                text_of.setdefault(text_hash(t), t)
        keys = list(text_of)
        row_of = {k: r for r, k in enumerate(keys)}
        vectors = np.zeros((len(keys), DIM), dtype=np.float32)
        todo = [k for k in keys if k not in prev_vectors]
        for k in keys:
            if k in prev_vectors:
                vectors[row_of[k]] = prev_vectors[k]
        bar = _bar(progress, len(todo), "embeddings")
        if todo:
            vectors[[row_of[k] for k in todo]] = encoder.encode([text_of[k] for k in todo], progress=bar.update)
        bar.close()

        doc_rows = [(owner[j], d.config, d.kind, row_of[d.key], row_of[d.task_key]) for j, d in enumerate(docs)]
        stats = BuildStats(len(entries), len(docs), len(keys), len(todo), len(keys) - len(todo), 0.0)
        ann = None
        if len(keys) >= _ann.EXACT_BELOW:  # the previous build's ANN indexes are patched, not rebuilt (ann.py)
            t1 = time.perf_counter()
            ann = AnnSet.build(vectors, cls.role_rows(doc_rows), keys, previous=folder / "ann" if prev_vectors else None)
            stats.ann, stats.ann_seconds = ann.stats, time.perf_counter() - t1
        index = cls(entries=entries, docs=doc_rows, lexical=lexical, vectors=vectors, row_keys=keys, fingerprint=fp,
                    location=catalog.location, samples=all_samples, encoder=encoder, stats=stats, ann=ann)
        if save:
            index.save(folder)
        stats.seconds = time.perf_counter() - t0
        return index

    # -- persistence --------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        hashes = {e.id: store.entry_hash(e) for e in self.entries if e.id in self.samples}
        meta = {
            "format": store.FORMAT, "fingerprint": self.fingerprint, "location": self.location,
            "model": self.encoder.model_id, "created": time.time(), "docs": self._docs,
            "row_keys": self.row_keys, "samples": {hashes[k]: v for k, v in self.samples.items()},
            "sample_ids": {hashes[k]: k for k in self.samples},
        }
        parts = {"lexical": self.lexical, **({"ann": self.ann} if self.ann is not None else {})}
        store.save(folder, meta, self.entries, self.vectors, parts)

    @classmethod
    def load(cls, folder: Path, *, encoder: Encoder | None = None) -> "RetrievalIndex":
        meta = store.read_meta(folder)
        if meta is None:
            raise FileNotFoundError(f"no index at {folder}")
        entries = store.read_entries(folder)
        samples = {meta["sample_ids"][h]: v for h, v in meta["samples"].items()}
        docs = [tuple(d) for d in meta["docs"]]
        vectors = store.read_vectors(folder)
        ann = None
        if len(vectors) >= _ann.EXACT_BELOW:  # the saved ANN indexes; built here if missing or stale
            rows = cls.role_rows(docs)
            ann = AnnSet.load(folder / "ann", rows, meta["row_keys"]) or AnnSet.build(vectors, rows, meta["row_keys"])
        return cls(entries=entries, docs=docs, lexical=Lexical.load(folder / "lexical"),
                   vectors=vectors, row_keys=meta["row_keys"], fingerprint=meta["fingerprint"], location=meta["location"],
                   samples=samples, encoder=encoder, ann=ann)

    # -- searching ----------------------------------------------------------------------------
    def mask(self, filters: Filters | None) -> np.ndarray | None:
        """Which documents the filters allow (cached per filter set); None when nothing is filtered."""
        if not filters:
            return None
        if filters not in self._masks:
            self._masks[filters] = document_mask(filters, self.entries, self.doc_entry, self.doc_num_rows)
            if len(self._masks) > 32:
                self._masks.popitem(last=False)
        return self._masks[filters]

    def search(self, query: str, k: int = 10, filters: Filters | None = None, *, labels: Iterable[str] = (),
               languages: Sequence[str] | None = None, weights: Weights | None = None,
               query_vector: np.ndarray | None = None, label_query: str | None = None) -> list[Hit]:
        """The best `k` results for a task description.

        labels: the task's label set, when known (TaskSpec.labels), matched like label words in the query.
        label_query: the words label matching reads, when not the whole query (a definition without
        its example inputs: words of an example are the example's topic, not the task's classes).
        languages: the task's languages (codes or names); by default those the description names, else English.
        """
        w = weights or self.weights
        labels = tuple(labels)
        langs = tuple(language_name(x) for x in languages) if languages is not None else query_languages(query)
        r = self.rankings(query, filters, labels=labels, query_vector=query_vector, depth=w.depth, margin=w.tag_margin,
                          label_query=label_query)
        groups, scores = self.rank(r, w, langs, limit=k)
        terms = query_terms(query, labels)
        return [self._hit(int(g), r, float(s), query, langs, labels, terms) for g, s in zip(groups[:k], scores[:k])]

    def rankings(self, query: str, filters: Filters | None = None, *, labels: tuple[str, ...] = (),
                 query_vector: np.ndarray | None = None, depth: int = 200, margin: float = 0.05,
                 label_query: str | None = None) -> "Rankings":
        """Each ranker's top result groups for a query, before fusion (also what tuning reads)."""
        mask = self.mask(filters)
        if self._ann_on:
            return self._rankings_ann(query, filters, mask, labels=labels, query_vector=query_vector, depth=depth, margin=margin,
                                      label_query=label_query)
        # Two threads: the worker encodes the query (torch, one thread) while this one does the
        # lexical side; then each computes the cosines of half the vectors.
        n = self._scoring.rows
        split = n // 2 if n >= SPLIT_ROWS else 0
        sims = np.empty(n, dtype=np.float32)
        vector: Future = Future()

        def dense_side():
            try:
                qv = self.encoder.encode_query(query) if query_vector is None else query_vector
            except BaseException as e:
                vector.set_exception(e)
                raise
            vector.set_result(qv)
            self._scoring.score(qv, sims, 0, split)

        pending = self._worker().submit(dense_side) if query_vector is None or split else None
        if pending is None:
            dense_side()
        lex = self.lexical.scores(query)
        lab = self.labels.scores(query if label_query is None else label_query, labels)
        if mask is not None:
            lex[~mask] = 0
            lab[~mask] = 0
        lexical = top(self._group_max(lex), depth)
        label = top(self._group_max(lab), depth)
        self._scoring.score(vector.result(), sims, split, n)
        if pending is not None:
            pending.result()
        return self._fuse_lists(sims, mask, lexical, label, lex, lab, depth, margin)

    def _fuse_lists(self, sims, mask, lexical, label, lex, lab, depth, margin) -> "Rankings":
        """The dense rankers' lists from the row cosines (-inf: absent), with the lexical and label lists."""
        starts = self.group_start
        if self._task_per_group:  # the usual case: every config of a kind has the same task sentence
            task = sims[self._group_task_row]
        else:
            if mask is not None:
                task = sims[self.doc_task_row]
                task[~mask] = -np.inf
                task = segment_max(task, starts)
            else:
                task = segment_max(sims, starts, take=self.doc_task_row)
        dense = sims[self._group_row]  # one description per dataset
        tag = self.tags.scores(sims, margin)[self._group_entry]
        if mask is not None:
            allowed = np.logical_or.reduceat(mask, starts)
            dense[~allowed] = -np.inf
            task[~allowed] = -np.inf
            tag[~allowed] = 0
        lists = {
            "lexical": lexical,
            "dense": top(dense, depth, positive=False),
            "task": top(task, depth, positive=False),
            "labels": label,
            "tags": top(tag, depth),
        }
        return Rankings(lists, {"lexical": lex, "labels": lab}, mask)

    def _rankings_ann(self, query, filters, mask, *, labels, query_vector, depth, margin, label_query) -> "Rankings":
        """As `rankings`, the dense roles read from their ANN indexes: each role's candidates are rescored
        exactly and the rest of its rows are absent. Candidates are asked for until they cover more
        than `depth` allowed result groups (so every ranker's list and its cut are those of exact
        search, up to the ANN index's recall); a filter that leaves few rows is searched exactly over them."""
        sims = np.full(self._scoring.rows, -np.inf, dtype=np.float32)
        allowed = self._allowed_rows(filters, mask)
        vector: Future = Future()

        def dense_side():
            try:
                qv = self.encoder.encode_query(query) if query_vector is None else query_vector
            except BaseException as e:
                vector.set_exception(e)
                raise
            vector.set_result(qv)
            self._ann_role(qv, "dense", sims, mask, allowed, depth)

        pending = self._worker().submit(dense_side) if query_vector is None else None
        if pending is None:
            dense_side()
        lex = self.lexical.scores(query)
        lab = self.labels.scores(query if label_query is None else label_query, labels)
        if mask is not None:
            lex[~mask] = 0
            lab[~mask] = 0
        lexical = top(self._group_max(lex), depth)
        label = top(self._group_max(lab), depth)
        qv = vector.result()
        self._ann_role(qv, "task", sims, mask, allowed, depth)
        if self._tag_rows.size:
            sims[self._tag_rows] = self._scoring.score_rows(qv, self._tag_rows)
        if pending is not None:
            pending.result()
        return self._fuse_lists(sims, mask, lexical, label, lex, lab, depth, margin)

    def _ann_role(self, qv: np.ndarray, role: str, sims: np.ndarray, mask, allowed: dict | None, depth: int) -> None:
        graph = self.ann[role]
        if allowed is not None:
            rows = allowed[role]
            want = -(-self.ann_candidates * len(graph) // max(1, rows.size))  # candidates to expect enough allowed ones
            if rows.size <= _ann.EXACT_BELOW // 4 or want >= len(graph) // 4:
                sims[rows] = self._scoring.score_rows(qv, rows)
                return
        else:
            want = self.ann_candidates
        k = max(want, depth + 1)
        while True:
            rows = graph.candidates(qv, k)
            sims[rows] = self._scoring.score_rows(qv, rows)
            if k >= len(graph) or self._covered(sims, role, mask) > depth:
                return
            k *= 4

    def _covered(self, sims: np.ndarray, role: str, mask) -> int:
        """How many (allowed) result groups the role's scored rows reach."""
        if role == "dense":
            hit = np.isfinite(sims[self._group_row])
        elif self._task_per_group:
            hit = np.isfinite(sims[self._group_task_row])
        elif mask is None:
            return segments_reached(sims, self.doc_task_row, self.group_start)
        else:
            hit = np.logical_or.reduceat(np.isfinite(sims[self.doc_task_row]), self.group_start)
        if mask is not None:
            hit &= np.logical_or.reduceat(mask, self.group_start)
        return int(np.count_nonzero(hit))

    def _allowed_rows(self, filters, mask) -> dict[str, np.ndarray] | None:
        """Per dense role, the rows of the documents the filters allow (cached per filter set)."""
        if mask is None:
            return None
        if filters not in self._role_allowed:
            self._role_allowed[filters] = {"dense": np.unique(self.doc_row[mask]).astype(np.int64),
                                           "task": np.unique(self.doc_task_row[mask]).astype(np.int64)}
            if len(self._role_allowed) > 32:
                self._role_allowed.popitem(last=False)
        return self._role_allowed[filters]

    def _group_max(self, scores: np.ndarray) -> np.ndarray:
        """Per result group, the best score of its documents (label match scores nothing for most queries)."""
        if not scores.any():
            return np.zeros(len(self.group_start), dtype=scores.dtype)
        return segment_max(scores, self.group_start)

    def _worker(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrieval-query")
        return self._pool

    def rank(self, r: "Rankings", w: Weights, langs: Sequence[str], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Result groups, best first, and their scores: weighted RRF, language prior, repeats demoted
        (the order is exact for the first `limit`)."""
        cand, fused = rrf([(*r.lists[name], getattr(w, name)) for name in r.lists
                           if getattr(w, name) and r.lists[name][0].size], w.k)
        if w.language and langs:
            fused += w.language * self._language_match(langs)[cand]
        order, scores = demote_repeats(fused, self._group_entry[cand], w.repeat, limit)
        return cand[order], scores

    def _language_match(self, langs: Sequence[str]) -> np.ndarray:
        """Per group, the share of the task's languages its dataset has (0.5 when it states none)."""
        want = frozenset(x.lower() for x in langs)
        if want not in self._langs:
            per_entry = np.fromiter(
                (len(want & have) / len(want) if have else 0.5 for have in self._entry_langs), dtype=np.float32,
                count=len(self._entry_langs))
            self._langs[want] = per_entry[self._group_entry]
            if len(self._langs) > 16:
                self._langs.pop(next(iter(self._langs)))
        return self._langs[want]

    def _hit(self, group: int, r: "Rankings", score: float, query: str, langs, labels, terms=None) -> Hit:
        lo, hi = int(self.group_start[group]), int(self.group_end[group])
        allowed = np.arange(lo, hi) if r.mask is None else lo + np.flatnonzero(r.mask[lo:hi])
        best = int(allowed[0])
        for name in ("lexical", "labels"):  # the group's config: the best lexical match, else label match
            part = r.scores[name][allowed]
            if part.size > 1 and part.max() > part.min():
                best = int(allowed[np.argmax(part)])
                break
        e = self.entries[self.doc_entry[best]]
        config = self.doc_config[best]
        info = e.config(config) if e.configs else None
        names = config_labels(info, self.samples.get(e.id, {}).get(config))
        return Hit(e.id, config, score, why(query, e, info, names, langs, labels, self._entry_langs[self.doc_entry[best]], terms=terms),
                   e, tuple(self.doc_config[i] for i in allowed))


@dataclass
class Rankings:
    lists: dict[str, tuple[np.ndarray, np.ndarray]]  # ranker -> (group ids, ranks)
    scores: dict[str, np.ndarray]  # lexical and label scores per document, to pick a group's config
    mask: np.ndarray | None = None  # documents the filters allow


def _previous(folder: Path, model_id: str) -> tuple[dict[str, np.ndarray], dict[str, dict[str, str]]]:
    """Vectors (by dense-text hash) and samples (by entry hash) of the saved index, for reuse."""
    meta = store.read_meta(folder)
    if meta is None or meta.get("model") != model_id:
        return {}, {}
    try:
        vectors = store.read_vectors(folder)
        keys = meta["row_keys"]
        # samples saved by an older version were bare strings per config: those are read again
        samples = {h: s for h, s in meta["samples"].items() if isinstance(s, dict) and all(isinstance(v, dict) for v in s.values())}
        return {k: vectors[i] for i, k in enumerate(keys)}, samples
    except (OSError, ValueError, KeyError, IndexError):
        return {}, {}


def _want_samples(catalog: Catalog, samples: bool | None) -> bool:
    if samples is not None:
        return samples
    try:
        return Path(catalog.location).is_dir()
    except (TypeError, OSError):
        return False


def _bar(progress, total: int, desc: str):
    """A progress bar for one build step. `progress`: True for a tqdm bar on stderr, False for none, or the
    caller's reporter (anything with datatune's `bar(stage, total, unit)` context manager), so that a quiet
    or JSON caller gets its own kind of progress (none, or JSON events) instead of tqdm's."""
    if hasattr(progress, "bar"):
        return _ReporterBar(progress, f"index {desc}", total)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="doc", disable=not progress or total == 0, leave=False)


class _ReporterBar:
    """A reporter's bar used as tqdm's is here: update(n), close()."""

    def __init__(self, reporter, stage: str, total: int):
        self._cm = reporter.bar(stage, total=total, unit="doc") if total else None
        self._bar = self._cm.__enter__() if self._cm is not None else None

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._cm is not None:
            cm, self._cm, self._bar = self._cm, None, None
            cm.__exit__(None, None, None)
