"""Curation: filters over rows, every drop counted by a stable reason name.

Each filter is a pure function `filter_x(rows, ...) -> (kept, Counter({reason: n}))`: it keeps the
order of the rows, keeps the first of a group of duplicates, and can run alone. `curate()` runs them
cheap first:

    empty -> too_long -> label_outside_set -> exact_duplicate -> wrong_language -> contaminated
          -> near_duplicate -> embedding_duplicate

Reasons (stable names, written into the card):
  empty                inputs or outputs that are blank
  too_long             an input or output over the character limits
  label_outside_set    classification rows whose output is not one of the task's labels
  exact_duplicate      same input and output after normalising case, spacing and Unicode forms
  wrong_language       input (and free-text output) in a language the task does not ask for
  contaminated         input shares a word n-gram with the user's examples or an eval text
  near_duplicate       input with word-shingle Jaccard >= threshold to a kept row (MinHash LSH)
  embedding_duplicate  input within a cosine distance of a kept row (UniGen group checking)

Because filters keep the first occurrence and compare against kept rows only, curating
`kept + new_rows` keeps every already-curated row and drops the new rows that duplicate them;
a second pass over curated rows removes nothing.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Iterable, Literal, Sequence

import numpy as np

from retrieval_index.languages import LANGUAGES as LANGUAGE_OF_CODE

from .records import Row
from .task import TaskSpec

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

Filtered = tuple[list[Row], Counter]


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

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())


# --------------------------------------------------------------------------------------------
# text helpers
# --------------------------------------------------------------------------------------------

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(r"[^\W_]+")
# CJK characters (no spaces between words) are one token each
_TOKEN_CJK = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
_HAS_CJK = re.compile(rf"[{_CJK}]")


def normalize_text(text: str) -> str:
    """Case-folded, whitespace collapsed, NFKC for non-ASCII text: the key for exact duplicates."""
    text = text or ""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.casefold().split())


def tokenize(text: str) -> list[str]:
    """Case-folded word tokens: runs of letters and digits (punctuation dropped), CJK per character."""
    text = (text or "").casefold()
    if not text.isascii() and _HAS_CJK.search(text):
        return _TOKEN_CJK.findall(text)
    return _WORD.findall(text)


_MASK64 = (1 << 64) - 1
_POLY = 0x9E3779B97F4A7C15  # odd multiplier of the rolling n-gram hash


def _token_hash(tok: str) -> int:
    return int.from_bytes(hashlib.blake2b(tok.encode("utf-8"), digest_size=8).digest(), "little")


class _Tokens:
    """All texts' tokens as one flat array of stable 64-bit token hashes plus row offsets."""

    __slots__ = ("flat", "offsets", "lengths")

    def __init__(self, texts: Sequence[str] | None = None):
        if texts is None:
            return
        lists = [tokenize(t) for t in texts]
        lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        flat_tokens = [t for x in lists for t in x]
        vocab = {t: _token_hash(t) for t in dict.fromkeys(flat_tokens)}
        flat = np.fromiter(map(vocab.__getitem__, flat_tokens), dtype=np.uint64, count=len(flat_tokens))
        self._set(flat, lengths)

    def _set(self, flat: np.ndarray, lengths: np.ndarray) -> None:
        self.flat = flat
        self.lengths = lengths
        self.offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.offsets[1:])

    def subset(self, idx: Sequence[int] | np.ndarray) -> "_Tokens":
        """The rows at `idx`, in that order."""
        idx = np.asarray(idx, dtype=np.int64)
        lengths = self.lengths[idx]
        out = _Tokens()
        out._set(np.zeros(0, dtype=np.uint64), lengths)
        total = int(lengths.sum())
        if total:
            # position p of the new flat array comes from offsets[idx[row]] + (p - new_offsets[row])
            rows = np.repeat(np.arange(len(idx)), lengths)
            src = self.offsets[idx][rows] + (np.arange(total, dtype=np.int64) - out.offsets[:-1][rows])
            out.flat = self.flat[src]
        return out

    def __len__(self) -> int:
        return len(self.lengths)

    def row_of_position(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.lengths)), self.lengths)

    def ngram_hashes(self, sizes: Iterable[int]):
        """Yield (size, hashes, rows): the hash of every window of `size` tokens inside a row.

        The hash of tokens t0..t(k-1) is sum(h(t_i) * POLY**i) mod 2**64, the same for a text
        whichever table it is in, so windows from different tables compare by value.
        """
        wanted = sorted(set(s for s in sizes if s >= 1))
        if not wanted:
            return
        flat, n = self.flat, len(self.flat)
        acc = flat.copy()
        rows = self.row_of_position()
        ends = self.offsets[1:][rows] if n else np.zeros(0, dtype=np.int64)
        pos = np.arange(n, dtype=np.int64)
        power = 1
        with np.errstate(over="ignore"):
            for k in range(1, wanted[-1] + 1):
                if k > 1:
                    power = (power * _POLY) & _MASK64
                    if k <= n:
                        acc[: n - k + 1] += flat[k - 1 :] * np.uint64(power)
                if k in wanted:
                    valid = pos + k <= ends
                    yield k, acc[valid], rows[valid]

    def whole_hashes(self) -> np.ndarray:
        """One hash per row over all of its tokens (0-token rows hash to 0)."""
        out = np.zeros(len(self.lengths), dtype=np.uint64)
        flat = self.flat
        # weights POLY**i for positions inside each row
        max_len = int(self.lengths.max()) if len(self.lengths) else 0
        powers = np.empty(max_len, dtype=np.uint64)
        p = 1
        for i in range(max_len):
            powers[i] = p
            p = (p * _POLY) & _MASK64
        rows = self.row_of_position()
        within = np.arange(len(flat), dtype=np.int64) - self.offsets[:-1][rows]
        with np.errstate(over="ignore"):
            terms = flat * powers[within]
            nonempty = self.lengths > 0
            if len(flat):
                sums = np.add.reduceat(terms, self.offsets[:-1][nonempty])
                out[nonempty] = sums
        return out


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        x = x.astype(np.uint64, copy=True)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


