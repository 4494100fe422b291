#!/usr/bin/env bash
# Step 1 of the action: find pbc. A `pbc` already on PATH is used as it is; otherwise pbc is
# built from the action's own source with `cargo install --locked`. The build goes to a fixed
# directory (PBC_INSTALL_ROOT, default ~/.cache/pbc-action) with its own target directory, so
# caching that directory (actions/cache) makes the next build a relink.
# Writes the output `pbc` (the binary's path) and puts its directory on GITHUB_PATH.
set -euo pipefail

if pbc_bin="$(command -v pbc)"; then
  echo "Using $pbc_bin ($("$pbc_bin" --version))"
else
  root="${PBC_INSTALL_ROOT:-$HOME/.cache/pbc-action}"
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
  if ! command -v cargo >/dev/null; then
    echo "::error title=pbc::no pbc on PATH and no cargo to build it: install a Rust toolchain (e.g. dtolnay/rust-toolchain) or put pbc on PATH"
    exit 2
  fi
  echo "::group::Building pbc from $PBC_ACTION_PATH"
  cargo install --locked --path "$PBC_ACTION_PATH/cli" --root "$root"
  echo "::endgroup::"
  pbc_bin="$root/bin/pbc"
  echo "$root/bin" >> "$GITHUB_PATH"
  echo "Built $("$pbc_bin" --version)"
fi
echo "pbc=$pbc_bin" >> "$GITHUB_OUTPUT"
