# Durations of a trace of whole-image-timeline.patch by placement: pass 1 (bounds) and the rest of an image on the
# worker that matched it this run or not, and on the worker that ran its loss last run or not; matching by where
# the image was matched and its loss ran last run. Usage: tlaff.py trace.txt
import sys, statistics as st, collections
TSC=2096.0
def runs(path):
    cur=[]
    for line in open(path):
        w,item,kind,t0,t1=map(int,line.split())
        if kind==0: yield cur; cur=[]
        else: cur.append((w,item,kind,t0,t1))
prev_loss={}; prev_match={}
d=collections.defaultdict(list)
for ev in runs(sys.argv[1]):
    mw={x[1]:x[0] for x in ev if x[2]==1}; lw={x[1]:x[0] for x in ev if x[2]==2}
    for x in ev:
        b=x[1]; dur=(x[4]-x[3])/TSC
        if x[2]==2 and b in prev_loss:
            d[f'bounds same-run-match={mw[b]==x[0]} prev-loss-same={prev_loss[b]==x[0]}'].append(dur)
        if x[2]==4 and b in prev_loss:
            d[f'rest prev-loss-same={prev_loss[b]==x[0]} match-same={mw[b]==x[0]}'].append(dur)
        if x[2]==1 and b in prev_match:
            d[f'match prev-match-same={prev_match[b]==x[0]} prev-loss-same={prev_loss[b]==x[0]}'].append(dur)
    prev_loss=lw; prev_match=mw
for k,v in sorted(d.items()):
    print(f'{k:50s} n={len(v):6d} med {st.median(v):7.2f} q10 {sorted(v)[len(v)//10]:7.2f}')
