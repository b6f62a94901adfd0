#!/usr/bin/env bash
# Install everything the tests need, lint, type-check, and run the whole test suite (both store backends).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
echo "test: ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "test: mypy" >&2
.venv/bin/python -m mypy
echo "test: pytest" >&2
exec .venv/bin/python -m pytest "$@"
