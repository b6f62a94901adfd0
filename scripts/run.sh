#!/usr/bin/env bash
# Install and run the platform on the embedded store (chdb:./var/ispeed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
exec .venv/bin/ispeed serve --host 127.0.0.1 --port "${PORT:-8080}" --store chdb:./var/ispeed "$@"
