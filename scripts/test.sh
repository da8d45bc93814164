#!/usr/bin/env bash
# Installs everything the tests need, then runs them. Extra arguments go to pytest.
#   ./scripts/test.sh            # the whole suite
#   ./scripts/test.sh -k run     # a part of it
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing snapsafe and its test dependencies"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test]'

for installer in scripts/install-*.sh; do
    [ -e "$installer" ] || continue
    echo "== $installer"
    bash "$installer"
done

echo "== ruff"
python3 -m ruff check src tests benchmarks

echo "== pytest"
exec python3 -m pytest "$@"
