"""Quality measures of a built dataset (definitions in DESIGN.md, "Quality measures").

- near-duplicate rate (DataTune): a row is unique at threshold T when its highest ROUGE-L F
  against any other row is below T (T = 0.7; 0.8 for code; 0.9 for temporal tasks)
- unique bigrams per example and tokens per example (DataTune, Table 3)
- remote-clique (UniGen): (1/n^2) * sum over i, j of ||e_i - e_j||_2 over sentence embeddings
- self-BLEU (TarGEN): each row scored with BLEU-1..5 against all other rows as references
- label distribution, rows by method and by source

A row's text is its input and output joined by a newline; words are `curate.tokenize` tokens
(case-folded runs of letters and digits, which for ASCII text are ROUGE's own tokens).
Everything `quality_report` returns is JSON-serialisable.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from .curate import Tokens, tokenize
from .records import Row, count_by, table_to_rows
from .task import TaskSpec

DEFAULT_ROUGE_THRESHOLD = 0.7
CODE_ROUGE_THRESHOLD = 0.8
TEMPORAL_ROUGE_THRESHOLD = 0.9

_CODE_TASK = re.compile(r"\b(code|python|javascript|java|sql|bash|programs?|programming|snippets?)\b", re.I)
_TEMPORAL_TASK = re.compile(r"\b(temporal|time|times|schedules?|chronolog\w*|timelines?)\b", re.I)


def row_text(row: Row) -> str:
    return f"{row.input}\n{row.output}"


def rouge_threshold_for(spec: TaskSpec | None) -> float:
    """DataTune's near-duplicate thresholds: 0.8 for code tasks, 0.9 for temporal ones, else 0.7."""
    if spec is None:
        return DEFAULT_ROUGE_THRESHOLD
    if spec.output_kind == "code" or _CODE_TASK.search(spec.description or ""):
        return CODE_ROUGE_THRESHOLD
    if _TEMPORAL_TASK.search(spec.description or ""):
        return TEMPORAL_ROUGE_THRESHOLD
    return DEFAULT_ROUGE_THRESHOLD


LEXICAL_ROWS = 20_000  # rows the lexical measures read, at most (a seeded sample beyond that)


def _sample_indices(n: int, sample: int | None, seed: int) -> np.ndarray:
    if sample is None or n <= sample:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))


# --------------------------------------------------------------------------------------------
# ROUGE-L near-duplicates
# --------------------------------------------------------------------------------------------


def _as_symbol_strings(token_lists: Sequence[list[str]]) -> list[str]:
    """Each token list as a string with one character per token (equal tokens, equal characters),
    so rapidfuzz's bit-parallel LCS on strings is an exact LCS on token sequences."""
    vocab: dict[str, str] = {}
    out = []
    for toks in token_lists:
        chars = []
        for t in toks:
            c = vocab.get(t)
            if c is None:
                i = len(vocab) + 1
                c = vocab[t] = chr(i if i < 0xD800 else i + 0x800)  # skip the surrogate block
            chars.append(c)
        out.append("".join(chars))
    return out


def rouge_l_f(a: str, b: str) -> float:
    """ROUGE-L F1 between two texts (LCS of word tokens; 2*lcs / (len a + len b))."""
    from rapidfuzz.distance import LCSseq

    sa, sb = _as_symbol_strings([tokenize(a), tokenize(b)])
    if not sa or not sb:
        return 0.0
    return 2 * LCSseq.similarity(sa, sb) / (len(sa) + len(sb))


