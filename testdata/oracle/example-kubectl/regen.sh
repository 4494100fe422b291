#!/usr/bin/env bash
# Regenerates what `kubectl kustomize` (kustomize v5.5) makes of each example overlay.
# `cli/tests/cli.rs` compares `pbc build --target resolved` with these files byte for byte.
set -euo pipefail
cd "$(dirname "$0")/../../example"
for env in dev staging production; do
  kubectl kustomize "playbooks/overlays/$env" > "../oracle/example-kubectl/$env.yaml"
done
