#!/bin/sh
# Bad command lines must be refused with exit status 2 and one line on
# standard error, before anything is measured.
set -u
bench=$1
failed=0
check() {
    err=$("$bench" "$@" 2>&1 >/dev/null)
    status=$?
    lines=$(printf '%s\n' "$err" | wc -l)
    if [ "$status" -ne 2 ] || [ "$lines" -ne 1 ]; then
        echo "bad_options: fmx-bench $*: status $status, $lines line(s) on stderr: $err" >&2
        failed=$((failed + 1))
    fi
}
check --duration
check --duration abc
check --duration 0
check --duration -1
check --duration 100
check --share
check --share x
check --share -5
check --share 2000
check --rounds 0
check --rounds 2x
check --rounds -3
check --threads 0
check --threads 1,,2
check --threads 1,2,
check --threads 5000
check --threads " 4"
check --threads -1
check --locks nosuchlock
check --locks fastmutex,fastmutex
check --workloads nosuchworkload
check --workloads cs5-pw
check --workloads cs-5-pw3
check --workloads "cs 5-pw3"
check --workloads cs5-pw+3
check --workloads cs5-pw3x
check --workloads cs5-pw2000000
check --workloads cs4294967296-pw0
check --workloads cs18446744073709551616-pw0
check --workloads cs50-pw300,cs50-pw300
check --workloads cs25-pw0,cs025-pw00
check --workloads "$(seq -s, -f cs%g-pw1 1 25)"
check --out ""
check --frobnicate
check --frobnicate 3
check --out
check stray
[ "$failed" -eq 0 ] || exit 1
"$bench" --help >/dev/null || { echo "bad_options: --help failed" >&2; exit 1; }
# A cell off the grid is built from its name, and runs.
out=$("$bench" --workloads cs50-pw300 --threads 2 --locks futex3 --duration 0.01 --share 0 \
    --rounds 1 2>&1) || { echo "bad_options: the off-grid cell cs50-pw300 failed: $out" >&2; exit 1; }
printf '%s\n' "$out" | grep -q "^== cs50-pw300: critical section ~50 ns .*~300 ns private work" ||
    { echo "bad_options: no cs50-pw300 in the output: $out" >&2; exit 1; }
echo "bad_options: every bad command line refused with status 2 and one line"
