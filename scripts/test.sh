#!/usr/bin/env bash
# Install what the tests need (idempotent), then run the whole suite, embedded-model tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-example
exec .venv/bin/python -m pytest -q "$@"
