"""Choose the student's training settings without looking at any BIG-bench test item.

Rows: a built set whose labels are all correct (the `datatune-fixed-plans` COPA rows of
cause_and_effect: 100 rows, 100% agree with gold). Split 70/30 (seeded); each setting is trained on
the 70 and scored on the 30, in-distribution. The setting that fits is the harness default.

    .venv/bin/python -m benchmarks.bigbench.tune_student out/bigbench/cause_and_effect__two_sentences/datatune-fixed-plans/build
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from datatune.report import load_built

from .student import CrossEncoderStudent, TrainConfig, best_per_group, groups_from_rows

SETTINGS = [(4e-5, 3), (1e-4, 5), (2e-4, 5), (1e-4, 10), (5e-5, 10)]


def main(build_dir: str) -> None:
    rows, spec = load_built(Path(build_dir))
    groups, _ = groups_from_rows(rows)
    order = list(range(len(groups)))
    random.Random(0).shuffle(order)
    cut = int(len(order) * 0.7)
    train = [groups[i] for i in order[:cut]]
    held = [groups[i] for i in order[cut:]]
    out = []
    for lr, epochs in SETTINGS:
        st = CrossEncoderStudent(seed=0)
        t0 = time.perf_counter()
        info = st.train(train, TrainConfig(epochs=epochs, lr=lr))
        choices = _choose(st, held)  # (input, option) pairs, as the harness scores test items
        acc = sum(c == g.correct for c, g in zip(choices, held)) / len(held)
        out.append({"lr": lr, "epochs": epochs, "train": len(train), "held_out": len(held), "accuracy": round(acc, 3),
                    "loss_first": info["loss_first"], "loss_last": info["loss_last"], "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(out[-1]), flush=True)
    Path(__file__).with_name("tune_student_results.json").write_text(json.dumps(out, indent=2))


def _choose(st, groups):
    import torch

    pairs = [(g.input, c) for g in groups for c in g.candidates]
    with torch.no_grad():
        scores = st._logits(pairs).tolist()
    return best_per_group(scores, [len(g.candidates) for g in groups])


if __name__ == "__main__":
    main(sys.argv[1])
