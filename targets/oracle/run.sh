#!/usr/bin/env bash
# The targets oracle: builds every target for testdata/ (the example overlays, the
# seeds and testdata/targets) with pbc, then checks the artifacts with the consumers' own
# tools in a venv with pinned packages. Fails, never skips.
#   targets/oracle/run.sh [PBC_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
pbc=${1:-target/debug/pbc}
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r targets/oracle/requirements.txt
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=0
for overlay in testdata/example/playbooks/overlays/*/; do
  "$pbc" -q build "$overlay" --target all -o "$out/example-$(basename "$overlay")"
  n=$((n + 1))
done
for f in testdata/seeds/*/*.yaml testdata/targets/*/*.yaml; do
  "$pbc" -q build "$f" --target all -o "$out/$(basename "$(dirname "$f")")"
  n=$((n + 1))
done
echo "targets oracle: built $n inputs"
.venv/bin/python targets/oracle/oracle.py --reference testdata/reference --schemas schemas "$out"
