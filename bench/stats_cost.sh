#!/bin/sh
# What FASTMUTEX_STATS costs on the uncontended lock+unlock pair: fmx-bench's
# uncontended cell run in PAIRS pairs of processes, one with the profile off
# and one with FASTMUTEX_STATS=on (the order alternating from pair to pair,
# so that a drifting machine does not favour either), each the median of
# its rounds.  Prints each pair, the median ns of each side, and the median
# of the paired ratios on/off with a 95% percentile bootstrap interval (4000
# resamples, fixed seed), as fmx-bench computes its own cell ratios.
# usage: bench/stats_cost.sh FMX_BENCH [PAIRS (10)] [ROUNDS (5)]
set -eu
bench=$1
pairs=${2:-10}
rounds=${3:-5}
cell() { # prints the ns/pair of one process; $1 is the setting
    FASTMUTEX_STATS=$1 "$bench" --workloads uncontended --locks fastmutex --rounds "$rounds" --duration 0.1 |
        awk '$1 == "fastmutex" && $2 ~ /^[0-9.]+$/ { print $2; exit }'
}
i=1
while [ "$i" -le "$pairs" ]; do
    if [ $((i % 2)) -eq 1 ]; then
        off=$(cell off); on=$(cell on)
    else
        on=$(cell on); off=$(cell off)
    fi
    echo "$off $on"
    i=$((i + 1))
done | python3 -c '
import random, statistics, sys
pairs = [tuple(map(float, line.split())) for line in sys.stdin]
for off, on in pairs:
    print("pair: off %.2f ns, on %.2f ns, on/off %.2f" % (off, on, on / off))
ratios = [on / off for off, on in pairs]
rng = random.Random(1)
boot = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(4000))
print("off: median %.2f ns a pair; on: median %.2f ns a pair (%d pairs of processes)"
      % (statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs), len(pairs)))
print("on/off: median %.2fx, 95%% interval [%.2f, %.2f]" % (statistics.median(ratios), boot[100], boot[3899]))
'
