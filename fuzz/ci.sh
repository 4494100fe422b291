#!/usr/bin/env bash
# CI: builds every fuzz target (one `cargo fuzz build`) and runs each for a short time
# (FUZZ_SECONDS, default 30) on its corpus seeded from testdata/, so that the targets
# never rot. Exits non-zero if a target does not build or an input crashes, hangs or
# exhausts memory; the input is kept under fuzz/artifacts/<target>/ (docs/fuzzing.md says
# how to turn it into a regression test). Usage: bash fuzz/ci.sh
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
targets=(loader expr resolve model json6902)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi

# libFuzzer's instrumentation needs unstable rustc flags: a nightly toolchain when there is
# one (unless FUZZ_TOOLCHAIN=stable), else the stable one with RUSTC_BOOTSTRAP=1.
toolchain=()
if [ "${FUZZ_TOOLCHAIN:-}" != stable ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
# AddressSanitizer when the toolchain ships its runtime, else no sanitizer.
sysroot="$(rustc "${toolchain[@]}" --print sysroot)"
host="$(rustc "${toolchain[@]}" -vV | sed -n 's/^host: //p')"
sanitizer=none
if ls "$sysroot/lib/rustlib/$host/lib/"librustc-*_rt.asan.a >/dev/null 2>&1; then
  sanitizer=address
fi
echo "fuzz: toolchain ${toolchain[*]:-stable (RUSTC_BOOTSTRAP=1)}, sanitizer $sanitizer, ${seconds}s per target"

bash fuzz/seed.sh
# 16 codegen units (cargo-fuzz's default is 1): a much shorter build on CI's two cores, for
# somewhat slower runs, which do not matter for 30 seconds.
(cd fuzz && cargo "${toolchain[@]}" fuzz build -s "$sanitizer" --codegen-units 16)

# pbc parallelizes with rayon: one thread per fuzzer keeps the runs comparable.
export RAYON_NUM_THREADS=1
failed=()
for t in "${targets[@]}"; do
  dict=fuzz/dict/yaml.dict
  [ "$t" = expr ] && dict=fuzz/dict/expr.dict
  mkdir -p "fuzz/artifacts/$t"
  log="fuzz/artifacts/$t.log"
  if "fuzz/target/$host/release/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -dict="$dict" -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 \
    "fuzz/corpus/$t" >"$log" 2>&1; then
    echo "fuzz $t: ok: $(grep -E '^#[0-9]+\s+DONE' "$log" | tail -n 1)"
  else
    echo "fuzz $t: FAILED (input kept in fuzz/artifacts/$t/):"
    tail -n 60 "$log"
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}"
  exit 1
fi
