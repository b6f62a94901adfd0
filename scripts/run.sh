#!/usr/bin/env bash
# Install and run the whole platform on an embedded demo store: a test server, real loopback tests,
# a simulated month of national results, the published site (http://127.0.0.1:8080/site/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
exec .venv/bin/ispeed demo --host 127.0.0.1 --port "${PORT:-8080}" "$@"
