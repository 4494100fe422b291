#!/usr/bin/env bash
# Regenerates testdata/overlays/<case>/expected.yaml with `kubectl kustomize <case>/overlay`
# (kustomize v5.5), the oracle of pbc's overlay resolution. Trees marked PBC-ONLY use pbc's
# deliberate differences from kustomize (contract §7) and keep their hand-checked
# expected.pbc.yaml instead.
#
# Playbook trees declare `openapi: {path: playbook-openapi.json}` in their base, so that
# kustomize merges `spec.stages` by name (kustomize's schema is process-global: the base's
# declaration governs the overlays). When ../shared/reference/kustomize/playbook-openapi.json
# exists, the copies are refreshed from it first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v kubectl >/dev/null || { echo "regen.sh: kubectl not found" >&2; exit 1; }
shared="$here/../../../shared/reference/kustomize/playbook-openapi.json"
[ -f "$shared" ] || shared="$here/../../../../shared/reference/kustomize/playbook-openapi.json"
n=0
for dir in "$here"/*/; do
  case_dir="${dir%/}"
  name="$(basename "$case_dir")"
  [ -d "$case_dir/overlay" ] || continue
  if [ -f "$shared" ]; then
    find "$case_dir" -name playbook-openapi.json -exec cp "$shared" {} \;
  fi
  if [ -f "$case_dir/PBC-ONLY" ]; then
    echo "skip   $name (pbc-only)"
    continue
  fi
  kubectl kustomize "$case_dir/overlay" > "$case_dir/expected.yaml" 2>/dev/null
  echo "wrote  $name/expected.yaml"
  n=$((n + 1))
done
echo "$n expected files regenerated"
