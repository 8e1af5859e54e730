#!/bin/bash
# abn.sh C rounds runs threads driver...: runs the drivers given (best_of of reports/measured/2026-12-01-pass1 with
# best_of-check-env.patch of 2026-12-02-transpose), their order rotated each round, as `driver C runs $BW threads`
# (BW=1, the default, forward + backward; BW=0 forward), and prints per driver the best run and the medians over the
# rounds of each round's best, 10th percentile and median. Shape through the driver's environment (BATCH, CHECK...).
# Example: BATCH=32 abn.sh 81 6 80 2 ./before ./after
C=$1; R=$2; N=$3; T=$4; shift 4; bins=("$@"); n=${#bins[@]}
for i in $(seq 0 $((R-1))); do
  for j in $(seq 0 $((n-1))); do x=${bins[$(( (i+j) % n ))]}; echo "$x $($x $C $N ${BW:-1} $T)"; done
done | python3 -c '
import sys, statistics as st, collections
d = collections.defaultdict(lambda: ([], [], []))
for line in sys.stdin:
    f = line.split(); name = f[0]
    d[name][0].append(float(f[f.index("min")+1])); d[name][1].append(float(f[f.index("q10")+1])); d[name][2].append(float(f[f.index("med")+1]))
for k, (mn, q, md) in d.items():
    print(f"{k:24s} best {min(mn):.4f}  med-of-min {st.median(mn):.4f}  med-of-q10 {st.median(q):.4f}  med-of-med {st.median(md):.4f}")
'
