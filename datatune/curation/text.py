"""Text helpers shared by the filters: the exact-duplicate key, word tokens, and every text's tokens as
one flat array of stable 64-bit hashes (n-gram hashes compare by value across tables)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Iterable, Sequence

import numpy as np

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


def duplicate_keys(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """One 16-byte key per (input, output) pair: a BLAKE2b digest of both normalised texts, so pairs are
    equal exactly when their keys are (a collision needs about 2**64 pairs) and keys made on different
    workers compare by value."""
    out = bytearray()
    for a, b in pairs:
        out += hashlib.blake2b(f"{normalize_text(a)}\x00{normalize_text(b)}".encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return np.frombuffer(bytes(out), dtype="V16")


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


class Tokens:
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

    @classmethod
    def concat(cls, parts: Sequence["Tokens"]) -> "Tokens":
        """The rows of `parts`, one after another (tokens made in blocks, e.g. on several workers)."""
        out = cls()
        out._set(np.concatenate([p.flat for p in parts] or [np.zeros(0, dtype=np.uint64)]),
                 np.concatenate([p.lengths for p in parts] or [np.zeros(0, dtype=np.int64)]))
        return out

    def __reduce__(self):  # __slots__ without __dict__: pickle the arrays (tokens made on a Ray worker come back)
        return (_tokens_from, (self.flat, self.lengths))

    def subset(self, idx: Sequence[int] | np.ndarray) -> "Tokens":
        """The rows at `idx`, in that order."""
        idx = np.asarray(idx, dtype=np.int64)
        lengths = self.lengths[idx]
        out = Tokens()
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


def _tokens_from(flat: np.ndarray, lengths: np.ndarray) -> Tokens:
    out = Tokens()
    out._set(flat, lengths)
    return out