def max_rouge_l(texts: Sequence[str], queries: Sequence[int] | np.ndarray, references: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """For each query index, its highest ROUGE-L F against every reference row other than itself
    (all rows when `references` is None). Exact: the full LCS of every pair (rapidfuzz)."""
    from rapidfuzz import process
    from rapidfuzz.distance import LCSseq

    syms = _as_symbol_strings([tokenize(t) for t in texts])
    q = np.asarray(queries, dtype=np.int64)
    refs = np.arange(len(texts)) if references is None else np.asarray(references, dtype=np.int64)
    lens = np.fromiter(map(len, syms), dtype=np.float64, count=len(syms))
    best = np.zeros(len(q), dtype=np.float64)
    if not len(q) or not len(refs):
        return best
    q_syms = [syms[i] for i in q]
    block = max(1, 4_000_000 // max(1, len(q)))
    for s in range(0, len(refs), block):
        r = refs[s : s + block]
        lcs = process.cdist(q_syms, [syms[i] for i in r], scorer=LCSseq.similarity, dtype=np.int32, workers=-1)
        denom = lens[q][:, None] + lens[r][None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(denom > 0, 2.0 * lcs / denom, 0.0)
        f[q[:, None] == r[None, :]] = -1.0  # not against itself
        np.maximum(best, f.max(axis=1), out=best)
    return best


def near_duplicate_rate(
    texts: Sequence[str],
    *,
    threshold: float = DEFAULT_ROUGE_THRESHOLD,
    sample: int | None = 1000,
    max_pairs: int = 50_000_000,
    seed: int = 0,
) -> dict:
    """Share of rows whose highest ROUGE-L F against any other row is >= `threshold`.

    `sample` rows (all when None) are each compared with every other row, so the estimate is
    unbiased; only when sample x rows exceeds `max_pairs` are the references sampled too (which
    can only lower the rate). The output records what was done.
    """
    n = len(texts)
    out = {"metric": "rouge-l f", "threshold": threshold, "rows": n, "sampled": 0, "references": 0, "rate": None}
    if n < 2:
        return out
    q = _sample_indices(n, sample, seed)
    refs = None
    n_refs = n
    if len(q) * n > max_pairs:
        refs = _sample_indices(n, max(2, max_pairs // len(q)), seed + 1)
        n_refs = len(refs)
    best = max_rouge_l(texts, q, refs)
    out.update(sampled=int(len(q)), references=int(n_refs), rate=round(float((best >= threshold).mean()), 4))
    return out


# --------------------------------------------------------------------------------------------
# lexical diversity
# --------------------------------------------------------------------------------------------


def unique_bigrams_per_example(texts: Sequence[str]) -> float:
    """Distinct word bigrams in the whole set divided by the number of rows."""
    if not texts:
        return 0.0
    tok = Tokens(texts)
    hashes = [h for _, h, _ in tok.ngram_hashes([2])]
    return float(len(np.unique(hashes[0]))) / len(texts) if hashes else 0.0


def tokens_per_example(texts: Sequence[str]) -> float:
    """Mean number of word tokens per row."""
    if not texts:
        return 0.0
    return float(np.mean([len(tokenize(t)) for t in texts]))


def self_bleu(texts: Sequence[str], *, max_n: int = 5, sample: int | None = None, seed: int = 0, epsilon: float = 0.1) -> dict:
    """Self-BLEU: each row's sentence BLEU-n (n = 1..max_n, uniform weights) with every other row
    as a reference, averaged over rows; "mean" averages BLEU-1..max_n.

    Matches nltk's `sentence_bleu(others, row, weights=(1/n,)*n,
    smoothing_function=SmoothingFunction(epsilon).method1)` on `tokenize`d rows, computed for all
    rows at once from per-n-gram top-2 counts (the clip against all other rows), so no sampling is
    needed; `sample` limits the rows scored (references stay all rows).
    """
    n = len(texts)
    out: dict = {f"bleu{k}": None for k in range(1, max_n + 1)}
    out.update(mean=None, rows=n, hypotheses=0)
    if n < 2:
        return out
    tok = Tokens(texts)
    lengths = tok.lengths
    hyp = _sample_indices(n, sample, seed)

    # log precision per order, per row
    log_p = np.zeros((max_n, n), dtype=np.float64)
    unigram_matches = np.zeros(n, dtype=np.float64)
    for k, h, rr in tok.ngram_hashes(range(1, max_n + 1)):
        clipped = np.zeros(n, dtype=np.float64)
        if len(h):
            # (row, gram) pairs with their counts
            order = np.lexsort((h, rr))
            hs, rs = h[order], rr[order]
            new = np.ones(len(hs), dtype=bool)
            new[1:] = (hs[1:] != hs[:-1]) | (rs[1:] != rs[:-1])
            starts = np.nonzero(new)[0]
            prow, pgram = rs[starts], hs[starts]
            pcount = np.diff(np.append(starts, len(hs)))
            # per gram: the largest count, its row, and the second largest count
            o2 = np.lexsort((-pcount, pgram))
            g_sorted, c_sorted, r_sorted = pgram[o2], pcount[o2], prow[o2]
            gnew = np.ones(len(g_sorted), dtype=bool)
            gnew[1:] = g_sorted[1:] != g_sorted[:-1]
            gid = np.cumsum(gnew) - 1
            gstart = np.nonzero(gnew)[0]
            gend = np.append(gstart[1:], len(g_sorted))
            max1, arg1 = c_sorted[gstart], r_sorted[gstart]
            max2 = np.where(gstart + 1 < gend, c_sorted[np.minimum(gstart + 1, len(c_sorted) - 1)], 0)
            ref_max = np.where(r_sorted == arg1[gid], max2[gid], max1[gid])
            clipped = np.bincount(r_sorted, weights=np.minimum(c_sorted, ref_max), minlength=n)
        total = np.maximum(lengths - k + 1, 0)
        denom = np.maximum(total, 1).astype(np.float64)
        num = np.where(clipped > 0, clipped, epsilon)
        log_p[k - 1] = np.log(num / denom)
        if k == 1:
            unigram_matches = clipped

    # brevity penalty against the closest other row's length (ties: the shorter)
    closest = _closest_other_lengths(lengths)
    c = lengths.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(c > closest, 1.0, np.where(c == 0, 0.0, np.exp(1 - closest / np.where(c == 0, 1, c))))
    scores = []
    for k in range(1, max_n + 1):
        bleu = bp * np.exp(log_p[:k].mean(axis=0))
        bleu[unigram_matches == 0] = 0.0
        value = float(bleu[hyp].mean())
        out[f"bleu{k}"] = round(value, 4)
        scores.append(value)
    out["mean"] = round(float(np.mean(scores)), 4)
    out["hypotheses"] = int(len(hyp))
    return out


def _closest_other_lengths(lengths: np.ndarray) -> np.ndarray:
    """For each row, the length among the other rows closest to its own (ties: the shorter)."""
    values, counts = np.unique(lengths, return_counts=True)
    out = np.empty(len(lengths), dtype=np.float64)
    for i, L in enumerate(lengths.tolist()):
        j = int(np.searchsorted(values, L))
        if counts[j] > 1:  # another row of the same length
            out[i] = L
            continue
        below = values[j - 1] if j > 0 else None
        above = values[j + 1] if j + 1 < len(values) else None
        if below is None:
            out[i] = above
        elif above is None:
            out[i] = below
        else:
            out[i] = below if L - below <= above - L else above
    return out


# --------------------------------------------------------------------------------------------
# embedding diversity
# --------------------------------------------------------------------------------------------


def remote_clique(embeddings: np.ndarray, *, block: int = 2048) -> float:
    """(1/n^2) * sum over all i, j of ||e_i - e_j||_2 (UniGen), by blocks of matrix products."""
    e = np.asarray(embeddings, dtype=np.float64)
    n = len(e)
    if n == 0:
        return 0.0
    sq = (e * e).sum(axis=1)
    total = 0.0
    for s in range(0, n, block):
        eb = e[s : s + block]
        d2 = sq[s : s + block, None] + sq[None, :] - 2.0 * (eb @ e.T)
        np.maximum(d2, 0.0, out=d2)
        # exact zeros on the diagonal (rounding would leave tiny positives)
        idx = np.arange(len(eb))
        d2[idx, s + idx] = 0.0
        total += float(np.sqrt(d2).sum())
    return total / (n * n)


# --------------------------------------------------------------------------------------------
# distributions
# --------------------------------------------------------------------------------------------


Rows = "Sequence[Row] | pa.Table"  # the distributions read a table's columns without making rows


def _n(rows) -> int:
    return rows.num_rows if isinstance(rows, pa.Table) else len(rows)


def _take(rows, idx) -> list[Row]:
    if isinstance(rows, pa.Table):
        return table_to_rows(rows.take(pa.array(np.asarray(idx, dtype=np.int64))))
    return [rows[i] for i in idx]


def _count(rows, fields: list[str]) -> Counter:
    """Rows per value of `fields` (a tuple of values when several), in order of first appearance."""
    if isinstance(rows, pa.Table):
        pairs = count_by(rows, fields)
        return Counter({(k if len(fields) > 1 else k[0]): n for k, n in pairs})
    if len(fields) == 1:
        return Counter(getattr(r, fields[0]) for r in rows)
    return Counter(tuple(getattr(r, f) for f in fields) for r in rows)


def rows_by_method(rows: Rows) -> dict[str, int]:
    return dict(_count(rows, ["method"]).most_common())


def source_name(row: Row) -> str:
    return row.source_dataset or ("synthetic" if row.method == "synthetic" else "(unknown)")


def rows_by_source(rows: Rows) -> dict[str, int]:
    """Rows per source dataset; synthetic rows (no source) under "synthetic"."""
    out: Counter = Counter()
    for (d, m), n in _count(rows, ["source_dataset", "method"]).items():
        out[source_name(Row("", "", source_dataset=d, method=m))] += n
    return dict(out.most_common())


def rows_by_source_config(rows: Rows) -> list[dict]:
    counts = _count(rows, ["source_dataset", "source_config", "source_split"])
    return [{"dataset": d, "config": c, "split": s, "rows": n} for (d, c, s), n in counts.most_common() if d]


def label_distribution(rows: Rows, spec: TaskSpec | None = None, *, top: int = 10) -> dict:
    """Counts per label (every label of a classification spec, zeros included, plus "other"),
    shares, and how far the set is from balanced; for other tasks the most common outputs."""
    n = _n(rows)
    counts = _count(rows, ["output"])
    if spec is not None and spec.is_classification:
        per = {label: counts.get(label, 0) for label in spec.labels}
        other = n - sum(per.values())
        k = len(per)
        shares = {label: (round(c / n, 4) if n else 0.0) for label, c in per.items()}
        present = [c for c in per.values()]
        return {
            "kind": "labels",
            "counts": per,
            "other": other,
            "shares": shares,
            "max_share_deviation": round(max(abs(c / n - 1 / k) for c in present), 4) if n and k else None,
            "min_max_ratio": round(min(present) / max(present), 4) if present and max(present) else None,
            "missing": [label for label, c in per.items() if c == 0],
        }
    return {
        "kind": "outputs",
        "distinct": len(counts),
        "top": dict(counts.most_common(top)),
    }


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------

METHOD_COLORS = {"mapped": "#4C72B0", "llm": "#55A868", "synthetic": "#DD8452"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _short(label: str, width: int = 24) -> str:
    label = " ".join(str(label).split())
    return label if len(label) <= width else label[: width - 1] + "…"


def plot_label_distribution(rows: Rows, path: str | Path, *, labels: Sequence[str] | None = None, top: int = 20, title: str | None = None) -> Path:
    """Bar chart of rows per label (the `labels` given, else the `top` most common outputs),
    stacked by method (mapped / llm / synthetic). Writes a PNG; returns its path."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = _count(rows, ["output"])
    cats = list(labels) if labels else [o for o, _ in counts.most_common(top)]
    present = set(_count(rows, ["method"]))
    methods = [m for m in ("mapped", "llm", "synthetic") if m in present]
    methods += sorted(present - set(methods))
    by = _count(rows, ["output", "method"])
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(cats) + 2.5), 4.2), dpi=120)
    x = np.arange(len(cats))
    bottom = np.zeros(len(cats))
    for m in methods:
        vals = np.array([by.get((c, m), 0) for c in cats], dtype=float)
        ax.bar(x, vals, bottom=bottom, label=f"{m} ({int(vals.sum())})", color=METHOD_COLORS.get(m), width=0.7)
        bottom += vals
    for xi, total in zip(x, bottom):
        ax.text(xi, total, f"{int(total)}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x)
    rotate = len(cats) > 6 or any(len(str(c)) > 10 for c in cats)
    ax.set_xticklabels([_short(c) for c in cats], rotation=40 if rotate else 0, ha="right" if rotate else "center", fontsize=9)
    ax.set_ylabel("rows")
    shown = int(bottom.sum())
    if title is None:
        title = f"Label distribution ({_n(rows)} rows)" if shown == _n(rows) else f"Label distribution ({shown} of {_n(rows)} rows shown)"
    ax.set_title(title)
    ax.set_ylim(0, max(1.0, bottom.max() if len(bottom) else 1.0) * 1.12)
    ax.spines[["top", "right"]].set_visible(False)
    if methods:
        ax.legend(frameon=False, fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def _one_blas_thread():
    """LAPACK on one thread: multi-threaded OpenBLAS SVD was 100x slower on a busy 2-core machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn, a sentence-transformers dependency
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def pca_2d(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n x 2 coordinates, share of variance of each axis) by SVD of the centred matrix."""
    x = np.asarray(embeddings, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    if len(x) < 2:
        return np.zeros((len(x), 2)), np.zeros(2)
    with _one_blas_thread():
        _, s, vt = np.linalg.svd(x, full_matrices=False)
    coords = x @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((len(x), 2 - coords.shape[1]))])
    var = s**2
    share = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    return coords, np.pad(share, (0, 2 - len(share)))


def plot_embedding_projection(rows: Sequence[Row], embeddings: np.ndarray, path: str | Path, *, max_sources: int = 8, title: str | None = None) -> Path:
    """2-D PCA of the rows' embeddings: one colour per source dataset (the largest `max_sources`,
    the rest grey), synthetic rows as orange crosses. Writes a PNG; returns its path."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(rows) != len(embeddings):
        raise ValueError(f"{len(rows)} rows but {len(embeddings)} embeddings")
    coords, share = pca_2d(embeddings)
    names = np.array([source_name(r) for r in rows], dtype=object)
    synthetic = np.array([r.method == "synthetic" for r in rows], dtype=bool)
    sources = [s for s, _ in Counter(names[~synthetic].tolist()).most_common()]
    top, rest = sources[:max_sources], sources[max_sources:]
    cmap = plt.get_cmap("tab10")
    palette = [cmap(i) for i in (0, 2, 4, 5, 6, 8, 9, 3, 7, 1)]  # orange (1) is kept for synthetic
    fig, ax = plt.subplots(figsize=(7.5, 5.6), dpi=120)
    size = 14 if len(rows) <= 2000 else 6
    for i, s in enumerate(top):
        m = (names == s) & ~synthetic
        ax.scatter(coords[m, 0], coords[m, 1], s=size, alpha=0.6, color=palette[i % len(palette)], label=f"{_short(s, 44)} ({int(m.sum())})", linewidths=0)
    if rest:
        m = np.isin(names, rest) & ~synthetic
        ax.scatter(coords[m, 0], coords[m, 1], s=size, alpha=0.5, color="#9E9E9E", label=f"{len(rest)} other sources ({int(m.sum())})", linewidths=0)
    if synthetic.any():
        ax.scatter(coords[synthetic, 0], coords[synthetic, 1], s=size * 1.8, alpha=0.8, color="#E8710A", marker="x", label=f"synthetic ({int(synthetic.sum())})", linewidths=1.0)
    ax.set_xlabel(f"PC1 ({share[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({share[1]:.0%} of variance)")
    ax.set_title(title or f"Embedding projection ({len(rows)} rows)")
    ax.spines[["top", "right"]].set_visible(False)
    if len(rows):
        ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=1.5)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------


def _lexical(texts: Sequence[str], threshold: float, sample: int | None, seed: int) -> dict:
    return {
        "near_duplicates": near_duplicate_rate(texts, threshold=threshold, sample=sample, seed=seed),
        "unique_bigrams_per_example": round(unique_bigrams_per_example(texts), 4),
        "tokens_per_example": round(tokens_per_example(texts), 4),
        "self_bleu": self_bleu(texts, sample=sample, seed=seed),
    }


def quality_report(
    rows: Rows,
    spec: TaskSpec | None = None,
    *,
    embedder=None,
    embeddings: np.ndarray | None = None,
    drops: dict[str, int] | None = None,
    plots_dir: str | Path | None = None,
    sample: int | None = 1000,
    embed_sample: int | None = 1000,
    rouge_threshold: float | None = None,
    by_method: bool = True,
    seed: int = 0,
    lexical_rows: int | None = LEXICAL_ROWS,
    take_rows=None,
) -> dict:
    """Every quality measure of `rows`, JSON-serialisable.

    `embedder` (anything with `encode(texts)`) or `embeddings` (aligned with `rows`) enables
    remote-clique and the projection plot; `embed_sample` rows are embedded (all when None).
    `sample` bounds the rows scored by the O(n^2) measures (near-duplicates, self-BLEU), and
    `lexical_rows` the set they are measured in (its references, bigram and token counts): a
    2M-row build spent 90% of its time here, on estimates a 20,000-row sample gives as well.
    With `plots_dir`, writes label_distribution.png and embedding_projection.png there and
    lists them under "plots" (file names relative to `plots_dir`). `by_method`: also the lexical
    measures for each method (mapped / llm / synthetic) separately when there is more than one.
    `take_rows(positions) -> pa.Table`: when given, `rows` may hold only the counted columns (output,
    method, source_*) and the sampled rows are gathered through it (a large build's output is never
    one table in memory).
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    if not isinstance(rows, pa.Table):
        rows = list(rows)
    n = _n(rows)
    threshold = rouge_threshold if rouge_threshold is not None else rouge_threshold_for(spec)
    report: dict = {
        "rows": n,
        "text": "input + newline + output; word tokens",
        "by_method": rows_by_method(rows),
        "by_source": rows_by_source(rows),
        "by_source_config": rows_by_source_config(rows),
        "label_distribution": label_distribution(rows, spec),
        "drops": dict(drops or {}),
    }
    t0 = time.perf_counter()
    # the lexical measures read every row of their set (references, n-gram counts): past `lexical_rows`
    # rows they are measured on a seeded sample of that many, and the report says so
    lex = _sample_indices(n, lexical_rows, seed + 2)
    if take_rows is not None:  # `rows` holds the counted columns; whole rows are gathered only for the samples
        def take(idx):
            return table_to_rows(take_rows(np.asarray(idx, dtype=np.int64)))

        lex_rows = take(lex)
    else:
        def take(idx):
            return _take(rows, idx)

        lex_rows = take(lex) if len(lex) < n else (table_to_rows(rows) if isinstance(rows, pa.Table) else rows)
    lex_texts = [row_text(r) for r in lex_rows]
    report.update(_lexical(lex_texts, threshold, sample, seed))
    if len(lex_texts) < n:
        report["lexical_sample"] = {"rows": len(lex_texts), "of": n, "seed": seed + 2}
    timings["lexical"] = round(time.perf_counter() - t0, 3)

    methods = report["by_method"]
    if by_method and len(methods) > 1:
        t0 = time.perf_counter()
        groups = {}
        for m in methods:
            sub = [t for t, r in zip(lex_texts, lex_rows) if r.method == m]
            g = _lexical(sub, threshold, sample, seed)
            groups[m] = {
                "rows": len(sub),
                "near_duplicate_rate": g["near_duplicates"]["rate"],
                "unique_bigrams_per_example": g["unique_bigrams_per_example"],
                "tokens_per_example": g["tokens_per_example"],
                "self_bleu": g["self_bleu"]["mean"],
            }
        report["methods"] = groups
        timings["by_method"] = round(time.perf_counter() - t0, 3)

    emb = None
    idx = _sample_indices(n, embed_sample, seed)
    embedded = lex_rows if len(lex_rows) == n else None  # the rows themselves, when they are all at hand
    sub_rows = [embedded[i] for i in idx] if embedded is not None else take(idx)
    if embeddings is not None:
        embeddings = np.asarray(embeddings)
        if len(embeddings) != n:
            raise ValueError(f"{n} rows but {len(embeddings)} embeddings")
        emb = embeddings[idx]
    elif embedder is not None and n:
        t0 = time.perf_counter()
        emb = np.asarray(embedder.encode([row_text(r) for r in sub_rows]), dtype=np.float32)
        timings["embed"] = round(time.perf_counter() - t0, 3)
    if emb is not None and len(emb):
        t0 = time.perf_counter()
        report["remote_clique"] = {"value": round(remote_clique(emb), 4), "rows": int(len(emb))}
        timings["remote_clique"] = round(time.perf_counter() - t0, 3)
    else:
        report["remote_clique"] = None

    if plots_dir is not None:
        t0 = time.perf_counter()
        plots_dir = Path(plots_dir)
        plots = {}
        labels = spec.labels if spec is not None and spec.is_classification else None
        plot_label_distribution(rows, plots_dir / "label_distribution.png", labels=labels)
        plots["label_distribution"] = "label_distribution.png"
        if emb is not None and len(emb):
            title = f"Embedding projection ({len(sub_rows)} of {n} rows)" if len(sub_rows) < n else None
            plot_embedding_projection(sub_rows, emb, plots_dir / "embedding_projection.png", title=title)
            plots["embedding_projection"] = "embedding_projection.png"
        report["plots"] = plots
        timings["plots"] = round(time.perf_counter() - t0, 3)
    timings["total"] = round(time.perf_counter() - t_start, 3)
    report["seconds"] = timings
    return report
