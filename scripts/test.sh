#!/usr/bin/env bash
# Installs everything the tests need, then runs them. Extra arguments go to pytest.
#   ./scripts/test.sh            # the whole suite
#   ./scripts/test.sh -k run     # a part of it
# Python packages go into .venv (it reuses packages the machine already has); system facilities
# (CRIU, QEMU, a guest kernel) are installed by scripts/install-*.sh, each idempotent and cached.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$python" -m venv --system-site-packages .venv
fi
export PATH="$PWD/.venv/bin:$PATH"

echo "== installing snapsafe and its test dependencies"
python -m pip install --quiet --disable-pip-version-check -e '.[test]'

for installer in scripts/install-*.sh; do
    [ -e "$installer" ] || continue
    echo "== $installer"
    bash "$installer"
done

echo "== ruff"
python -m ruff check src tests benchmarks

echo "== pytest"
exec python -m pytest "$@"
