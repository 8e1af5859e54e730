# Sums up a trace of whole-image-timeline.patch (TL=file): per worker, medians over runs of when it starts, each
# item kind's duration and its sum a run, in us (TSC at 2096 MHz on the Zen 5 VM). Usage: tlsum.py trace.txt
import sys, statistics as st, collections
TSC=2096.0  # ticks per us
def runs(path):
    cur=[]
    for line in open(path):
        w,item,kind,t0,t1=map(int,line.split())
        if kind==0:
            yield (t0,t1,cur); cur=[]
        else: cur.append((w,item,kind,t0,t1))
stats=collections.defaultdict(list)
for r0,r1,ev in runs(sys.argv[1]):
    stats['run'].append((r1-r0)/TSC)
    for w in (0,1):
        e=[x for x in ev if x[0]==w]
        if not e: stats[f'w{w} items']+= [0]; continue
        stats[f'w{w} first start'].append((min(x[3] for x in e)-r0)/TSC)
        stats[f'w{w} last end'].append((max(x[4] for x in e)-r0)/TSC)
        stats[f'w{w} matches'].append(sum(1 for x in e if x[2]==1))
        for k,name in ((1,'match'),(5,'wait own match'),(2,'bounds'),(3,'wait all match'),(4,'rest')):
            d=[(x[4]-x[3])/TSC for x in e if x[2]==k]
            stats[f'w{w} {name} sum'].append(sum(d))
            if d: stats[f'w{w} {name} each'].extend(d)
    me=max(x[4] for x in ev if x[2]==1); stats['all matched'].append((me-r0)/TSC)
for k,v in sorted(stats.items()):
    print(f'{k:28s} med {st.median(v):8.2f}  q10 {sorted(v)[len(v)//10]:8.2f}  n={len(v)}')
