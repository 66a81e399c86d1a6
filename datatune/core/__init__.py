"""The core layer: types, errors, settings, text utilities.

It imports nothing from the rest of datatune (nor from `retrieval_index`), so every other module,
`retrieval_index` included, can import it without a cycle.

- `files`: atomic writes (a unique temp file in the same folder, then `os.replace`) and `locked(path)`,
  a `filelock` lock beside a file shared by processes (the retrieval index, the caches).
"""
