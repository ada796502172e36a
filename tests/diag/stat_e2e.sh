#!/bin/bash
# End-to-end tests of `fmx stat` against stat_fixture (run with
# FASTMUTEX_STATS=on), one ctest test per case:
#
#   stat_e2e.sh CASE FMX FIXTURE FIXTURE_SOURCE
#
# live    the text view: the three mutexes, their counts, sorted by total
#         wait, sites named by file:line, the FAST_MUTEX by its own address
# json    --json parses, and agrees row for row with the text view
# errors  bad PID, no such process, a fastmutex process without stats, a
#         process that does not use fastmutex: one line, non-zero exit, and
#         with --json a valid document with an "error" member
# core    the same profile read from a gcore of the fixture
# fork    a forked child gets a table of its own, starting from the counts
#         it inherited, and keeps no descriptor of its parent's
# Exit status: 0 pass, 1 fail, 77 skipped.
set -u

CASE=$1
FMX=$2
FIXTURE=$3
SOURCE=$4

. "$(dirname "$0")/e2e_lib.sh"

# Starts the fixture with the environment given (VAR=VALUE ... or -u VAR,
# as env(1) takes them) and FIXTURE_ARGS, and waits for its ready line:
# F_pid, F_hot, F_warm, F_fast, F_child.
start_fixture() {
    launch_fixture env "$@" "$FIXTURE" ${FIXTURE_ARGS:-}
}

# Checks the text view in $1 against what the fixture did.
check_text() {
    python3 - "$1" "$F_hot" "$F_warm" "$F_fast" "$(line_of FMX-STAT-HOT)" "$(line_of FMX-STAT-WARM)" \
        "$(line_of 'FMX-STAT-FAST ')" "$(line_of FMX-STAT-FAST-TRY)" "$(line_of FMX-STAT-FAST-UNSAFE)" <<'PY'
import re, sys
text, hot, warm, fast, hot_line, warm_line, fast_line, try_line, unsafe_line = sys.argv[1:]
lines = text.splitlines()
def fail(why):
    print(text)
    sys.exit("check_text: " + why)
if not re.match(r"Contention profile of process \d+ \(stat_fixture\), by total wait; times in microseconds\.$", lines[0]):
    fail("title")
if not lines[1].split()[:2] == ["Acquired", "Contended"]:
    fail("header")
rows = [re.split(r"\s{2,}", l.strip()) for l in lines[2:] if not re.match(r"\d+ rows?\.$", l)]
acq = {"hot": 0, "warm": 0, "fast": 0}
# The FAST_MUTEX by its own address, as fmx thread names it (not the
# fast_mutex_t inside it, which keys its rows).
shown = {"hot": hot + " (hot)", "warm": warm + " (warm)", "fast": "FAST_MUTEX " + fast + " (fast)"}
for r in rows:
    name = next((n for n, s in shown.items() if r[6] == s or r[6].startswith(s + " ")), None)
    if name is None:
        fail("a row of none of the mutexes: %r" % r)
    acq[name] += int(r[0])
if acq != {"hot": 103, "warm": 40, "fast": 22}:
    fail("acquisitions %r, want hot 103, warm 40 and fast 22" % acq)
for line, count in ((fast_line, 20), (try_line, 1), (unsafe_line, 1)):
    if not any(r[6].startswith("FAST_MUTEX " + fast) and r[7].endswith("stat_fixture.c:" + line)
               and int(r[0]) == count for r in rows):
        fail("no FAST_MUTEX row of %d acquisitions at stat_fixture.c:%s" % (count, line))
if not rows[0][6].startswith(hot + " (hot)"):
    fail("the first row is not hot, waited for most")
waits = [float(r[2]) for r in rows]
if waits != sorted(waits, reverse=True):
    fail("not sorted by total wait")
if not any(r[7].endswith("stat_fixture.c:" + hot_line) and int(r[0]) == 100 for r in rows):
    fail("no row of 100 acquisitions at stat_fixture.c:" + hot_line)
if not any(r[7].endswith("stat_fixture.c:" + warm_line) and int(r[0]) == 40 for r in rows):
    fail("no row of 40 acquisitions at stat_fixture.c:" + warm_line)
if not any(r[6].startswith(hot) and int(r[1]) >= 2 and float(r[3]) >= 50000 for r in rows):
    fail("no hot row with the two long waits for main (>= 50 ms)")
if not any(r[6].startswith(hot) and float(r[5]) >= 1000 for r in rows):
    fail("no hot row holding it 1 ms or more")
print("text: %d rows, hot 103, warm 40 and fast 22 acquisitions, hot first, sorted by total wait" % len(rows))
PY
}

