#!/usr/bin/env bash
# Install what the tests need (idempotent), lint with ruff (config in pyproject.toml), then run the
# whole suite, embedded-model tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-example
.venv/bin/python -m ruff check .
exec .venv/bin/python -m pytest -q "$@"
