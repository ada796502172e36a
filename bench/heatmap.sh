#!/bin/sh
# Draws DIR/heatmap.png from DIR/verdicts.csv (fmx-bench --out DIR): the
# ratio fastmutex / strongest peer in every cell of the grid, one panel per
# thread count, critical section against private work; each cell shows its
# ratio and its verdict (+ ahead, = tie, - behind: the 95% interval of the
# paired ratios above, around or below 1).  The title counts the verdicts
# and gives the uncontended figures from DIR/table.txt.  Needs gnuplot.
set -eu

. "$(dirname "$0")/plot_setup.sh"
plot_setup heatmap.sh verdicts.csv "$@"
if [ "$(awk 'END { print NR }' "$csv")" -lt 2 ]; then
    echo "heatmap.sh: $csv has no cells to draw" >&2
    exit 2
fi

data=$(mktemp)
trap 'rm -f "$data"' EXIT
# One line per cell: thread count, the column and row of its grid values
# (private work, critical section, by rank), ratio, label.
awk -F, '
NR == 1 { next }
{
    n++; threads[n] = $4; cs[n] = $2; pw[n] = $3; ratio[n] = $6; verdict[n] = $9
    if (!($2 in cs_seen)) { cs_seen[$2] = 1; cs_list[++ncs] = $2 + 0 }
    if (!($3 in pw_seen)) { pw_seen[$3] = 1; pw_list[++npw] = $3 + 0 }
}
function rank(list, count, value,   i, r) {
    r = 0
    for (i = 1; i <= count; i++) if (list[i] < value + 0) r++
    return r
}
END {
    for (i = 1; i <= n; i++) {
        mark = verdict[i] == "ahead" ? "+" : verdict[i] == "behind" ? "-" : "="
        printf "%s %d %d %.4f %.2f%s\n", threads[i], rank(pw_list, npw, pw[i]),
            rank(cs_list, ncs, cs[i]), ratio[i], ratio[i], mark
    }
}' "$csv" > "$data"

threads=$(awk -F, 'NR > 1 && !seen[$4]++ { printf "%s ", $4 }' "$csv")
cs_values=$(awk -F, 'NR > 1 && !seen[$2]++ { printf "%s ", $2 }' "$csv" | tr ' ' '\n' | sort -n | tr '\n' ' ')
pw_values=$(awk -F, 'NR > 1 && !seen[$3]++ { printf "%s ", $3 }' "$csv" | tr ' ' '\n' | sort -n | tr '\n' ' ')
counts=$(awk -F, 'NR > 1 { n[$9]++; cells++ } END { printf "%d cells: ahead %d, tie %d, behind %d", cells, n["ahead"], n["tie"], n["behind"] }' "$csv")
uncontended=""
if [ -r "$dir/table.txt" ]; then
    uncontended=$(sed -n 's/^uncontended: fastmutex \([0-9.]*\) ns\/pair; \([0-9.]*x\) futex3.s time.*; \([0-9.]*x\) pthread.s.*/uncontended: \1 ns per pair, \2 futex3, \3 pthread/p' "$dir/table.txt")
fi
panels=$(echo $threads | wc -w)
columns=4
rows=$(( (panels + columns - 1) / columns ))

label_of() { # ns -> 0, 25ns, 1us, 10us
    awk -v ns="$1" 'BEGIN { if (ns >= 1000) printf "%gus", ns / 1000; else if (ns > 0) printf "%gns", ns; else printf "0" }'
}
xtics=""; i=0
for v in $pw_values; do xtics="$xtics\"$(label_of "$v")\" $i,"; i=$((i + 1)); done
ytics=""; i=0
for v in $cs_values; do ytics="$ytics\"$(label_of "$v")\" $i,"; i=$((i + 1)); done
ncols=$(echo $pw_values | wc -w)
nrows=$(echo $cs_values | wc -w)

gnuplot <<EOF
set terminal pngcairo size 1600,$((rows * 430 + 90)) font ",10"
set output "$dir/heatmap.png"
set termoption noenhanced
set multiplot layout $rows,$columns title "fastmutex / strongest peer, median of per-round ratios (+ ahead, = tie, - behind by the 95% interval)\n$counts.  $uncontended"
set palette defined (0.5 "#b2182b", 0.9 "#f4a582", 1.0 "#f7f7f7", 1.1 "#92c5de", 1.5 "#2166ac")
set cbrange [0.5:1.5]
set xrange [-0.5:$ncols - 0.5]
set yrange [-0.5:$nrows - 0.5]
set xtics (${xtics%,})
set ytics (${ytics%,})
set xlabel "private work"
set ylabel "critical section"
unset key
unset colorbox
do for [t in "$threads"] {
    set title sprintf("%s threads", t)
    plot sprintf("< awk '\$1 == %s' $data", t) using 2:3:(0.5):(0.5):4 \
             with boxxyerror fillstyle solid 1.0 noborder linecolor palette, \
         '' using 2:3:5 with labels font ",11"
}
unset multiplot
EOF
echo "heatmap.sh: wrote $dir/heatmap.png"
