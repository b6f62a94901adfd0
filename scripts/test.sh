#!/usr/bin/env bash
# Install everything the tests need, type-check, and run the whole test suite (both store backends).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
echo "test: mypy" >&2
.venv/bin/python -m mypy core/ispeed cli/ispeed server/ispeed client/ispeed aggregator/ispeed publisher/ispeed admin_geo/ispeed
echo "test: pytest" >&2
exec .venv/bin/python -m pytest "$@"
