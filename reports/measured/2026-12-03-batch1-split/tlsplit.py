# Sums up a trace of split-timeline.patch (TL=file, the split path: a batch smaller than the thread count). Item
# kinds: 1 matching, 2 a pass-1 unit, 3 select, 4 wait_for_first, 5 an exact unit, 6 finish; 0 marks a run's end
# (t0 = its start). Times in us (TSC at 2096 MHz on the Zen 5 guest). Usage: tlsplit.py MODE trace.txt
#   workers      per worker: when it starts, its items' count and summed time
#   items        per item kind, one worker (solo) or both (both) taking items in the run
#   phases       when the phases end: pass 1 + matching, select, the exact pass, finish
#   concurrency  per item, whether the other worker was busy meanwhile (both-worker runs)
#   totals       each kind's summed time a run, solo or both
import sys, statistics as st, collections
TSC = 2096.0
KINDS = ((1, 'match'), (2, 'pass1'), (3, 'select'), (4, 'waitfirst'), (5, 'exact'), (6, 'finish'))
def runs(path):
    cur = []
    for line in open(path):
        w, item, kind, t0, t1 = map(int, line.split())
        if kind == 0: yield (t0, t1, cur); cur = []
        else: cur.append((w, item, kind, t0, t1))
def us(a, b): return (b - a) / TSC
def both(ev): return len(set(x[0] for x in ev)) > 1
S = collections.defaultdict(list)
mode, path = sys.argv[1], sys.argv[2]
for r0, r1, ev in runs(path):
    tag = 'both' if both(ev) else 'solo'
    if mode == 'workers':
        S['run'].append(us(r0, r1))
        for w in (0, 1):
            e = [x for x in ev if x[0] == w]
            if not e: S[f'w{w} absent'].append(1); continue
            S[f'w{w} first start'].append(us(r0, min(x[3] for x in e)))
            S[f'w{w} last end'].append(us(r0, max(x[4] for x in e)))
            for k, n in KINDS:
                d = [us(x[3], x[4]) for x in e if x[2] == k]
                S[f'w{w} {k}{n} sum'].append(sum(d)); S[f'w{w} {k}{n} n'].append(len(d))
    elif mode == 'items':
        S[tag + ' run'].append(us(r0, r1))
        for k, n in KINDS:
            S[f'{tag} {n} each'] += [us(x[3], x[4]) for x in ev if x[2] == k]
    elif mode == 'totals':
        S[tag + ' run'].append(us(r0, r1))
        for k, n in KINDS:
            S[f'{tag} {n} total'].append(sum(us(x[3], x[4]) for x in ev if x[2] == k))
    elif mode == 'phases' and both(ev):
        sel = [x for x in ev if x[2] == 3][0]; fin = [x for x in ev if x[2] == 6][0]
        ex_end = max(x[4] for x in ev if x[2] == 5)
        S['a: pass 1 + matching end'].append(us(r0, max(x[4] for x in ev if x[2] in (1, 2))))
        S['b: select'].append(us(sel[3], sel[4]))
        S['c: exact pass (select end to last unit)'].append(us(sel[4], ex_end))
        S['d: finish'].append(us(fin[3], fin[4]))
        S['e: finish end to run end'].append(us(fin[4], r1))
        for w in (0, 1): S[f'w{w} start'].append(us(r0, min(x[3] for x in ev if x[0] == w)))
        S['run'].append(us(r0, r1))
    elif mode == 'concurrency' and both(ev):
        busy = {0: [], 1: []}
        for x in ev:
            if x[2] != 4: busy[x[0]].append((x[3], x[4]))
        for x in ev:
            if x[2] not in (1, 2, 5) or (x[2] == 2 and x[1] == 17): continue  # unit 17: the 28-row tail
            ov = sum(max(0, min(b, x[4]) - max(a, x[3])) for a, b in busy[1 - x[0]]) / (x[4] - x[3])
            k = {1: 'match', 2: 'pass1', 5: 'exact'}[x[2]]
            if x[2] == 5 and x[1] in (14, 15, 16): k = 'exactheavy'  # the chunks holding the positives
            S[f'{k} {"alone" if ov < 0.1 else "concurrent" if ov > 0.9 else "partial"}'].append(us(x[3], x[4]))
for k, v in sorted(S.items()):
    print(f'{k:40s} med {st.median(v):8.2f}  q10 {sorted(v)[len(v)//10]:8.2f}  n={len(v)}')
