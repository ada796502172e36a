#!/bin/sh
# Runs `fmx-bench --quick` into DIR and checks the CSV it writes: a row for
# every lock the program lists (but fastmutex's variants, which run only
# when asked for) in every workload of the quick subset, every number parses, throughput
# is positive, Jain's index lies in (0, 1], counts and waits are non-negative,
# and every row passed the mutual-exclusion check.  No timing is asserted.
set -eu
bench=$1
dir=$2
rm -rf "$dir"
"$bench" --quick --out "$dir" >"$dir.log" 2>&1 || {
    status=$?
    cat "$dir.log"
    echo "smoke: fmx-bench --quick exited with status $status" >&2
    exit 1
}
csv=$dir/results.csv
for f in "$csv" "$dir/runs.csv" "$dir/table.txt" "$dir/machine.txt" "$dir/verdicts.csv"; do
    [ -s "$f" ] || { echo "smoke: fmx-bench wrote no $f" >&2; exit 1; }
done

# The CPU probe: a time in ns with two CPUs to bounce a line between, "nan"
# where the process may run on only one.
probe=$(sed -n 's/^cache line from one CPU to another: \(.*\) ns$/\1/p' "$dir/machine.txt")
case $probe in
    nan | [1-9] | [1-9][0-9] | [1-9][0-9][0-9] | [1-9][0-9][0-9][0-9] | [1-9][0-9][0-9][0-9][0-9]) ;;
    *) echo "smoke: machine.txt lacks the CPU probe's time (got '$probe')" >&2; exit 1 ;;
esac

locks=$("$bench" --list-locks | grep -v '^fastmutex-')
workloads=$("$bench" --help | sed -n 's/.* and workloads \(.*\)\.$/\1/p' | tr , ' ')
all_workloads=$("$bench" --list-workloads)
[ "$(echo "$all_workloads" | wc -l)" -eq 21 ] || { echo "smoke: expected the uncontended loop and a grid of 20 workloads, got: $(echo $all_workloads)" >&2; exit 1; }
[ -n "$locks" ] && [ -n "$workloads" ] || { echo "smoke: no locks or workloads listed" >&2; exit 1; }
echo "smoke: locks: $(echo $locks)"
echo "smoke: workloads: $(echo $workloads)"

awk -F, -v locks="$(echo $locks)" -v workloads="$(echo $workloads)" '
function fail(message) { printf "smoke: %s:%d: %s\n", FILENAME, FNR, message > "/dev/stderr"; bad = 1 }
function number(i, name, optional) {
    if ($i == "" && optional) return 1
    if ($i !~ /^[0-9]+(\.[0-9]+)?$/) { fail(name " is not a non-negative number: \"" $i "\""); return 0 }
    return 1
}
NR == 1 {
    expected = "lock,workload,threads,rounds,ops_per_sec_median,ops_per_sec_min,ops_per_sec_max," \
               "ops_per_sec_q1,ops_per_sec_q3,ns_per_op_median,jain,count_min,count_max," \
               "wait_p50_ns,wait_p99_ns,wait_max_ns,contention,contended_share,mutual_exclusion," \
               "fast_path,far_rounds,switches_per_sec"
    if ($0 != expected) fail("unexpected header: " $0)
    next
}
{
    if (NF != 22) { fail("expected 22 fields, got " NF); next }
    seen[$1 "," $2] = 1
    contended = $2 != "uncontended"
    number(3, "threads", 0); number(4, "rounds", 0)
    for (i = 5; i <= 10; i++) number(i, "column " i, 0)
    if ($5 + 0 <= 0) fail("throughput is not positive: " $5)
    if (!($6 + 0 <= $8 + 0 && $8 + 0 <= $5 + 0 && $5 + 0 <= $9 + 0 && $9 + 0 <= $7 + 0))
        fail("throughput median, quartiles, min and max out of order")
    if (number(11, "jain", 0) && ($11 + 0 <= 0 || $11 + 0 > 1)) fail("jain outside (0, 1]: " $11)
    number(12, "count_min", 0); number(13, "count_max", 0)
    if ($12 + 0 > $13 + 0) fail("count_min above count_max")
    for (i = 14; i <= 16; i++) number(i, "wait column " i, !contended)
    if (contended && ($14 == "" || $15 == "" || $16 == "")) fail("a contended row lacks wait times")
    if (contended && !($14 + 0 <= $15 + 0 && $15 + 0 <= $16 + 0)) fail("waits not ordered p50 <= p99 <= max")
    number(17, "contention", 1); number(18, "contended_share", 1)
    if ($1 == "fastmutex" && contended && $17 == "") fail("fastmutex row lacks its contention count")
    if ($19 != "ok") fail("mutual exclusion check: " $19)
    if ($20 != "inline" && $20 != "library call") fail("unknown fast path kind: " $20)
    if (number(21, "far_rounds", 0) && ($21 + 0 > $4 + 0 || (!contended && $21 + 0 != 0)))
        fail("far_rounds outside 0..rounds, or set for the uncontended workload: " $21)
    if (number(22, "switches_per_sec", !contended) && (contended != ($22 != "")))
        fail("switches_per_sec must be there for a contended row only: \"" $22 "\"")
    rows++
}
END {
    n = split(locks, lock_list, " "); m = split(workloads, workload_list, " ")
    for (i = 1; i <= n; i++)
        for (j = 1; j <= m; j++)
            if (!((lock_list[i] "," workload_list[j]) in seen)) {
                printf "smoke: no row for lock %s in workload %s\n", lock_list[i], workload_list[j] > "/dev/stderr"
                bad = 1
            }
    if (bad) exit 1
    printf "smoke: %d rows, every lock in every workload, all well-formed\n", rows
}' "$csv"

