#!/usr/bin/env bash
# The inner loop (`make check`, well under a minute): lint, formatting, types, and the tests that
# need no service (no ClickHouse, browser, test server or network lab). `make test` runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/ruff ] || scripts/setup.sh dev
echo "check: ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "check: mypy" >&2
.venv/bin/python -m mypy
echo "check: unit tests" >&2
exec .venv/bin/python -m pytest -q -m "not services" "$@"
