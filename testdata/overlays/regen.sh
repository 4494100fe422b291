#!/usr/bin/env bash
# Regenerates testdata/overlays/<case>/expected.yaml with `kubectl kustomize <case>/overlay`
# (kustomize v5.5), the oracle of pbc's overlay resolution. Trees marked PBC-ONLY use pbc's
# deliberate differences from kustomize (docs/targets.md, "resolved") and keep their hand-checked
# expected.pbc.yaml instead.
#
# Playbook trees declare `openapi: {path: playbook-openapi.json}` in their base, so that
# kustomize merges `spec.stages` by name (kustomize's schema is process-global: the base's
# declaration governs the overlays). The copies are refreshed first from
# testdata/reference/kustomize/playbook-openapi.json.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v kubectl >/dev/null || { echo "regen.sh: kubectl not found" >&2; exit 1; }
openapi="$here/../reference/kustomize/playbook-openapi.json"
n=0
for dir in "$here"/*/; do
  case_dir="${dir%/}"
  name="$(basename "$case_dir")"
  [ -d "$case_dir/overlay" ] || continue
  find "$case_dir" -name playbook-openapi.json -exec cp "$openapi" {} \;
  if [ -f "$case_dir/PBC-ONLY" ]; then
    echo "skip   $name (pbc-only)"
    continue
  fi
  kubectl kustomize "$case_dir/overlay" > "$case_dir/expected.yaml" 2>/dev/null
  echo "wrote  $name/expected.yaml"
  n=$((n + 1))
done
echo "$n expected files regenerated"
