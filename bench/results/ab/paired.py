#!/usr/bin/env python3
# paired.py RUNS.csv|DIR: for a run with fastmutex and fastmutex-x side by
# side, each cell's median over the rounds of the per-round ratios
# fastmutex-x / fastmutex (x/fm), fastmutex / the strongest peer of
# the cell by median (fm/pk) and fastmutex-x / that peer (x/pk); then their
# geometric means and how many cells fall below 0.90x.
import csv, sys, statistics, collections, math, os
path = sys.argv[1]
if os.path.isdir(path):
    path = os.path.join(path, 'runs.csv')
runs = collections.defaultdict(dict)  # (wl,thr) -> lock -> {round: ops}
for r in csv.DictReader(open(path)):
    if r['workload'] == 'uncontended': continue
    runs[(r['workload'], int(r['threads']))].setdefault(r['lock'], {})[int(r['round'])] = float(r['ops_per_sec'])
peers = ['absl', 'nsync', 'parking_lot', 'pthread-adaptive', 'pthread', 'futex3', 'ck-ticket', 'ck-mcs']
gx, gf, gxf = [], [], []
print('%-14s %3s %7s %7s %7s  %s' % ('cell', 'T', 'x/fm', 'fm/pk', 'x/pk', 'peer'))
def key(c):
    w, t = c; cs, pw = w[2:].split('-pw'); return (int(cs), int(pw), t)
for cell in sorted(runs, key=key):
    L = runs[cell]
    if 'fastmutex' not in L or 'fastmutex-x' not in L: continue
    rounds = sorted(L['fastmutex'])
    best = max((p for p in peers if p in L), key=lambda p: statistics.median(L[p].values()))
    xf = statistics.median(L['fastmutex-x'][r] / L['fastmutex'][r] for r in rounds)
    fp = statistics.median(L['fastmutex'][r] / L[best][r] for r in rounds)
    xp = statistics.median(L['fastmutex-x'][r] / L[best][r] for r in rounds)
    gx.append(math.log(xp)); gf.append(math.log(fp)); gxf.append(math.log(xf))
    print('%-14s %3d %7.3f %7.3f %7.3f  %s' % (cell[0], cell[1], xf, fp, xp, best))
g = lambda a: math.exp(sum(a) / len(a))
print('geomean x/fm %.3f  fm/peer %.3f  x/peer %.3f  cells %d; fm<0.9: %d x<0.9: %d' % (g(gxf), g(gf), g(gx), len(gx), sum(1 for v in gf if v < math.log(0.9)), sum(1 for v in gx if v < math.log(0.9))))
# Fairness: each cell's median Jain's index over the rounds (2+ threads),
# and the median of the cells' max waits.
jain = collections.defaultdict(lambda: collections.defaultdict(list))
wmax = collections.defaultdict(lambda: collections.defaultdict(list))
for r in csv.DictReader(open(path)):
    if r['workload'] == 'uncontended' or int(r['threads']) < 2 or not r['lock'].startswith('fastmutex'):
        continue
    jain[r['lock']][(r['workload'], int(r['threads']))].append(float(r['jain']))
    wmax[r['lock']][(r['workload'], int(r['threads']))].append(float(r['wait_max_ns']))
for lock in sorted(jain):
    j = [statistics.median(v) for v in jain[lock].values()]
    w = [statistics.median(v) for v in wmax[lock].values()]
    print('%s: Jain < 0.95 in %d of %d cells, median %.3f; median max wait %.1f ms' %
          (lock, sum(x < 0.95 for x in j), len(j), statistics.median(j), statistics.median(w) / 1e6))
