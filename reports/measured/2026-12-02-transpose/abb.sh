#!/bin/bash
# abb.sh '<filter>' rounds benchA benchB: alternate the two benchmark binaries, JSON per run under ${TMPDIR:-/tmp}/mb-abb/
F=$1; R=$2; A=$3; B=$4; mkdir -p ${TMPDIR:-/tmp}/mb-abb; rm -f ${TMPDIR:-/tmp}/mb-abb/*.json
for i in $(seq 1 $R); do
  if (( i % 2 )); then order="$A $B"; else order="$B $A"; fi
  for x in $order; do $x --benchmark_filter="$F" --benchmark_repetitions=3 --benchmark_format=json > ${TMPDIR:-/tmp}/mb-abb/$(basename $x)-$i.json 2>/dev/null; done
done
/usr/bin/python3 - "$A" "$B" <<'PY'
import json, glob, sys, os, statistics as st, collections
res = collections.defaultdict(lambda: collections.defaultdict(lambda: ([], [])))
for f in glob.glob(os.environ.get('TMPDIR', '/tmp') + '/mb-abb/*.json'):
    side = os.path.basename(f).rsplit('-', 1)[0]
    for b in json.load(open(f))['benchmarks']:
        if b.get('run_type') != 'iteration': continue
        n = b['name'].replace('/real_time', '')
        res[n][side][0].append(b['real_time']); res[n][side][1].append(b.get('roofline', float('nan')))
a, b = [os.path.basename(x) for x in sys.argv[1:3]]
print(f"{'benchmark':55s} {a:>10s} {b:>10s}  ratio   twinA  twinB")
for n in sorted(res):
    ta, tb = st.median(res[n][a][0]), st.median(res[n][b][0])
    ra, rb = st.median(res[n][a][1]), st.median(res[n][b][1])
    print(f"{n:55s} {ta:10.4f} {tb:10.4f}  {tb/ta:5.3f}  {ra:5.2f}  {rb:5.2f}")
PY
