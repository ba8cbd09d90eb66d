#!/usr/bin/env bash
# fuzz/campaign.sh — a long fuzzing campaign: every target (or the ones
# named) for a fixed number of executions, recording what each run did.
#
#   fuzz/campaign.sh                       every fuzz/fuzz_*.c, 10 M executions each
#   VIGIL_CAMPAIGN_RUNS=1000000 fuzz/campaign.sh packet serf
#   VIGIL_CAMPAIGN_SECONDS=1800 ...       also stop each run after 30 min
#   VIGIL_CAMPAIGN_PAR=2 fuzz/campaign.sh  two targets at a time (one core each)
#   VIGIL_CAMPAIGN_BUILD=0 ...             use build-fuzz/ as it is (a second
#                                          queue beside a running campaign:
#                                          relinking under it breaks its runs)
#
# Builds with `make fuzz`.  New inputs go to fuzz/out/<target>/ (git-ignored;
# the committed seeds in fuzz/corpus/<target>/ are read, never written);
# crashes, leaks and UB reports are saved as fuzz/out/<kind>-<hash>.  One
# line per finished run is appended to fuzz/out/campaign.tsv:
#
#   date  commit  target  executions  seconds  exec/s  result  corpus_files
#
# result is "clean" (libFuzzer reached the run count and exited 0), "clean,
# time limit" (stopped by VIGIL_CAMPAIGN_SECONDS first, nothing found),
# "interrupted, clean" (SIGINT, e.g. pkill -INT -f build-fuzz/fuzz_, nothing
# found; a later run continues from the same corpus) or "FAILED rc=N" (a crash, leak, UB report or invariant failure: the log is
# fuzz/out/<target>.log).  Exits non-zero if any run failed.
set -u
cd "$(dirname "$0")/.." || exit 2

runs=${VIGIL_CAMPAIGN_RUNS:-10000000}
seconds=${VIGIL_CAMPAIGN_SECONDS:-0}    # 0: no time limit
par=${VIGIL_CAMPAIGN_PAR:-1}
out=fuzz/out
mkdir -p "$out"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for src in fuzz/fuzz_*.c; do
        t=${src#fuzz/fuzz_}
        targets+=("${t%.c}")
    done
fi

if [ "${VIGIL_CAMPAIGN_BUILD:-1}" = 1 ]; then
    make --no-print-directory -j"$par" fuzz >"$out/build.log" 2>&1 ||
        { echo "make fuzz failed, see $out/build.log" >&2; exit 2; }
fi

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

run_target() {
    local t=$1 dict=() start end rc execs secs rate result
    mkdir -p "$out/$t"
    [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
    start=$(date +%s)
    build-fuzz/fuzz_"$t" -runs="$runs" -max_total_time="$seconds" -print_final_stats=1 -timeout=25 \
        "${dict[@]}" -artifact_prefix="$out/" "$out/$t" "fuzz/corpus/$t" \
        >"$out/$t.log" 2>&1
    rc=$?
    end=$(date +%s)
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$out/$t.log")
    secs=$((end - start))
    rate=$(( ${execs:-0} / (secs > 0 ? secs : 1) ))
    result=clean
    [ "${execs:-0}" -lt "$runs" ] && result="clean, time limit"
    # 72: libFuzzer's exit code when interrupted (SIGINT), nothing found
    if [ "$rc" -eq 72 ] && ! grep -q '^==[0-9]*==ERROR\|^SUMMARY: ' "$out/$t.log"; then
        result="interrupted, clean"
    elif [ "$rc" -ne 0 ]; then
        result="FAILED rc=$rc"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$commit" "$t" \
        "${execs:-0}" "$secs" "$rate" "$result" "$(ls "$out/$t" | wc -l)" \
        >>"$out/campaign.tsv"
    echo "$t: ${execs:-0} executions in ${secs} s: $result"
    [ "$rc" -eq 0 ]
}
export -f run_target
export runs seconds out commit

printf '%s\n' "${targets[@]}" | xargs -P "$par" -I{} bash -c 'run_target "$@"' _ {}