# --------------------------------------------------------------------------------------------
# cheap filters
# --------------------------------------------------------------------------------------------


def filter_empty(rows: Sequence[Row]) -> Filtered:
    kept = [r for r in rows if (r.input or "").strip() and (r.output or "").strip()]
    return kept, Counter({"empty": len(rows) - len(kept)})


def filter_too_long(rows: Sequence[Row], *, max_input_chars: int = 10_000, max_output_chars: int = 5_000) -> Filtered:
    kept = [r for r in rows if len(r.input or "") <= max_input_chars and len(r.output or "") <= max_output_chars]
    return kept, Counter({"too_long": len(rows) - len(kept)})


_LABEL_STRIP = " \t\r\n\"'`.()[]{}:;,"


def _label_key(text: str) -> str:
    return normalize_text(text).strip(_LABEL_STRIP)


def filter_labels(rows: Sequence[Row], labels: Sequence[str], *, canonicalize: bool = True) -> Filtered:
    """Drop rows whose output is not one of `labels` (compared case-, space- and bracket-insensitively).

    With `canonicalize`, a kept row's output is rewritten to the label's own spelling ("(A)" -> "A").
    An empty label set keeps everything.
    """
    if not labels:
        return list(rows), Counter({"label_outside_set": 0})
    canon = {}
    for label in labels:
        canon.setdefault(_label_key(label), label)
    kept = []
    for r in rows:
        label = canon.get(_label_key(r.output or ""))
        if label is None:
            continue
        kept.append(replace(r, output=label) if canonicalize and r.output != label else r)
    return kept, Counter({"label_outside_set": len(rows) - len(kept)})


