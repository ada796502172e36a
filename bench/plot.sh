#!/bin/sh
# Draws the charts of a fmx-bench run against the thread count, one panel per
# contended workload, one line per lock: DIR/throughput.png (acquisitions per
# second, error bars spanning the rounds' first to third quartile),
# DIR/p99.png and DIR/maxwait.png (99th-percentile and longest wait), and
# DIR/fairness.png (Jain's index); and DIR/heatmap.png (bench/heatmap.sh)
# of every cell's verdict.  DIR is what `fmx-bench --out DIR`
# wrote.  Needs gnuplot (Debian package gnuplot-nox).
set -eu

. "$(dirname "$0")/plot_setup.sh"
plot_setup plot.sh results.csv "$@"

# The locks and contended workloads, in the order of the CSV.
locks=$(awk -F, 'NR > 1 && !seen[$1]++ { printf "%s ", $1 }' "$csv")
workloads=$(awk -F, 'NR > 1 && $2 != "uncontended" && !seen[$2]++ { printf "%s ", $2 }' "$csv")
if [ -z "$workloads" ]; then
    echo "plot.sh: $csv has no contended workload to draw" >&2
    exit 2
fi
# The machine line for the title: CPU model and date, from machine.txt.
title="fmx-bench"
if [ -r "$dir/machine.txt" ]; then
    cpu=$(sed -n 's/^cpu: //p' "$dir/machine.txt")
    date=$(sed -n 's/^date: //p' "$dir/machine.txt")
    title="fmx-bench on $cpu, $date"
fi
count=$(echo $workloads | wc -w)
columns=2
rows=$(( (count + columns - 1) / columns ))

# One colour per lock, in CSV order: fastmutex first, in black and thicker;
# its variant second, in grey and dashed; then the peers.
colors="black gray50 #1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #17becf #bcbd22 #7f7f7f"

# One panel per workload.  The rows of one lock and workload are picked out
# by awk, so that each line joins only its own points.
draw() { # output file, y label, y column expression, error bars (yes/no), y scale (log/linear)
    gnuplot <<EOF
set terminal pngcairo size 1400,$((rows * 450 + 60)) font ",10"
set output "$dir/$1"
set termoption noenhanced
set datafile separator ","
set logscale x 2
$( [ "$5" = log ] && echo "set logscale y 10" || echo "set yrange [0:1.05]" )
set grid
set key outside right top
set xlabel "threads (2 cores)"
set ylabel "$2"
set multiplot layout $rows,$columns title "$title"
locks = "$locks"
colors = "$colors"
do for [wl in "$workloads"] {
    set title wl
    plot for [i = 1:words(locks)] \
        sprintf("< awk -F, '\$1 == \"%s\" && \$2 == \"%s\"' $csv", word(locks, i), wl) \
        using 3:$3 with $( [ "$4" = yes ] && echo yerrorlines || echo linespoints ) \
        linecolor rgb word(colors, (i - 1) % words(colors) + 1) \
        linewidth (i == 1 ? 3 : 1) dashtype 1 + (i == 2) title word(locks, i)
}
unset multiplot
EOF
}

# Throughput with the rounds' quartiles as error bars; waits floored at 1 ns
# so that a zero does not break the log scale.
draw throughput.png "acquisitions per second (median of rounds)" '5:8:9' yes log
draw p99.png "p99 wait, ns (median of rounds)" '($15 > 1 ? $15 : 1)' no log
draw maxwait.png "max wait, ns (median of rounds)" '($16 > 1 ? $16 : 1)' no log
draw fairness.png "Jain's index over per-thread acquisitions (median of rounds)" 11 no linear
echo "plot.sh: wrote $dir/throughput.png, p99.png, maxwait.png and fairness.png"
# The verdicts over the grid, from verdicts.csv.
sh "$(dirname "$0")/heatmap.sh" "$dir"
