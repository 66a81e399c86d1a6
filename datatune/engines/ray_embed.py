"""Card embedding on Ray: `datatune index build --engine ray` encodes the texts an index build needs
(new or changed cards) with MiniLM on every CPU of the cluster.

`RayEncoder` is the index's `Encoder` with `encode` split into blocks of whole encoding chunks, each
encoded by one of a pool of Ray actors (`ray.util.ActorPool`, one per cluster CPU, the model loaded once
per actor) and put back in order. Queries are encoded here, as before. Below one block the texts are
encoded here too: starting actors and loading the model in each costs seconds.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from retrieval_index.dense import DIM, Encoder

BLOCK_CHUNKS = 16  # encoding chunks (batch_size * 8 texts each) per Ray task: 4,096 texts at the defaults


class _EncodingActor:
    def __init__(self, max_seq_length: int, batch_size: int):
        self.encoder = Encoder(max_seq_length=max_seq_length, batch_size=batch_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts)


class RayEncoder(Encoder):
    """An `Encoder` whose bulk `encode` runs on Ray actors (the same chunks as in one process, so the same vectors)."""

    def __init__(self, *, actors: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.actors = actors

    def encode(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        block = self.batch_size * 8 * BLOCK_CHUNKS
        if len(texts) <= block:
            return super().encode(texts, progress=progress)
        from ray.util import ActorPool

        from .ray import ensure_ray

        ray = ensure_ray()
        n = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        blocks = [list(texts[i:i + block]) for i in range(0, len(texts), block)]
        actor = ray.remote(num_cpus=1)(_EncodingActor)
        actors = [actor.remote(self.max_seq_length, self.batch_size) for _ in range(min(n, len(blocks)))]
        pool = ActorPool(actors)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        try:
            for i, vectors in enumerate(pool.map(lambda a, b: a.encode.remote(b), blocks)):  # in block order
                out[i * block:i * block + len(vectors)] = vectors
                if progress:
                    progress(len(vectors))
        finally:
            for a in actors:  # the models' memory back as soon as the build has its vectors
                ray.kill(a)
        return out
