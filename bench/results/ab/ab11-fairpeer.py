#!/usr/bin/env python3
# ab11-fairpeer.py RUNS.csv LOCK: LOCK's verdicts against the strongest peer of
# each cell (as bench/verdict.c: median of per-round ratios, bootstrap 95%
# interval), first among every peer, then among the peers whose median
# Jain's index in the cell is at least 0.95, then at least LOCK's own.
import csv, sys, random, statistics, collections
path, lock = sys.argv[1], sys.argv[2]
peers = {'absl','nsync','parking_lot','pthread-adaptive','pthread','futex3','ck-ticket','ck-mcs'}
ops = collections.defaultdict(lambda: collections.defaultdict(dict))
jain = collections.defaultdict(lambda: collections.defaultdict(list))
for r in csv.DictReader(open(path)):
    if r['workload'] == 'uncontended': continue
    c = (r['workload'], int(r['threads']))
    ops[c][r['lock']][int(r['round'])] = float(r['ops_per_sec'])
    jain[c][r['lock']].append(float(r['jain']))
rng = random.Random(1)
def boot(v):
    ms = sorted(statistics.median(rng.choices(v, k=len(v))) for _ in range(4000))
    return statistics.median(v), ms[100], ms[3899]
def verdicts(admit):
    cnt = collections.Counter(); below = 0; none = 0
    for c, L in ops.items():
        ps = [p for p in L if p in peers and (c[1] < 2 or admit(c, p))]
        if not ps:
            none += 1; continue
        best = max(ps, key=lambda p: statistics.median(L[p].values()))
        m, lo, hi = boot([L[lock][r] / L[best][r] for r in sorted(L[lock])])
        cnt['ahead' if lo > 1 else 'behind' if hi < 1 else 'tie'] += 1
        below += m < 0.9
    n = sum(cnt.values())
    return '%d / %d / %d ahead/tie/behind (%.1f%% ahead or tied), below 0.90x %d, cells with no such peer %d' % (
        cnt['ahead'], cnt['tie'], cnt['behind'], 100 * (cnt['ahead'] + cnt['tie']) / n, below, none)
med = lambda c, p: statistics.median(jain[c][p])
print('every peer:                       ', verdicts(lambda c, p: True))
print('peers with Jain >= 0.95:          ', verdicts(lambda c, p: med(c, p) >= 0.95))
print('peers at least as fair as %s:' % lock, verdicts(lambda c, p: med(c, p) >= med(c, lock)))
