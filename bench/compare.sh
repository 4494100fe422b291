#!/usr/bin/env bash
# pbc against `kubectl kustomize`, and `pbc check` against the bare parse, on the generated
# monorepo (the method and the figures are in docs/performance.md).
#
#   bench/compare.sh                 N = 1,000 side by side, then N = 100, 1,000, 10,000
#   ROUNDS=5 SIZES="100 1000" KUBECTL_N=1000 WORK=/tmp/pbc-bench bench/compare.sh
#
# 1. Side by side at N = KUBECTL_N (default 1,000): each round runs, for each overlay
#    (dev, staging, production), `pbc build --target resolved` (one process each) and
#    `kubectl kustomize`, interleaved; a round's figure is the sum over the three overlays.
#    The outputs are compared byte for byte once. Prints the median of ROUNDS rounds and
#    the ratio kubectl / pbc.
# 2. For each N in SIZES: the bare parse (saphyr-parser's spanned events over every file of
#    the tree, one thread, in memory: `bare-parse`), `pbc check` of the whole tree and one
#    `pbc build`, each the median wall time of ROUNDS runs, and their peak memory (maximum
#    resident set size, `/usr/bin/time -v`).
#
# Wall times come from bash's EPOCHREALTIME (microseconds). Nothing here asserts a time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
SIZES=${SIZES:-"100 1000 10000"}
KUBECTL_N=${KUBECTL_N:-1000}
WORK=${WORK:-${TMPDIR:-/tmp}/pbc-compare}
OVERLAYS=(dev staging production)

if [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq time >/dev/null
    else
        echo "compare.sh needs GNU time (/usr/bin/time): apt-get install time" >&2
        exit 2
    fi
fi

echo "building (release) ..." >&2
(cd "$ROOT" && cargo build --release -q -p pbc -p xtask -p pbc-bench --bin pbc --bin xtask --bin bare-parse)
PBC=$ROOT/target/release/pbc
GEN=$ROOT/target/release/xtask
BARE=$ROOT/target/release/bare-parse

mkdir -p "$WORK"

# The wall time of a command in milliseconds (its output discarded).
ms() {
    local t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1
    local t1=$EPOCHREALTIME
    echo "$t0 $t1" | awk '{printf "%.1f\n", ($2 - $1) * 1000}'
}

median() {
    sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}

# Peak resident memory of a command, in MB.
peak_mb() {
    /usr/bin/time -f "%M" -o "$WORK/.rss" "$@" >/dev/null 2>&1 || true
    awk '{printf "%.1f\n", $1 / 1024}' "$WORK/.rss"
}

gen() {
    local n=$1 dir=$WORK/n$1
    if [ ! -f "$dir/base/kustomization.yaml" ] || [ "$(grep -c '^  - ' "$dir/base/kustomization.yaml")" != "$n" ]; then
        "$GEN" gen-monorepo --n "$n" --out "$dir" >/dev/null
    fi
    echo "$dir"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ---- 1. pbc build vs kubectl kustomize, side by side -----------------------------------
if command -v kubectl >/dev/null; then
    dir=$(gen "$KUBECTL_N")
    for o in "${OVERLAYS[@]}"; do
        "$PBC" build --target resolved "$dir/overlays/$o" >"$WORK/pbc-$o.yaml"
        kubectl kustomize "$dir/overlays/$o" >"$WORK/kubectl-$o.yaml"
        if cmp -s "$WORK/pbc-$o.yaml" "$WORK/kubectl-$o.yaml"; then
            echo "overlay $o: pbc's output is byte-identical to kubectl's"
        else
            echo "overlay $o: OUTPUTS DIFFER (diff $WORK/pbc-$o.yaml $WORK/kubectl-$o.yaml)"
        fi
    done
    : >"$WORK/pbc.times"
    : >"$WORK/kubectl.times"
    for r in $(seq "$ROUNDS"); do
        p=0
        k=0
        for o in "${OVERLAYS[@]}"; do
            p=$(echo "$p $(ms "$PBC" build --target resolved "$dir/overlays/$o")" | awk '{print $1 + $2}')
            k=$(echo "$k $(ms kubectl kustomize "$dir/overlays/$o")" | awk '{print $1 + $2}')
        done
        echo "round $r: pbc ${p} ms, kubectl ${k} ms (three overlays)"
        echo "$p" >>"$WORK/pbc.times"
        echo "$k" >>"$WORK/kubectl.times"
    done
    pm=$(median <"$WORK/pbc.times")
    km=$(median <"$WORK/kubectl.times")
    echo
    echo "N=$KUBECTL_N, three overlays, median of $ROUNDS rounds:"
    echo "  pbc build --target resolved   ${pm} ms"
    echo "  kubectl kustomize             ${km} ms"
    echo "  ratio                         $(echo "$km $pm" | awk '{printf "%.1fx", $1 / $2}')"
    echo
else
    echo "kubectl not found: the side-by-side comparison is skipped"
    echo
fi

# ---- 2. check vs the bare parse, build, peak memory, per N ------------------------------
printf "%7s %10s %10s %8s %10s %10s %12s %12s\n" N files bare_ms check_ms ratio build_ms check_MB build_MB
for n in $SIZES; do
    dir=$(gen "$n")
    files=$(find "$dir" -name '*.yaml' -o -name '*.json' | wc -l)
    bare=$("$BARE" "$dir" "$ROUNDS" 2>/dev/null)
    check=$(for r in $(seq "$ROUNDS"); do ms "$PBC" check "$dir"; done | median)
    build=$(for r in $(seq "$ROUNDS"); do ms "$PBC" build --target resolved "$dir/overlays/dev"; done | median)
    cmb=$(peak_mb "$PBC" check "$dir")
    bmb=$(peak_mb "$PBC" build --target resolved "$dir/overlays/dev")
    ratio=$(echo "$check $bare" | awk '{printf "%.2fx", $1 / $2}')
    printf "%7s %10s %10s %8s %10s %10s %12s %12s\n" "$n" "$files" "$bare" "$check" "$ratio" "$build" "$cmb" "$bmb"
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