# runs.csv: one row per run, as many as the rounds of every cell of
# results.csv, each with a positive throughput; the CPU probe's time is
# left empty for the uncontended workload only (or where it cannot run).
awk -F, -v cells_csv="$csv" '
BEGIN { while ((getline line < cells_csv) > 0) if (n++ > 0) { split(line, f, ","); expected += f[4] } }
NR == 1 {
    if ($0 != "lock,workload,threads,round,ops_per_sec,ns_per_op,jain,count_min,count_max,wait_p50_ns,wait_p99_ns,wait_max_ns,contention,line_ns,switches_per_sec") {
        print "smoke: runs.csv: unexpected header: " $0 > "/dev/stderr"; bad = 1
    }
    next
}
{
    rows++
    if (NF != 15 || !($5 + 0 > 0)) { print "smoke: runs.csv:" NR ": malformed run: " $0 > "/dev/stderr"; bad = 1 }
    if ($2 == "uncontended" && $14 != "") { print "smoke: runs.csv:" NR ": a probe time for the uncontended workload" > "/dev/stderr"; bad = 1 }
    if (($2 == "uncontended") != ($15 == "")) { print "smoke: runs.csv:" NR ": switches_per_sec must be there for a contended run only" > "/dev/stderr"; bad = 1 }
}
END {
    if (rows != expected) { printf "smoke: runs.csv has %d runs, results.csv counts %d\n", rows, expected > "/dev/stderr"; bad = 1 }
    if (bad) exit 1
    printf "smoke: runs.csv: %d runs, one per round of every cell\n", rows
}' "$dir/runs.csv"

# verdicts.csv: one row per contended cell of the run (3 workloads x 3
# thread counts), each with a verdict that follows from its interval.
awk -F, '
NR == 1 { next }
{
    rows++
    ratio = $6 + 0; low = $7 + 0; high = $8 + 0
    if (!(low <= ratio && ratio <= high)) { print "smoke: verdicts.csv:" NR ": ratio outside its interval: " $0 > "/dev/stderr"; bad = 1 }
    expected = low > 1 ? "ahead" : high < 1 ? "behind" : "tie"
    if ($9 != expected) { print "smoke: verdicts.csv:" NR ": verdict " $9 ", the interval says " expected > "/dev/stderr"; bad = 1 }
}
END {
    if (rows != 9) { printf "smoke: verdicts.csv has %d cells, expected 9\n", rows > "/dev/stderr"; bad = 1 }
    if (bad) exit 1
    printf "smoke: verdicts.csv: %d cells, each verdict as its interval says\n", rows
}' "$dir/verdicts.csv"
