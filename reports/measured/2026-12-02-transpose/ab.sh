#!/bin/bash
# The driver: ../2026-12-01-pass1/best_of.cpp with best_of-check-env.patch (plan mode honours CHECK).
# ab.sh C rounds reps binA binB [threads]: alternate A B / B A, print min and median-of-q10 for each
C=$1; R=$2; N=$3; A=$4; B=$5; T=${6:-2}
for i in $(seq 1 $R); do
  if (( i % 2 )); then order="$A $B"; else order="$B $A"; fi
  for x in $order; do if [ "$T" = 0 ]; then echo "$x $($x $C $N ${BW:-1})"; else echo "$x $($x $C $N ${BW:-1} $T)"; fi; done
done | python3 -c '
import sys, statistics as st, collections
d = collections.defaultdict(lambda: ([], []))
for line in sys.stdin:
    f = line.split(); name = f[0]
    mn = float(f[f.index("min")+1]); q = float(f[f.index("q10")+1])
    d[name][0].append(mn); d[name][1].append(q)
for k, (mn, q) in d.items():
    print(f"{k:24s} best {min(mn):.4f}  med-of-min {st.median(mn):.4f}  med-of-q10 {st.median(q):.4f}")
'
