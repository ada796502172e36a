#!/usr/bin/env python3
# verdicts.py RUNS.csv LOCK [BASE]: verdict counts of LOCK against the
# strongest peer (as bench/verdict.c: median of per-round ratios, percentile
# bootstrap), and, with BASE, paired LOCK/BASE verdicts.
import csv, sys, random, statistics, collections, math
path, lock = sys.argv[1], sys.argv[2]
base = sys.argv[3] if len(sys.argv) > 3 else None
peers = {'absl','nsync','parking_lot','pthread-adaptive','pthread','futex3','ck-ticket','ck-mcs'}
runs = collections.defaultdict(lambda: collections.defaultdict(dict))
jain = collections.defaultdict(dict); wmax = collections.defaultdict(dict)
for r in csv.DictReader(open(path)):
    if r['workload'] == 'uncontended': continue
    runs[(r['workload'], int(r['threads']))][r['lock']][int(r['round'])] = float(r['ops_per_sec'])
rng = random.Random(1)
def boot(v):
    ms = sorted(statistics.median(rng.choices(v, k=len(v))) for _ in range(4000))
    return statistics.median(v), ms[100], ms[3899]
def kind(lo, hi): return 'ahead' if lo > 1 else 'behind' if hi < 1 else 'tie'
cnt = collections.Counter(); pcnt = collections.Counter(); below = 0; worst = []
byT = collections.defaultdict(collections.Counter)
for cell, L in runs.items():
    ps = [p for p in L if p in peers]
    best = max(ps, key=lambda p: statistics.median(L[p].values()))
    rs = sorted(L[lock])
    m, lo, hi = boot([L[lock][r] / L[best][r] for r in rs])
    k = kind(lo, hi); cnt[k] += 1; byT[cell[1]][k] += 1
    if m < 0.9: below += 1
    worst.append((m, lo, hi, cell, best))
    if base:
        pm, plo, phi = boot([L[lock][r] / L[base][r] for r in rs])
        pcnt[kind(plo, phi)] += 1
print(lock, 'vs strongest peer:', dict(cnt), 'below 0.90x:', below)
for t in sorted(byT): print('  threads', t, dict(byT[t]))
if base: print(lock, 'paired vs', base, dict(pcnt))
for w in sorted(worst)[:8]: print('  %.3f [%.3f, %.3f] %s %d %s' % (w[0], w[1], w[2], w[3][0], w[3][1], w[4]))
