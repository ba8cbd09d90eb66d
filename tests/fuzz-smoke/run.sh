#!/usr/bin/env bash
# tests/fuzz-smoke/run.sh — short, bounded run of every libFuzzer target.
#
# For each fuzz/fuzz_<name>.c: builds build-fuzz/fuzz_<name> if needed
# (`make fuzz`), replays fuzz/corpus/<name>/ and then fuzzes for a fixed
# budget (whichever comes first of VIGIL_FUZZ_RUNS executions and
# VIGIL_FUZZ_SECONDS seconds; new inputs go to a temporary directory, the
# committed corpus is never modified), then replays every
# fuzz/regressions/<name>-*.bin.  Prints "ok - fuzz_<name>" or
# "not ok - fuzz_<name>" per target, with the crash summary as "#" lines.
# Exits 1 if any target failed.
#
# Environment:
#   VIGIL_FUZZ_SECONDS=8      time budget per target
#   VIGIL_FUZZ_RUNS=200000    execution budget per target
#   VIGIL_FUZZ_TARGETS="packet lzw"   only these targets
# Without clang/libFuzzer it prints one "ok - fuzz_build # SKIP" and exits 0.
set -u
cd "$(dirname "$0")/../.." || exit 2

seconds=${VIGIL_FUZZ_SECONDS:-8}
runs=${VIGIL_FUZZ_RUNS:-200000}
only=${VIGIL_FUZZ_TARGETS:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vigil-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

cc=${FUZZ_CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1 ||
   ! printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' |
       "$cc" -x c -fsanitize=fuzzer,address,undefined - -o "$tmp/probe" >/dev/null 2>&1; then
    echo "ok - fuzz_build # SKIP $cc with libFuzzer (libclang-rt-14-dev) not available"
    exit 0
fi

targets=()
for src in fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    t=${src#fuzz/fuzz_}
    t=${t%.c}
    if [ -n "$only" ] && [[ " $only " != *" $t "* ]]; then
        continue
    fi
    targets+=("$t")
done

jobs=$(nproc 2>/dev/null || echo 1)
[ "$jobs" -gt 2 ] && jobs=2
if ! make --no-print-directory -j"$jobs" fuzz >"$tmp/build.log" 2>&1; then
    echo "# make fuzz failed:"
    grep -E 'error|Error' "$tmp/build.log" | head -n 20 | sed 's/^/#   /'
    # targets that did get built are still run below
fi

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
for t in "${targets[@]}"; do
    bin=build-fuzz/fuzz_$t
    name=fuzz_$t
    if [ ! -x "$bin" ]; then
        echo "# $name: $bin was not built"
        echo "not ok - $name"
        failed=1
        continue
    fi
    ok=1
    log="$tmp/$t.log"
    mkdir -p "$tmp/$t"
    args=(-runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560
          -print_final_stats=1 -artifact_prefix="$tmp/$t-")
    [ -f "fuzz/$t.dict" ] && args+=(-dict="fuzz/$t.dict")
    corpus=()
    [ -d "fuzz/corpus/$t" ] && corpus=("fuzz/corpus/$t")
    "$bin" "${args[@]}" "$tmp/$t" "${corpus[@]}" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$rc" -ne 0 ]; then
        ok=0
        echo "# $name: fuzzing failed (exit $rc) after ${execs:-?} executions:"
        grep -E 'ERROR:|runtime error|fuzz invariant|SUMMARY|^ *#[0-9]+ 0x.* in ' "$log" |
            grep -v 'in fuzzer::\|in main \|libc_start\|in _start' | head -n 14 | sed 's/^/#   /'
        for a in "$tmp/$t-"*; do
            [ -e "$a" ] || continue
            echo "#   input: $(od -An -tx1 -v "$a" | tr -d ' \n' | cut -c1-160)"
            break
        done
    else
        echo "# $name: ${execs:-?} executions in ${seconds}s budget, corpus fuzz/corpus/$t replayed"
    fi
    for r in fuzz/regressions/"$t"-*.bin; do
        [ -e "$r" ] || continue
        if "$bin" "$r" >"$tmp/reg.log" 2>&1; then
            echo "# $name: regression $r passes"
        else
            ok=0
            echo "# $name: regression $r FAILS:"
            grep -E 'ERROR:|runtime error|fuzz invariant|SUMMARY' "$tmp/reg.log" | head -n 6 |
                sed 's/^/#   /'
        fi
    done
    if [ "$ok" = 1 ]; then
        echo "ok - $name"
    else
        echo "not ok - $name"
        failed=1
    fi
done
exit "$failed"
