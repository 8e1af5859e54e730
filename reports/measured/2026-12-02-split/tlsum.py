# tlsum.py trace...: sums up traces written by split-timeline.patch (TL=file, default tl.txt; 37 items a run:
# batch 1, SSD300, one matching item and 18 chunks a pass); medians over runs, skipping the first 100, in us at 2.096 GHz.
import statistics as st, collections, sys
for fn in sys.argv[1:]:
    ev=[tuple(map(int,l.split())) for l in open(fn)]
    runs=[ev[i:i+37] for i in range(0,len(ev),37)]
    ghz=2.096
    acc=collections.defaultdict(list); d=collections.defaultdict(list)
    for r in runs[100:]:
        t0=min(e[3] for e in r); f=lambda t:(t-t0)/ghz/1000
        m=[e for e in r if e[1]==0][0]
        b=sorted([e for e in r if 1<=e[1]<1000], key=lambda e:e[4])
        x=sorted([e for e in r if e[1]>=1000], key=lambda e:e[4])
        acc['match end'].append(f(m[4]))
        acc['2nd-last pass-1 item end'].append(f(b[-2][4]))
        acc['last pass-1 item end (incl select)'].append(f(b[-1][4]))
        acc['2nd-last pass-2 item end'].append(f(x[-2][4]))
        acc['last pass-2 item dur (incl finish)'].append(f(x[-1][4])-f(x[-1][3]))
        acc['span'].append(f(max(e[4] for e in r)))
        for e in b[:-1]: d[('pass1', e[0], e[3]<m[4])].append(f(e[4])-f(e[3]))
    print(fn); [print("  %-40s %.2f"%(k, st.median(v))) for k,v in acc.items()]
    for k,v in sorted(d.items()): print("   %s w%d during-match=%d n=%d med %.2f"%(k[0],k[1],k[2],len(v),st.median(v)))
