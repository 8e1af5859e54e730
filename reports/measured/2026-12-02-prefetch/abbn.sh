#!/bin/bash
# abbn.sh '<filter>' rounds bench...: runs the multibox_bench binaries given, their order rotated each round, with
# --benchmark_repetitions=3, and prints for each benchmark and binary the median time (ms) and the median time / twin.
# Example: abbn.sh 'simd/(headline/ssd300-coco-c81/backward/t2|scale-)' 4 ./bench-before ./bench-after
F=$1; R=$2; shift 2; bins=("$@"); n=${#bins[@]}
export D=${TMPDIR:-/tmp}/mb-abbn; mkdir -p "$D"; rm -f "$D"/*.json
for i in $(seq 0 $((R-1))); do
  for j in $(seq 0 $((n-1))); do
    x=${bins[$(( (i+j) % n ))]}
    $x --benchmark_filter="$F" --benchmark_repetitions=3 --benchmark_format=json > "$D/$(basename $x)-$i.json" 2>/dev/null
  done
done
/usr/bin/python3 - "$@" <<'PY'
import json, glob, sys, os, statistics as st, collections
res = collections.defaultdict(lambda: collections.defaultdict(lambda: ([], [])))
for f in glob.glob(os.environ['D'] + '/*.json'):
    side = os.path.basename(f).rsplit('-', 1)[0]
    for b in json.load(open(f))['benchmarks']:
        if b.get('run_type') != 'iteration': continue
        n = b['name'].replace('/real_time', '')
        res[n][side][0].append(b['real_time']); res[n][side][1].append(b.get('roofline', float('nan')))
sides = [os.path.basename(x) for x in sys.argv[1:]]
print(f"{'benchmark':50s} " + " ".join(f"{s:>18s}" for s in sides) + "   (median ms / median time over twin)")
for n in sorted(res):
    print(f"{n:50s} " + " ".join(f"{st.median(res[n][s][0]):9.4f} / {st.median(res[n][s][1]):5.2f}" for s in sides))
PY