def filter_exact_duplicates(rows: Sequence[Row]) -> Filtered:
    """Keep the first row of each (normalised input, normalised output) pair."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for r in rows:
        key = (normalize_text(r.input), normalize_text(r.output))
        if key in seen:
            continue
        seen.add(key)
        kept.append(r)
    return kept, Counter({"exact_duplicate": len(rows) - len(kept)})


# --------------------------------------------------------------------------------------------
# language
# --------------------------------------------------------------------------------------------

# Unicode blocks of the scripts a language check can tell apart without a model
_SCRIPT_RANGES = [
    ("latin", 0x0041, 0x024F),
    ("greek", 0x0370, 0x03FF),
    ("cyrillic", 0x0400, 0x052F),
    ("armenian", 0x0530, 0x058F),
    ("hebrew", 0x0590, 0x05FF),
    ("arabic", 0x0600, 0x06FF),
    ("devanagari", 0x0900, 0x097F),
    ("bengali", 0x0980, 0x09FF),
    ("tamil", 0x0B80, 0x0BFF),
    ("thai", 0x0E00, 0x0E7F),
    ("georgian", 0x10A0, 0x10FF),
    ("hangul", 0x1100, 0x11FF),
    ("latin", 0x1E00, 0x1EFF),
    ("kana", 0x3040, 0x30FF),
    ("han", 0x3400, 0x4DBF),
    ("han", 0x4E00, 0x9FFF),
    ("hangul", 0xAC00, 0xD7AF),
    ("han", 0xF900, 0xFAFF),
    ("arabic", 0xFB50, 0xFDFF),
    ("arabic", 0xFE70, 0xFEFF),
]

LANGUAGE_SCRIPT = {
    "ru": "cyrillic", "uk": "cyrillic", "bg": "cyrillic", "sr": "cyrillic", "be": "cyrillic",
    "kk": "cyrillic", "mk": "cyrillic", "mn": "cyrillic",
    "el": "greek", "hy": "armenian", "he": "hebrew", "yi": "hebrew",
    "ar": "arabic", "fa": "arabic", "ur": "arabic", "ps": "arabic",
    "hi": "devanagari", "mr": "devanagari", "ne": "devanagari", "sa": "devanagari",
    "bn": "bengali", "ta": "tamil", "th": "thai", "ka": "georgian",
    "ko": "hangul", "ja": "japanese", "zh": "han",
}  # anything else is written in Latin script

# frequent function words, for telling Latin-script languages apart
STOPWORDS = {
    "en": "the and of to is in that it was for with as on are this be by at have from or not but they you he she we "
    "his her an which were has had will would what there their been can my me do does did these those a i so if "
    "all about who just than into your more its like how when them our us",
    "de": "der die das und ist nicht ein eine zu den dem mit sich des auf für im von auch es an als wird bei sie er "
    "ich wir oder aber nach wie noch nur war sind werden einer eines hat dass zum zur über",
    "fr": "le la les et des est une un du en que qui dans pour pas sur au avec ce il elle ne se sont par plus son sa "
    "ses aux mais ou nous vous je été cette comme était leur",
    "es": "el la los las y de que en un una es por con para del se no su al lo como más pero sus le ya fue este ha "
    "porque esta son entre cuando muy sin sobre también me hasta hay donde ser está",
    "it": "il di che è e la per un una in non sono del della con si le da al lo gli dei alla nel anche più ma come "
    "questo ci ha era essere nella delle",
    "pt": "o a os as de que e do da em um uma para com não por se mais no na dos das ao como mas foi ele ela seu sua "
    "ou ser quando muito há nos já está também são pelo pela",
    "nl": "de het een en van is dat op te in zijn voor met niet aan er die maar om ook als bij of uit wordt door naar "
    "heeft dan nog worden was wel hij ze we ik je",
}
_STOPWORDS = {lang: frozenset(words.split()) for lang, words in STOPWORDS.items()}
_WORD_LANGS: dict[str, tuple[str, ...]] = {}
for _lang, _words in _STOPWORDS.items():
    for _w in _words:
        _WORD_LANGS[_w] = _WORD_LANGS.get(_w, ()) + (_lang,)

# languages a description can name for the output language check: the names come from the one
# code -> name table (retrieval_index.languages), for the codes this module can detect
_CHECKED = ("en", "de", "fr", "es", "it", "pt", "nl", "ru", "uk", "bg", "sr", "el", "he", "ar", "fa", "ur", "hi", "mr", "ne",
            "bn", "ta", "th", "ka", "hy", "ko", "ja", "zh", "tr", "pl", "cs", "sv", "da", "no", "fi", "hu", "ro", "vi", "id")
LANGUAGE_NAMES = {LANGUAGE_OF_CODE[c].lower(): c for c in _CHECKED} | {"farsi": "fa", "mandarin": "zh", "cantonese": "zh"}
_LANGUAGE_NAME = re.compile(r"\b(" + "|".join(sorted(LANGUAGE_NAMES, key=len, reverse=True)) + r")\b", re.IGNORECASE)


_ASCII_LETTERS = re.compile(r"[A-Za-z]")
_NON_ASCII_LETTERS = re.compile(r"[^\W\d_\x00-\x7f]")
_RANGE_STARTS = [lo for _, lo, _ in _SCRIPT_RANGES]


def _script_counts(text: str) -> Counter:
    """Letters per script (non-letters ignored)."""
    counts: Counter = Counter()
    n_ascii = len(_ASCII_LETTERS.findall(text))
    if n_ascii:
        counts["latin"] = n_ascii
    if text.isascii():
        return counts
    for ch in _NON_ASCII_LETTERS.findall(text):
        o = ord(ch)
        i = bisect.bisect_right(_RANGE_STARTS, o) - 1
        if i >= 0 and o <= _SCRIPT_RANGES[i][2]:
            counts[_SCRIPT_RANGES[i][0]] += 1
        else:
            counts["other"] += 1
    return counts


_SCRIPT_LANGUAGE = {
    "greek": "el", "armenian": "hy", "hebrew": "he", "arabic": "ar", "devanagari": "hi",
    "bengali": "bn", "tamil": "ta", "thai": "th", "georgian": "ka", "hangul": "ko",
}
_SCRIPTS = {name for name, _, _ in _SCRIPT_RANGES} | {"japanese", "other"}


def _script_of(code: str) -> str:
    """The script of a language code, or the code itself when it already names a script."""
    return code if code in _SCRIPTS else LANGUAGE_SCRIPT.get(code, "latin")


def detect_language(text: str, *, min_letters: int = 20) -> str | None:
    """A cheap guess: an ISO 639-1 code, a script name ("cyrillic", "latin", ...) when only the
    script is clear, or None when the text has fewer than `min_letters` letters or no script
    holds half of them.

    Non-Latin scripts are told apart by Unicode block (kana -> ja, Han alone -> zh, Hangul -> ko,
    Cyrillic -> ru or uk by letters only one of them uses); Latin-script text by the share of
    function words of en, de, fr, es, it, pt and nl (at least 3 such words, 12% of the words and
    twice the runner-up's share; else "latin").
    """
    counts = _script_counts(text or "")
    total = sum(counts.values())
    if total < min_letters:
        return None
    cjk = counts["han"] + counts["kana"]
    if cjk / total >= 0.5:
        return "ja" if counts["kana"] >= 0.1 * cjk else "zh"
    script, top = counts.most_common(1)[0]
    if top / total < 0.5:
        return None
    if script == "cyrillic":
        low = text.casefold()
        uk = sum(low.count(c) for c in "іїєґ")
        ru = sum(low.count(c) for c in "ыэё")
        if uk > ru:
            return "uk"
        return "ru" if ru else "cyrillic"
    if script != "latin":
        return _SCRIPT_LANGUAGE.get(script, script)
    words = tokenize(text)
    if len(words) < 5:
        return "latin"
    hits: Counter = Counter()
    for w in words:
        langs = _WORD_LANGS.get(w)
        if langs:
            hits.update(langs)
    ranked = hits.most_common(2) + [("", 0), ("", 0)]
    (best, c1), (_, c2) = ranked[0], ranked[1]
    if c1 >= 3 and c1 >= 0.12 * len(words) and c1 >= 2 * c2:
        return best
    return "latin"


def language_matches(text: str, languages: Iterable[str], *, min_letters: int = 20) -> bool | None:
    """True when the text is in one of `languages` (ISO 639-1 codes), False when it is clearly
    not, None when the detector can't tell (too short, mixed, or a language it can't recognise)."""
    langs = {l.lower().replace("_", "-").split("-")[0] for l in languages if l}
    if not langs:
        return None
    guess = detect_language(text, min_letters=min_letters)
    if guess is None:
        return None
    if guess in langs:
        return True
    scripts = {_script_of(l) for l in langs}
    if guess == "zh":  # Han only: Chinese, or Japanese written without kana
        return bool(scripts & {"han", "japanese"})
    if guess == "ja":
        return "japanese" in scripts
    script = _script_of(guess)
    if script not in scripts:
        return False
    if script == "latin":
        if guess == "latin":
            return True  # Latin script, language unclear
        latin_targets = {l for l in langs if _script_of(l) == "latin"}
        # a confident guess of another language: wrong only if we could have recognised every target
        return False if latin_targets <= set(_STOPWORDS) else None
    if script == "cyrillic" and guess in ("ru", "uk"):
        cyrillic_targets = {l for l in langs if _script_of(l) == "cyrillic"}
        return True if cyrillic_targets - {"ru", "uk"} else False
    return True


def task_languages(spec: TaskSpec) -> set[str]:
    """The languages rows may be in: the spec's language plus any language the description names."""
    langs = {(spec.language or "en").lower()}
    langs |= {LANGUAGE_NAMES[m.lower()] for m in _LANGUAGE_NAME.findall(spec.description or "")}
    return langs


