import json,sys,statistics as st,collections,glob
def load(pat):
    g=collections.defaultdict(lambda: collections.defaultdict(list))
    for f in sorted(glob.glob(pat)):
        d=json.load(open(f))
        per=collections.defaultdict(list)
        for b in d['benchmarks']:
            if b.get('run_type')!='iteration': continue
            per[b['run_name'].split('/')[2]].append(b)
        for n,bs in per.items():
            g[n]['t'].append(st.median(b['real_time'] for b in bs))
            g[n]['tw'].append(st.median(b.get('twin_ms',0) for b in bs))
            g[n]['r'].append(st.median(b.get('roofline',0) for b in bs))
    return g
a=load(sys.argv[1]); b=load(sys.argv[2])
print(f"{'bench':18s} {'A ms':>8s} {'B ms':>8s} {'B/A':>6s} | {'A twin':>8s} {'B twin':>8s} | {'A ratio':>7s} {'B ratio':>7s}")
for n in a:
    ta=st.median(a[n]['t']); tb=st.median(b[n]['t'])
    print(f"{n:18s} {ta:8.4f} {tb:8.4f} {tb/ta:6.3f} | {st.median(a[n]['tw']):8.4f} {st.median(b[n]['tw']):8.4f} | {st.median(a[n]['r']):7.2f} {st.median(b[n]['r']):7.2f}")
