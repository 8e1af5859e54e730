#!/bin/bash
# usage: judged.sh BIN OUT.json [filter]
f=${3:-'simd/(headline/ssd300-coco-c81/backward|scale-.*/backward)/t2'}
$1 --benchmark_filter="$f" --benchmark_repetitions=3 --benchmark_out=$2 --benchmark_out_format=json >/dev/null 2>&1
python3 - $2 <<'P'
import json,sys,statistics as st,collections
d=json.load(open(sys.argv[1]))
g=collections.defaultdict(list)
for b in d['benchmarks']:
    if b.get('run_type')!='iteration': continue
    g[b['run_name']].append(b)
for n,bs in g.items():
    t=st.median(b['real_time'] for b in bs); r=st.median(b.get('roofline',0) for b in bs)
    tw=st.median(b.get('twin_ms',0) for b in bs); rt=st.median(b.get('core_rt_ns',0) for b in bs)
    print(f"{n.split('/')[2]:18s} {t:8.4f} ms twin {tw:8.4f} ratio {r:5.2f} rt {rt:4.0f}")
P
