#!/bin/sh
# Runs the registry fuzzer for a bounded time over the seed corpus (read
# only: new inputs go to a scratch folder) and fails on any crash, leak or
# sanitizer report.  Prints libFuzzer's final statistics.
#
#   run_fuzz.sh FUZZER SEED_CORPUS SECONDS
set -eu
FUZZER=$1
SEEDS=$2
SECONDS_TO_RUN=$3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/corpus"
status=0
# -close_fd_mask=2: what the code under test writes to stderr (fmx's error
# lines) would flood the log; libFuzzer's own reports still come.
# -timeout=25: an input runs in milliseconds, so a hang still trips it; 10 s
# was once reached inside AddressSanitizer's own memory release on a machine
# with a load average near 100.
"$FUZZER" -max_total_time="$SECONDS_TO_RUN" -max_len=8192 -timeout=25 -rss_limit_mb=1536 -close_fd_mask=2 \
    -print_final_stats=1 -artifact_prefix="$WORK/" "$WORK/corpus" "$SEEDS" >"$WORK/log" 2>&1 ||
    status=$?
grep -E '^(stat::|Done|INFO: seed corpus)' "$WORK/log" || true
if [ "$status" -ne 0 ]; then
    cat "$WORK/log"
    for crash in "$WORK"/crash-* "$WORK"/leak-* "$WORK"/timeout-* "$WORK"/oom-*; do
        [ -e "$crash" ] && { echo "failing input $crash:"; od -A d -t x1 "$crash" | head -40; }
    done
    echo "FAIL: the fuzzer exited $status" >&2
    exit 1
fi
# A run that executed nothing proves nothing.
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/log")
[ "${runs:-0}" -gt 1000 ] || { echo "FAIL: only ${runs:-0} inputs executed" >&2; exit 1; }
echo "PASS: $runs inputs, no crash"