def needs_language_check(spec: TaskSpec) -> bool:
    """The "auto" policy: the task is not in English, or its description names a language."""
    return (spec.language or "en").lower() != "en" or bool(_LANGUAGE_NAME.search(spec.description or ""))


def filter_language(
    rows: Sequence[Row], languages: Iterable[str], *, check_output: bool = False, min_letters: int = 20
) -> Filtered:
    """Drop rows whose input (and output, with `check_output`) is clearly in another language.

    Texts too short or too mixed to judge are kept.
    """
    langs = set(languages)
    kept = []
    for r in rows:
        if language_matches(r.input, langs, min_letters=min_letters) is False:
            continue
        if check_output and language_matches(r.output, langs, min_letters=min_letters) is False:
            continue
        kept.append(r)
    return kept, Counter({"wrong_language": len(rows) - len(kept)})


# --------------------------------------------------------------------------------------------
# contamination
# --------------------------------------------------------------------------------------------


def filter_contaminated(
    rows: Sequence[Row],
    references: Iterable[str],
    *,
    n: int = 13,
    min_n: int = 8,
    _tokens: _Tokens | None = None,
) -> Filtered:
    """Drop rows whose input shares a word n-gram with any reference text (user examples, eval set).

    For a row of `a` words and a reference of `b` words the n-gram size is min(n, a, b): GPT-3's
    13-gram overlap, and for a text shorter than 13 words its whole word sequence must occur in the
    other. A text shorter than `min_n` words only matches an equal text (so a common short phrase
    in the references does not flag every row that contains it). Words are case-folded
    letter/digit runs (`tokenize`); case and punctuation are ignored.
    """
    refs = [t for t in references if t and t.strip()]
    if not refs or not rows:
        return list(rows), Counter({"contaminated": 0})
    min_n = max(1, min(min_n, n))

    ref_tok = _Tokens(refs)
    row_tok = _tokens if _tokens is not None else _Tokens([r.input for r in rows])
    bad = np.zeros(len(rows), dtype=bool)

    # whole-text equality covers every short text (and is true contamination for any length)
    ref_whole_all = ref_tok.whole_hashes()
    ref_whole = np.unique(ref_whole_all[ref_tok.lengths > 0])
    row_whole = row_tok.whole_hashes()
    bad |= _isin(row_whole, ref_whole) & (row_tok.lengths > 0)

    sizes = range(min_n, n + 1)
    ref_grams = {k: (h, rr) for k, h, rr in ref_tok.ngram_hashes(sizes)}
    ref_len, row_len = ref_tok.lengths, row_tok.lengths
    for k, h, rr in row_tok.ngram_hashes(sizes):
        rh, _ = ref_grams.get(k, (None, None))
        if rh is None or not len(rh):
            continue
        if k == n:
            # both texts have >= n words: any shared n-gram
            bad[rr[_isin(h, np.unique(rh))]] = True
            continue
        # a row of exactly k words inside a reference of >= k words
        short_rows = np.nonzero(row_len == k)[0]
        if len(short_rows):
            bad[short_rows[_isin(row_whole[short_rows], np.unique(rh))]] = True
        # a reference of exactly k words inside a row of >= k words
        ref_k = ref_whole_all[ref_len == k]
        if len(ref_k):
            bad[rr[_isin(h, np.unique(ref_k))]] = True

    kept = [r for r, b in zip(rows, bad) if not b]
    return kept, Counter({"contaminated": int(bad.sum())})


