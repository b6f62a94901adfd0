#!/usr/bin/env bash
# Install what ispeed needs on a fresh Debian 12 machine, then the project into ./.venv.
#   scripts/setup.sh run    the platform on the embedded store (Debian: fonts-dejavu-core, for share images)
#   scripts/setup.sh test   also what the tests use: Debian's clickhouse-server, test tools
#   scripts/setup.sh dev    the project and its test extras only (`make check`: no Debian packages)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-run}"

debian_packages=()
case "$profile" in
  dev) ;;
  run) debian_packages=(fonts-dejavu-core) ;;  # Vietnamese glyphs in /r/<id>.png (Pillow)
  test)
    # a real ClickHouse server (and ZooKeeper for replicated tables), a real browser,
    # M-Lab's ndt7 client (npm, needs Node >= 18), and the network tools of the accuracy harness
    debian_packages=(clickhouse-server clickhouse-client chromium zookeeper iproute2 iperf3 curl ethtool gcc nginx-light
      fonts-dejavu-core)
    command -v npm >/dev/null 2>&1 || debian_packages+=(nodejs npm)
    ;;
  *) echo "scripts/setup.sh: unknown profile '$profile': use run, test or dev" >&2; exit 2 ;;
esac

missing=()
for pkg in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -q
  # policy-rc.d may refuse to start the packaged service; ispeed starts its own instances.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || { echo "setup: apt-get install ${missing[*]} failed" >&2; exit 1; }
fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: ispeed needs Python 3.11 or newer ($python is $("$python" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$python" -m venv .venv
fi
extras=""; [ "$profile" != run ] && extras="[test]"
echo "setup: installing ispeed${extras} into .venv" >&2
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
