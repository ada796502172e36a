#!/bin/sh
# Draws the charts from the smoke test's results and checks that every PNG
# file exists and is a PNG file.  Exit 77 (skipped) without gnuplot.
set -eu
plot=$1
dir=$2
command -v gnuplot >/dev/null 2>&1 || { echo "plot: gnuplot is not installed; skipped"; exit 77; }
charts="throughput.png p99.png maxwait.png fairness.png heatmap.png"
for chart in $charts; do rm -f "$dir/$chart"; done
sh "$plot" "$dir"
for chart in $charts; do
    f=$dir/$chart
    [ -s "$f" ] || { echo "plot: $f was not written" >&2; exit 1; }
    magic=$(od -An -c -N4 "$f" | tr -d ' ')
    [ "$magic" = "211PNG" ] || { echo "plot: $f is not a PNG file ($magic)" >&2; exit 1; }
done
echo "plot: all charts written: $charts"
