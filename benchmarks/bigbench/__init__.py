"""BIG-bench comparison of datatune's arms (the DataTune paper's Table 2 at CPU scale).

`python -m benchmarks.bigbench.run --task PATH/task.json` builds every arm's training set with datatune,
fine-tunes a small student on each and scores it on the task's held-out items; see RESULTS.md.
"""
