#!/bin/sh
# Draws a timeline PNG from a trace written with FASTMUTEX_TRACE=TRACE: one
# row per thread (named), holds as solid bars, waits as light bars, time in
# milliseconds from the first event.  Perfetto or chrome://tracing open the
# same file interactively.  Needs python3 and gnuplot (gnuplot-nox).
# usage: scripts/timeline.sh TRACE.json OUT.png [FROM_MS TO_MS]
set -eu
if [ $# -ne 2 ] && [ $# -ne 4 ]; then
    echo "usage: scripts/timeline.sh TRACE.json OUT.png [FROM_MS TO_MS]" >&2
    exit 2
fi
trace=$1
png=$2
from=${3:-}
to=${4:-}
if [ ! -r "$trace" ]; then
    echo "timeline.sh: cannot read $trace" >&2
    exit 2
fi
if ! command -v gnuplot >/dev/null 2>&1; then
    echo "timeline.sh: gnuplot is not installed (Debian package gnuplot-nox)" >&2
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The trace as rows "kind row start_ms end_ms", and the rows' labels.
python3 - "$trace" "$work" <<'PY' || exit 1
import json, sys
try:
    events = json.load(open(sys.argv[1]))["traceEvents"]
except (OSError, ValueError, KeyError, TypeError) as e:
    sys.exit(f"timeline.sh: {sys.argv[1]} is not a Chrome trace: {e}")
spans = [e for e in events if isinstance(e, dict) and e.get("ph") == "X"]
if not spans:
    sys.exit(f"timeline.sh: {sys.argv[1]} has no wait or hold events")
t0 = min(float(e["ts"]) for e in spans)
rows = {}
for e in spans:
    tid = e.get("tid")
    if tid not in rows:
        rows[tid] = (len(rows), (e.get("args") or {}).get("thread") or str(tid))
with open(f"{sys.argv[2]}/spans.dat", "w") as out:
    for e in spans:
        start = (float(e["ts"]) - t0) / 1000
        end = start + float(e["dur"]) / 1000
        out.write(f'{e.get("cat") == "hold" and 1 or 0} {rows[e["tid"]][0]} {start:.6f} {end:.6f}\n')
with open(f"{sys.argv[2]}/labels.gp", "w") as out:
    tics = ", ".join(f'"{name} ({tid})" {row}'.replace("\\", "") for tid, (row, name) in rows.items())
    out.write(f"set ytics ({tics})\nset yrange [-0.6:{len(rows) - 0.4}]\n")
PY

xrange=""
if [ -n "$from" ]; then
    xrange="set xrange [$from:$to]"
fi
gnuplot <<GNUPLOT
set terminal pngcairo size 1200,360 font ",10"
set output "$png"
set title "fastmutex timeline: $(basename "$trace")"
set xlabel "time (ms)"
load "$work/labels.gp"
$xrange
set style fill solid 1.0 noborder
set key outside right top
plot "$work/spans.dat" using (\$1 == 0 ? (\$3 + \$4) / 2 : 1/0):2:(\$3):(\$4):(\$2 - 0.35):(\$2 + 0.35) \
         with boxxyerrorbars lc rgb "#f4a582" title "wait", \
     "$work/spans.dat" using (\$1 == 1 ? (\$3 + \$4) / 2 : 1/0):2:(\$3):(\$4):(\$2 - 0.25):(\$2 + 0.25) \
         with boxxyerrorbars lc rgb "#2166ac" title "hold"
GNUPLOT
echo "timeline.sh: wrote $png"
