#!/bin/sh
# The timeline (FASTMUTEX_TRACE=FILE): a Chrome trace with one complete
# event per hold and per wait, written at exit and also when the library
# aborts the process on a misuse report; scripts/timeline.sh draws it.
# usage: trace_test.sh FIXTURE SOURCE_DIR WORK_DIR
set -eu
ulimit -c 0 # the misuse run aborts: no core file
fixture=$1
src=$2
dir=$3
mkdir -p "$dir"
rm -f "$dir/trace.json" "$dir/abort.json" "$dir/timeline.png"
FASTMUTEX_TRACE="$dir/trace.json" "$fixture"
python3 - "$dir/trace.json" <<'PY'
import json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
spans = [e for e in events if e["ph"] == "X"]
def check(what, ok):
    if not ok:
        sys.exit(f"trace_test.sh: {what}")
for e in spans:
    check(f"event lacks a field: {e}", all(k in e for k in ("name", "cat", "pid", "tid", "ts", "dur", "args")))
    check(f"negative duration: {e}", e["dur"] >= 0)
holds = [e for e in spans if e["cat"] == "hold"]
waits = [e for e in spans if e["cat"] == "wait"]
check("110 holds (100 of hot, 10 of cold)", len(holds) == 110)
check("holds named by mutex", sum(e["name"] == "hold hot" for e in holds) == 100 and
      sum(e["name"] == "hold cold" for e in holds) == 10)
check("hot held 200 us or more each time", all(e["dur"] >= 200 for e in holds if e["name"] == "hold hot"))
check("waits for hot only", waits and all(e["name"] == "wait hot" for e in waits))
check("two threads hold hot", len({e["tid"] for e in holds if e["name"] == "hold hot"}) == 2)
print(f"trace: {len(holds)} holds, {len(waits)} waits")
PY
# A FAST_MUTEX's spans name it by its own address, not by the fast_mutex_t
# inside it.
wdm=$(FASTMUTEX_TRACE="$dir/trace-wdm.json" "$fixture" wdm)
python3 - "$dir/trace-wdm.json" "${wdm#wdm=}" <<'PY'
import json, sys
spans = [e for e in json.load(open(sys.argv[1]))["traceEvents"] if e["ph"] == "X" and e["name"] == "hold wdm"]
if len(spans) != 5 or any(int(e["args"]["mutex"], 16) != int(sys.argv[2], 16) for e in spans):
    sys.exit("trace_test.sh: the FAST_MUTEX's 5 holds do not name %s: %r" % (sys.argv[2], spans))
print("trace: the FAST_MUTEX's 5 holds name its own address")
PY
# The abort path: the trace is written before the process dies.
status=0
FASTMUTEX_TRACE="$dir/abort.json" "$fixture" misuse 2>"$dir/abort.err" || status=$?
if [ "$status" -eq 0 ] || ! grep -q "release of a free mutex" "$dir/abort.err"; then
    cat "$dir/abort.err"
    echo "trace_test.sh: the misuse did not abort with its report (exit $status)" >&2
    exit 1
fi
python3 -c 'import json, sys; e = json.load(open(sys.argv[1]))["traceEvents"]; sys.exit(0 if sum(x.get("cat") == "hold" for x in e) == 110 else 1)' \
    "$dir/abort.json" || { echo "trace_test.sh: no complete trace after the abort" >&2; exit 1; }
echo "trace after an abort: written"
if command -v gnuplot >/dev/null 2>&1; then
    sh "$src/scripts/timeline.sh" "$dir/trace.json" "$dir/timeline.png"
    head -c 8 "$dir/timeline.png" | od -An -c | grep -q "P   N   G" ||
        { echo "trace_test.sh: timeline.sh wrote no PNG" >&2; exit 1; }
fi
sh "$src/scripts/timeline.sh" "$dir/trace.json.missing" "$dir/x.png" 2>"$dir/bad.err" && exit 1
grep -q "^timeline.sh: cannot read" "$dir/bad.err" || { cat "$dir/bad.err"; exit 1; }
echo "timeline.sh: PNG drawn; a missing trace is one line on stderr"
