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
check --out ""
check --frobnicate
check --frobnicate 3
check --out
check stray
[ "$failed" -eq 0 ] || exit 1
"$bench" --help >/dev/null || { echo "bad_options: --help failed" >&2; exit 1; }
echo "bad_options: every bad command line refused with status 2 and one line"
