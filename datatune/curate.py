"""Curation: filters over rows, every drop counted by a stable reason name.

The filters live in `datatune.curation` (one module per job: text, filters, language, contamination,
near_duplicates); this module runs them (`curate`) and re-exports every name it always had.

Each filter is a pure function `filter_x(rows, ...) -> (kept, Counter({reason: n}))` over a keep mask
(`*_mask`): it keeps the order of the rows, keeps the first of a group of duplicates, and can run
alone. `curate()` composes the masks, cheap first, so its result knows each kept row's input position
(`CurateResult.kept`):

    empty -> too_long -> label_outside_set -> exact_duplicate -> wrong_language -> contaminated
          -> near_duplicate -> embedding_duplicate

Reasons (stable names, written into the card):
  empty                inputs or outputs that are blank
  too_long             an input or output over the character limits
  label_outside_set    classification rows whose output is not one of the task's labels
  exact_duplicate      same input and output after normalising case, spacing and Unicode forms
  wrong_language       input (and free-text output) in a language the task does not ask for
  contaminated         input shares a word n-gram with the user's examples or an eval text
  near_duplicate       input with word-shingle Jaccard >= threshold to a kept row (datasketch MinHash LSH)
  embedding_duplicate  input within a cosine distance of a kept row (UniGen group checking)

Because filters keep the first occurrence and compare against kept rows only, curating
`kept + new_rows` keeps every already-curated row and drops the new rows that duplicate them;
a second pass over curated rows removes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

import numpy as np

from .curation.contamination import contaminated, filter_contaminated
from .curation.filters import (
    Filtered,
    canonical_labels,
    empty_mask,
    exact_duplicates_mask,
    filter_empty,
    filter_exact_duplicates,
    filter_labels,
    filter_too_long,
    labels_mask,
    too_long_mask,
)
from .curation.language import (
    LANGUAGE_NAMES,
    LANGUAGE_SCRIPT,
    STOPWORDS,
    detect_language,
    filter_language,
    language_mask,
    language_matches,
    needs_language_check,
    task_languages,
)
from .curation.near_duplicates import (
    filter_embedding_duplicates,
    filter_near_duplicates,
    greedy_embedding_keep,
    lsh_params,
    minhash_signatures,
    near_duplicates_keep,
)
from .curation.text import Tokens, duplicate_keys, normalize_text, tokenize
from .engines.local import LocalEngine
from .records import Row
from .task import TaskSpec

BLOCK = 100_000  # rows per Ray task when curation's per-row keys and tokens are made on Ray

__all__ = [
    "REASONS", "CurateConfig", "CurateResult", "Filtered", "curate",
    "normalize_text", "tokenize",
    "filter_empty", "filter_too_long", "filter_labels", "filter_exact_duplicates",
    "LANGUAGE_NAMES", "LANGUAGE_SCRIPT", "STOPWORDS", "detect_language", "language_matches", "task_languages",
    "needs_language_check", "filter_language",
    "filter_contaminated",
    "lsh_params", "minhash_signatures", "filter_near_duplicates",
    "greedy_embedding_keep", "filter_embedding_duplicates",
]

REASONS = (
    "empty",
    "too_long",
    "label_outside_set",
    "exact_duplicate",
    "wrong_language",
    "contaminated",
    "near_duplicate",
    "embedding_duplicate",
)

@dataclass(frozen=True)
class CurateConfig:
    max_input_chars: int = 10_000
    max_output_chars: int = 5_000
    canonicalize_labels: bool = True  # "Positive " -> "positive" when the label set has "positive"
    # wrong_language: "auto" checks when the task's language is not English or its description names
    # a language; "always" also checks English tasks; "never" skips the filter.
    language_check: Literal["auto", "always", "never"] = "auto"
    min_language_letters: int = 20  # shorter texts are not judged
    # contaminated: word n-grams shared with the user's examples or eval texts
    contamination: bool = True
    contamination_n: int = 13  # n-gram size when both texts have >= n words (GPT-3's 13-grams)
    contamination_min_n: int = 8  # shorter pairs use n = min(len(a), len(b)); below min_n, only equal texts
    # near_duplicate: MinHash LSH over word shingles of the input, checked by exact Jaccard
    near_duplicates: bool = True
    near_duplicate_threshold: float = 0.8
    shingle_size: int = 3
    num_perm: int = 64  # permutations available to the LSH bands
    lsh_recall: float = 0.99  # banding chosen so a pair at the threshold is a candidate with this probability
    # embedding_duplicate: runs only when curate() is given an embedder
    embedding_duplicates: bool = True
    embedding_max_distance: float = 0.1  # cosine distance: drop when 1 - cos <= this
    embedding_batch: int = 1024


@dataclass
class CurateResult:
    rows: list[Row]
    drops: dict[str, int]  # every filter that ran, in order, with its count (0 included)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per filter
    # unit-length embeddings of the kept rows' inputs, when the embedding filter ran (reusable by quality)
    embeddings: np.ndarray | None = field(default=None, repr=False, compare=False)
    # for each kept row, its position in the rows given to curate() (ascending): which input rows survived,
    # whatever a filter rewrote (a canonicalized label is a new Row)
    kept: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False, compare=False)

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    def survivors_from(self, start: int) -> list[Row]:
        """The kept rows that were given at position `start` or later (rows appended to already-curated ones)."""
        first = int(np.searchsorted(self.kept, start))
        return self.rows[first:]


# --------------------------------------------------------------------------------------------
# all together
# --------------------------------------------------------------------------------------------


def curate(
    rows: Sequence[Row],
    spec: TaskSpec,
    *,
    eval_texts: Iterable[str] = (),
    embedder=None,
    config: CurateConfig = CurateConfig(),
    engine=None,
) -> CurateResult:
    """Run every filter that applies, cheap first; count each drop by reason.

    `eval_texts`: inputs of an evaluation set (`--eval-file`); with the inputs of `spec.examples`
    they are the references of the contamination check. `embedder`: enables group checking.
    `engine` (engines/: local by default) makes the per-row keys and tokens, BLOCK rows at a time on Ray.
    Filters are composed as keep masks, so the result knows each kept row's input position.
    """
    cfg = config
    drops: dict[str, int] = {}
    timings: dict[str, float] = {}
    current = list(rows)
    positions = np.arange(len(current), dtype=np.int64)  # input position of each row in `current`

    def run(name: str, mask_of, *args, **kwargs) -> None:
        nonlocal current, positions
        t0 = time.perf_counter()
        keep = np.asarray(mask_of(current, *args, **kwargs), dtype=bool)
        current = [r for r, k in zip(current, keep) if k]
        positions = positions[keep]
        timings[name] = round(time.perf_counter() - t0, 4)
        drops[name] = drops.get(name, 0) + int((~keep).sum())

    run("empty", empty_mask)
    run("too_long", too_long_mask, max_input_chars=cfg.max_input_chars, max_output_chars=cfg.max_output_chars)
    if spec.is_classification:
        run("label_outside_set", labels_mask, spec.labels)
        if cfg.canonicalize_labels:
            current = canonical_labels(current, spec.labels)
    engine = engine or LocalEngine()

    def per_row(fn, items):
        return engine.map_blocks(fn, items, block=BLOCK)

    run("exact_duplicate", lambda rs: exact_duplicates_mask(rs, keys=np.concatenate(per_row(duplicate_keys, [(r.input, r.output) for r in rs]))))
    if cfg.language_check == "always" or (cfg.language_check == "auto" and needs_language_check(spec)):
        run("wrong_language", language_mask, task_languages(spec), check_output=spec.output_kind == "text",
            min_letters=cfg.min_language_letters)
    # contamination and near-duplicates read the same word tokens: tokenise the inputs once
    tokens: Tokens | None = None
    tokens_at = positions

    def tokens_now() -> Tokens:
        nonlocal tokens, tokens_at
        if tokens is None:
            tokens, tokens_at = Tokens.concat(per_row(Tokens, [r.input for r in current])), positions
        elif len(tokens_at) != len(positions):  # rows dropped since: the same rows' tokens, by position
            tokens, tokens_at = tokens.subset(np.searchsorted(tokens_at, positions).tolist()), positions
        return tokens

    if cfg.contamination:
        refs = [e.input for e in spec.examples] + [t for t in eval_texts if t]
        if refs:
            t0 = time.perf_counter()
            tok = tokens_now()
            run("contaminated", lambda rs: ~contaminated(rs, refs, n=cfg.contamination_n, min_n=cfg.contamination_min_n, _tokens=tok))
            timings["contaminated"] = round(time.perf_counter() - t0, 4)
    if cfg.near_duplicates:
        t0 = time.perf_counter()
        tok = tokens_now()
        run("near_duplicate", near_duplicates_keep, threshold=cfg.near_duplicate_threshold, shingle_size=cfg.shingle_size,
            num_perm=cfg.num_perm, recall=cfg.lsh_recall, _tokens=tok)
        timings["near_duplicate"] = round(time.perf_counter() - t0, 4)
    kept_embeddings = None
    if cfg.embedding_duplicates and embedder is not None:
        t0 = time.perf_counter()
        if current:
            emb = np.asarray(embedder.encode([r.input for r in current]), dtype=np.float32)
            keep = greedy_embedding_keep(emb, max_distance=cfg.embedding_max_distance, batch_size=cfg.embedding_batch)
            run("embedding_duplicate", lambda rs: keep)
            kept_embeddings = emb[keep]
        else:
            drops["embedding_duplicate"] = 0
        timings["embedding_duplicate"] = round(time.perf_counter() - t0, 4)
    return CurateResult(rows=current, drops=drops, timings=timings, embeddings=kept_embeddings, kept=positions)
