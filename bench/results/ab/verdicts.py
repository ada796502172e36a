#!/usr/bin/env python3
# verdicts.py RUNS.csv LOCK [BASE]: verdict counts of LOCK against the
# strongest peer (as bench/verdict.c: median of per-round ratios, percentile
# bootstrap), and, with BASE, paired LOCK/BASE verdicts.
# verdicts.py --fair RUNS.csv LOCK: LOCK's counts against the strongest peer
# of each cell among every peer, then among the peers whose median Jain's
# index in the cell is at least 0.95, then at least LOCK's own (at 1 thread
# every peer counts).
import csv, sys, random, statistics, collections, math
fair = '--fair' in sys.argv
args = [a for a in sys.argv[1:] if a != '--fair']
path, lock = args[0], args[1]
base = args[2] if len(args) > 2 else None
peers = {'absl','nsync','parking_lot','pthread-adaptive','pthread','futex3','ck-ticket','ck-mcs'}
runs = collections.defaultdict(lambda: collections.defaultdict(dict))
jain = collections.defaultdict(lambda: collections.defaultdict(list))
for r in csv.DictReader(open(path)):
    if r['workload'] == 'uncontended': continue
    cell = (r['workload'], int(r['threads']))
    runs[cell][r['lock']][int(r['round'])] = float(r['ops_per_sec'])
    jain[cell][r['lock']].append(float(r['jain']))
rng = random.Random(1)
def boot(v):
    ms = sorted(statistics.median(rng.choices(v, k=len(v))) for _ in range(4000))
    return statistics.median(v), ms[100], ms[3899]
def kind(lo, hi): return 'ahead' if lo > 1 else 'behind' if hi < 1 else 'tie'
def strongest(L, admit):
    ps = [p for p in L if p in peers and admit(p)]
    return max(ps, key=lambda p: statistics.median(L[p].values())) if ps else None

if fair:
    med = lambda cell, p: statistics.median(jain[cell][p])
    def fair_counts(admit):
        cnt = collections.Counter(); below = 0; none = 0
        for cell, L in runs.items():
            best = strongest(L, lambda p: cell[1] < 2 or admit(cell, p))
            if best is None:
                none += 1; continue
            m, lo, hi = boot([L[lock][r] / L[best][r] for r in sorted(L[lock])])
            cnt[kind(lo, hi)] += 1
            below += m < 0.9
        n = sum(cnt.values())
        return '%d / %d / %d ahead/tie/behind (%.1f%% ahead or tied), below 0.90x %d, cells with no such peer %d' % (
            cnt['ahead'], cnt['tie'], cnt['behind'], 100 * (cnt['ahead'] + cnt['tie']) / n, below, none)
    print('every peer:                       ', fair_counts(lambda cell, p: True))
    print('peers with Jain >= 0.95:          ', fair_counts(lambda cell, p: med(cell, p) >= 0.95))
    print('peers at least as fair as %s:' % lock, fair_counts(lambda cell, p: med(cell, p) >= med(cell, lock)))
    sys.exit(0)

cnt = collections.Counter(); pcnt = collections.Counter(); below = 0; worst = []
byT = collections.defaultdict(collections.Counter)
for cell, L in runs.items():
    best = strongest(L, lambda p: True)
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