def _isin(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    if not len(sorted_unique) or not len(values):
        return np.zeros(len(values), dtype=bool)
    idx = np.searchsorted(sorted_unique, values)
    idx[idx == len(sorted_unique)] = 0
    return sorted_unique[idx] == values


# --------------------------------------------------------------------------------------------
# near-duplicates: MinHash LSH
# --------------------------------------------------------------------------------------------


def lsh_params(threshold: float, num_perm: int, recall: float = 0.99) -> tuple[int, int]:
    """(bands, rows per band): the longest bands for which a pair at `threshold` Jaccard becomes
    a candidate with probability >= `recall` (candidates are then checked exactly)."""
    for r in range(num_perm, 0, -1):
        b = num_perm // r
        if 1 - (1 - threshold**r) ** b >= recall:
            return b, r
    return num_perm, 1


def minhash_signatures(shingles: np.ndarray, rows: np.ndarray, n_rows: int, *, num_perm: int = 64, seed: int = 1) -> np.ndarray:
    """MinHash signatures (n_rows x num_perm, uint64) of the rows' shingle-hash sets.

    `rows` gives the row of each shingle and must be sorted. Each permutation is a multiply-add
    hash (a*h + b mod 2**64, a odd) of the mixed shingle hash; a row without shingles gets the
    all-max signature.
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    sig = np.full((n_rows, num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    if not len(shingles):
        return sig
    h = _mix64(shingles)
    counts = np.bincount(rows, minlength=n_rows)
    starts = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    chunk = max(1, 2**21 // num_perm)  # shingles per block: about 16 MB of uint64
    r0 = 0
    with np.errstate(over="ignore"):
        while r0 < n_rows:
            r1 = int(np.searchsorted(starts, starts[r0] + chunk, side="right")) - 1
            r1 = min(max(r1, r0 + 1), n_rows)
            s0, s1 = starts[r0], starts[r1]
            if s1 > s0:
                vals = np.multiply(h[s0:s1, None], a[None, :])
                vals += b[None, :]
                nonempty = r0 + np.nonzero(counts[r0:r1])[0]
                sig[nonempty] = np.minimum.reduceat(vals, starts[nonempty] - s0, axis=0)
            r0 = r1
    return sig


def _shingles(tok: _Tokens, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(hash, row) of every k-word shingle, rows sorted; a text shorter than k words is one shingle."""
    parts_h, parts_r = [], []
    for _, h, rr in tok.ngram_hashes([k]):
        parts_h.append(h)
        parts_r.append(rr)
    short = np.nonzero((tok.lengths > 0) & (tok.lengths < k))[0]
    if len(short):
        parts_h.append(tok.whole_hashes()[short] ^ np.uint64(0x5BD1E995))  # apart from k-grams
        parts_r.append(short)
    h = np.concatenate(parts_h)
    rr = np.concatenate(parts_r)
    order = np.argsort(rr, kind="stable")
    return h[order], rr[order]


def filter_near_duplicates(
    rows: Sequence[Row],
    *,
    threshold: float = 0.8,
    shingle_size: int = 3,
    num_perm: int = 64,
    recall: float = 0.99,
    seed: int = 1,
    _tokens: _Tokens | None = None,
) -> Filtered:
    """Drop a row when its input's word-shingle set has Jaccard >= `threshold` with a kept row's.

    MinHash LSH proposes candidates (banding chosen by `lsh_params` for `recall` at the threshold);
    every candidate is confirmed by the exact Jaccard of the two shingle sets, so no row is dropped
    on an estimate. Inputs shorter than `shingle_size` words are one shingle (their whole word
    sequence); inputs without words are never near-duplicates (exact duplicates catch those).
    """
    n = len(rows)
    if not n:
        return [], Counter({"near_duplicate": 0})
    tok = _tokens if _tokens is not None else _Tokens([r.input for r in rows])
    h, rr = _shingles(tok, max(1, shingle_size))
    bands, r = lsh_params(threshold, num_perm, recall)
    sig = minhash_signatures(h, rr, n, num_perm=bands * r, seed=seed)
    counts = np.bincount(rr, minlength=n)
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    has = counts > 0

    # bucket ids per band; a row needs checking only if an earlier row shares one of its buckets
    weights = _mix64(np.arange(1, r + 1, dtype=np.uint64))
    bucket = np.empty((n, bands), dtype=np.int64)
    collides = np.zeros(n, dtype=bool)
    with np.errstate(over="ignore"):
        for bi in range(bands):
            key = (sig[:, bi * r : (bi + 1) * r] * weights[None, :]).sum(axis=1, dtype=np.uint64)
            key[~has] = np.arange(int((~has).sum()), dtype=np.uint64)  # never collide
            _, first, inv = np.unique(key, return_index=True, return_inverse=True)
            bucket[:, bi] = inv
            collides |= first[inv] < np.arange(n)
    keep = np.ones(n, dtype=bool)
    todo = np.nonzero(collides)[0]
    if len(todo):
        # members of shared buckets, per band: {bucket id: [rows in order]}
        members: list[dict[int, list[int]]] = []
        for bi in range(bands):
            col = bucket[:, bi]
            shared = np.bincount(col)[col] > 1
            d: dict[int, list[int]] = {}
            for i, bid in zip(np.nonzero(shared)[0].tolist(), col[shared].tolist()):
                d.setdefault(bid, []).append(i)
            members.append(d)
        sets: dict[int, frozenset] = {}

        def shingle_set(i: int) -> frozenset:
            s_ = sets.get(i)
            if s_ is None:
                s_ = sets[i] = frozenset(h[starts[i] : starts[i + 1]].tolist())
            return s_

        bucket_rows = bucket[todo].tolist()
        for i, row_buckets in zip(todo.tolist(), bucket_rows):
            checked: set[int] = set()
            a_ = shingle_set(i)
            for bi, bid in enumerate(row_buckets):
                for j in members[bi].get(bid, ()):
                    if j >= i:
                        break
                    if not keep[j] or j in checked:
                        continue
                    checked.add(j)
                    b_ = shingle_set(j)
                    inter = len(a_ & b_)
                    if inter and inter >= threshold * (len(a_) + len(b_) - inter):
                        keep[i] = False
                        break
                if not keep[i]:
                    break
    kept = [row for row, k_ in zip(rows, keep) if k_]
    return kept, Counter({"near_duplicate": n - len(kept)})


# --------------------------------------------------------------------------------------------
# embedding group checking (UniGen)
# --------------------------------------------------------------------------------------------


def greedy_embedding_keep(embeddings: np.ndarray, *, max_distance: float = 0.1, batch_size: int = 1024) -> np.ndarray:
    """Boolean mask: keep a row unless its cosine distance to an already kept row is <= max_distance.

    Rows are taken in order; each batch is compared with all kept rows in one matrix product, and
    only rows with a close earlier row inside their own batch are resolved one by one.
    """
    e = np.asarray(embeddings, dtype=np.float32)
    n = len(e)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    e = e / norms
    sim_min = np.float32(1.0 - max_distance)
    kept_vecs = np.empty_like(e)
    n_kept = 0
    for start in range(0, n, batch_size):
        block = e[start : start + batch_size]
        m = len(block)
        drop = np.zeros(m, dtype=bool)
        if n_kept:
            drop |= (block @ kept_vecs[:n_kept].T).max(axis=1) >= sim_min
        close = np.triu(block @ block.T >= sim_min, k=1)  # close[i, j]: i < j in this batch
        block_keep = ~drop
        for j in np.nonzero(close.any(axis=0) & ~drop)[0]:
            if (close[:j, j] & block_keep[:j]).any():
                block_keep[j] = False
        idx = np.nonzero(block_keep)[0]
        kept_vecs[n_kept : n_kept + len(idx)] = block[idx]
        n_kept += len(idx)
        keep[start : start + m] = block_keep
    return keep


def filter_embedding_duplicates(
    rows: Sequence[Row],
    embedder=None,
    *,
    embeddings: np.ndarray | None = None,
    max_distance: float = 0.1,
    batch_size: int = 1024,
) -> Filtered:
    """UniGen group checking on inputs: drop a row within `max_distance` cosine distance of a kept row.

    Give an `embedder` (anything with `encode(texts) -> array`) or precomputed `embeddings`
    aligned with `rows`.
    """
    if not rows:
        return [], Counter({"embedding_duplicate": 0})
    if embeddings is None:
        if embedder is None:
            raise ValueError("filter_embedding_duplicates needs an embedder or embeddings")
        embeddings = embedder.encode([r.input for r in rows])
    keep = greedy_embedding_keep(embeddings, max_distance=max_distance, batch_size=batch_size)
    kept = [r for r, k in zip(rows, keep) if k]
    return kept, Counter({"embedding_duplicate": len(rows) - len(kept)})


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
) -> CurateResult:
    """Run every filter that applies, cheap first; count each drop by reason.

    `eval_texts`: inputs of an evaluation set (`--eval-file`); with the inputs of `spec.examples`
    they are the references of the contamination check. `embedder`: enables group checking.
    """
    cfg = config
    drops: dict[str, int] = {}
    timings: dict[str, float] = {}
    current = list(rows)

    def run(name: str, fn, *args, **kwargs):
        nonlocal current
        t0 = time.perf_counter()
        current, counts = fn(current, *args, **kwargs)
        timings[name] = round(time.perf_counter() - t0, 4)
        drops[name] = drops.get(name, 0) + int(counts.get(name, 0))

    run("empty", filter_empty)
    run("too_long", filter_too_long, max_input_chars=cfg.max_input_chars, max_output_chars=cfg.max_output_chars)
    if spec.is_classification:
        run("label_outside_set", filter_labels, spec.labels, canonicalize=cfg.canonicalize_labels)
    run("exact_duplicate", filter_exact_duplicates)
    if cfg.language_check == "always" or (cfg.language_check == "auto" and needs_language_check(spec)):
        run(
            "wrong_language",
            filter_language,
            task_languages(spec),
            check_output=spec.output_kind == "text",
            min_letters=cfg.min_language_letters,
        )
    # contamination and near-duplicates read the same word tokens: tokenise the inputs once
    tokens: _Tokens | None = None
    tokens_for: list[Row] = []

    def tokens_of(rows_now: list[Row]) -> _Tokens:
        nonlocal tokens, tokens_for
        if tokens is None:
            tokens, tokens_for = _Tokens([r.input for r in rows_now]), rows_now
        elif tokens_for is not rows_now:
            where = {id(r): i for i, r in enumerate(tokens_for)}
            tokens, tokens_for = tokens.subset([where[id(r)] for r in rows_now]), rows_now
        return tokens

    if cfg.contamination:
        refs = [e.input for e in spec.examples] + [t for t in eval_texts if t]
        if refs:
            t0 = time.perf_counter()
            tok = tokens_of(current)
            run(
                "contaminated",
                filter_contaminated,
                refs,
                n=cfg.contamination_n,
                min_n=cfg.contamination_min_n,
                _tokens=tok,
            )
            timings["contaminated"] = round(time.perf_counter() - t0, 4)
    if cfg.near_duplicates:
        t0 = time.perf_counter()
        tok = tokens_of(current)
        run(
            "near_duplicate",
            filter_near_duplicates,
            threshold=cfg.near_duplicate_threshold,
            shingle_size=cfg.shingle_size,
            num_perm=cfg.num_perm,
            recall=cfg.lsh_recall,
            _tokens=tok,
        )
        timings["near_duplicate"] = round(time.perf_counter() - t0, 4)
    kept_embeddings = None
    if cfg.embedding_duplicates and embedder is not None:
        t0 = time.perf_counter()
        emb = np.asarray(embedder.encode([r.input for r in current]), dtype=np.float32) if current else None
        if current:
            keep = greedy_embedding_keep(emb, max_distance=cfg.embedding_max_distance, batch_size=cfg.embedding_batch)
            drops["embedding_duplicate"] = int((~keep).sum())
            current = [r for r, k in zip(current, keep) if k]
            kept_embeddings = emb[keep]
        else:
            drops["embedding_duplicate"] = 0
        timings["embedding_duplicate"] = round(time.perf_counter() - t0, 4)
    return CurateResult(rows=current, drops=drops, timings=timings, embeddings=kept_embeddings)
