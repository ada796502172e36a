import csv,collections,statistics,sys
rows=list(csv.DictReader(open(sys.argv[1]+'/runs.csv')))
d=collections.defaultdict(dict)
for r in rows:
    if r['workload']=='uncontended': continue
    d[(r['workload'],int(r['threads']),r['round'])][r['lock']]=float(r['ops_per_sec'])
cells=collections.defaultdict(lambda: collections.defaultdict(list))
names=set()
for (w,t,rd),v in d.items():
    peers=[k for k in v if not k.startswith('fastmutex')]
    best=max(peers,key=lambda p: v[p])
    for k in v:
        if k.startswith('fastmutex'):
            names.add(k)
            cells[(w,t)][k].append(v[k]/v[best])
names=sorted(names)
med={c:{n:statistics.median(cells[c][n]) for n in names} for c in cells}
print('cell'.ljust(20),' '.join(n[-9:].rjust(9) for n in names))
for c in sorted(cells, key=lambda c:(c[1],c[0])):
    print(f'{c[0]:14s}{c[1]:4d}  ',' '.join(f'{med[c][n]:9.3f}' for n in names))
for n in names:
    v=[med[c][n] for c in med]
    print(n, 'geomean %.3f'%statistics.geometric_mean(v), 'min %.3f'%min(v), '>=0.9: %d/%d'%(sum(x>=0.9 for x in v),len(v)))
by_t=collections.defaultdict(lambda: collections.defaultdict(list))
for c in med:
    for n in names: by_t[c[1]][n].append(med[c][n])
for t in sorted(by_t):
    print(t, ' '.join('%s %.3f'%(n[-6:],statistics.geometric_mean(by_t[t][n])) for n in names))