case_live() {
    start_fixture FASTMUTEX_STATS=on
    run_fmx stat "$F_pid"
    [[ $RC -eq 0 && -z $ERR ]] || fail "fmx stat exited $RC: $ERR"
    echo "$OUT"
    check_text "$OUT" || exit 1
}

case_json() {
    start_fixture FASTMUTEX_STATS=on
    run_fmx stat "$F_pid"
    [[ $RC -eq 0 ]] || fail "fmx stat exited $RC: $ERR"
    local text=$OUT
    run_fmx stat --json "$F_pid"
    [[ $RC -eq 0 && -z $ERR ]] || fail "fmx stat --json exited $RC: $ERR"
    python3 -m json.tool <<<"$OUT" >/dev/null || fail "not JSON: $OUT"
    python3 - "$text" "$OUT" "$F_pid" <<'PY'
import json, re, sys
text, doc, pid = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
def fail(why):
    print(json.dumps(doc, indent=1))
    sys.exit("json: " + why)
if doc["pid"] != pid or doc["process"] != "stat_fixture" or doc["core"] is not False:
    fail("pid, process or core")
rows = [re.split(r"\s{2,}", l.strip()) for l in text.splitlines()[2:] if not re.match(r"\d+ rows?\.$", l)]
if len(rows) != len(doc["rows"]) or doc["count"] != len(rows):
    fail("%d rows in the text, %d in JSON" % (len(rows), len(doc["rows"])))
for t, j in zip(rows, doc["rows"]):
    us = lambda ns: "%d.%d" % (ns // 1000, ns % 1000 // 100)
    want = [str(j["acquisitions"]), str(j["contended"]), us(j["wait_total_ns"]), us(j["wait_max_ns"]),
            us(j["hold_total_ns"]), us(j["hold_max_ns"])]
    if t[:6] != want:
        fail("row %r against %r" % (t, j))
    kind = {"FAST_MUTEX": "FAST_MUTEX ", "fast_mutex_t": ""}[j["kind"]]
    if not t[6].startswith(kind + j["mutex"] + " (" + j["mutex_name"] + ")"):
        fail("mutex %r against %r" % (t[6], j))
    if j["site_file"] is None or not t[7].endswith("%s:%d" % (j["site_file"].rsplit("/", 1)[-1], j["site_line"])):
        fail("site %r against %r" % (t[7], j))
print("json: %d rows, the same as the text view" % len(rows))
PY
}

# fmx stat "$@" fails with one line on stderr containing $want, and with
# --json prints a JSON object with an "error" member.
expect_error() {
    local want=$1
    shift
    run_fmx stat "$@"
    [[ $RC -ne 0 ]] || fail "fmx stat $* exited 0"
    [[ -z $OUT ]] || fail "fmx stat $* printed on stdout: $OUT"
    [[ $(wc -l <<<"$ERR") -eq 1 && $ERR == *"$want"* ]] || fail "fmx stat $*: stderr is not one line with '$want': $ERR"
    echo "fmx stat $*: $ERR"
    run_fmx stat --json "$@"
    [[ $RC -ne 0 ]] || fail "fmx stat --json $* exited 0"
    python3 -c 'import json, sys; d = json.loads(sys.argv[1]); assert isinstance(d["error"], str) and d["error"]' "$OUT" ||
        fail "fmx stat --json $*: no JSON error document: $OUT"
}

case_errors() {
    run_fmx stat abc
    [[ $RC -eq 2 && $ERR == "fmx stat: 'abc' is not a process id" ]] || fail "bad pid: $RC $ERR"
    run_fmx stat
    [[ $RC -eq 2 && $ERR == *usage* ]] || fail "no pid: $RC $ERR"
    run_fmx stat 1 2
    [[ $RC -eq 2 && $ERR == *usage* ]] || fail "two pids: $RC $ERR"
    run_fmx stat --json abc
    [[ $RC -eq 2 ]] || fail "--json with a bad pid exited $RC"
    python3 -c 'import json, sys; assert json.loads(sys.argv[1])["error"]' "$OUT" ||
        fail "--json with a bad pid: no JSON error document: $OUT"
    expect_error "no process 999999999" 999999999
    start_fixture FASTMUTEX_STATS=off
    expect_error "process $F_pid does not record a contention profile; start it with FASTMUTEX_STATS=on" "$F_pid"
    # Unset, as most programs run: no table is made at all.
    start_fixture -u FASTMUTEX_STATS
    expect_error "process $F_pid does not record a contention profile; start it with FASTMUTEX_STATS=on" "$F_pid"
    sleep 120 &
    FIXTURE_PIDS+=($!)
    expect_error "process $! does not record a contention profile" "$!"
}

case_core() {
    command -v gcore >/dev/null || { echo "gcore (gdb) is not installed"; exit 77; }
    start_fixture FASTMUTEX_STATS=on
    run_fmx stat "$F_pid"
    local live=$OUT
    gcore -o "$WORK/core" "$F_pid" >"$WORK/gcore.log" 2>&1 || fail "gcore failed: $(cat "$WORK/gcore.log")"
    run_fmx stat --core "$WORK/core.$F_pid"
    [[ $RC -eq 0 && -z $ERR ]] || fail "fmx stat --core exited $RC: $ERR"
    echo "$OUT"
    [[ ${OUT#*$'\n'} == "${live#*$'\n'}" ]] || fail "the core's rows differ from the live ones: $live"
    check_text "${OUT/core of process/process}" || exit 1
    # A core without a profile: one line, non-zero.
    kill -KILL "$F_pid"
    start_fixture FASTMUTEX_STATS=off
    gcore -o "$WORK/plain" "$F_pid" >"$WORK/gcore.log" 2>&1 || fail "gcore failed: $(cat "$WORK/gcore.log")"
    run_fmx stat --core "$WORK/plain.$F_pid"
    [[ $RC -ne 0 && $ERR == *"holds no contention profile"* ]] || fail "core without stats: $RC $ERR"
}

# The acquisitions of mutex $2 in the JSON profile of process $1.
acquisitions_of() {
    "$FMX" stat --json "$1" | python3 -c 'import json, sys; print(sum(r["acquisitions"] for r in json.load(sys.stdin)["rows"] if r["mutex_name"] == sys.argv[1]))' "$2"
}

case_fork() {
    FIXTURE_ARGS=fork start_fixture FASTMUTEX_STATS=on
    FIXTURE_PIDS+=("$F_child")
    local child_warm
    for _ in $(seq 300); do
        child_warm=$(acquisitions_of "$F_child" warm)
        [[ $child_warm == 45 ]] && break
        sleep 0.1
    done
    [[ $child_warm == 45 ]] || fail "child: warm acquired $child_warm times, want 40 inherited + 5"
    [[ $(acquisitions_of "$F_child" hot) == 103 ]] || fail "child: hot's inherited 103 acquisitions are not there"
    [[ $(acquisitions_of "$F_pid" warm) == 40 ]] || fail "parent: the child's acquisitions reached its table"
    local tables
    tables=$(ls -l /proc/"$F_child"/fd | grep -c 'memfd:fastmutex-stats')
    [[ $tables == 1 ]] || fail "child has $tables fastmutex-stats descriptors, want its own only"
    echo "fork: child 45 warm (40 inherited), parent 40; one table descriptor in the child"
}

"case_$CASE"
