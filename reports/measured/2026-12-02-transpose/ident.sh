#!/bin/bash
# The driver: ../2026-12-01-pass1/best_of.cpp with best_of-check-env.patch (plan mode honours CHECK).
# ident.sh <binA> <binB>: byte comparison of gradients, mined masks and loss terms over a set of shapes
A=$1; B=$2; fail=0; n=0
run() { # env... C T
  local tag="$*"
  env $1 DUMP=${TMPDIR:-/tmp}/mb-dA.bin $A $2 1 1 $3 >/dev/null || { echo "A failed: $tag"; fail=1; return; }
  env $1 DUMP=${TMPDIR:-/tmp}/mb-dB.bin $B $2 1 1 $3 >/dev/null || { echo "B failed: $tag"; fail=1; return; }
  n=$((n+1))
  cmp -s ${TMPDIR:-/tmp}/mb-dA.bin ${TMPDIR:-/tmp}/mb-dB.bin || { echo "DIFFER: $tag"; fail=1; }
}
# Sourced with IDENT_RUN_ONLY=1 (as ../2026-12-03-x0-lane/ident.sh does), it defines run() and compares nothing.
[ -n "$IDENT_RUN_ONLY" ] && return 0
for C in 2 3 5 8 9 12 15 16 17 21 24 32 33 48 64 65 81 201; do for T in 1 2; do run X=1 $C $T; done; done
for C in 2 9 16 17 21 32 81; do run PRIORS=tutorial $C 2; run BATCH=1 $C 2; run CHECK=1 $C 2; run OBJECTS=100 $C 2; done
echo "compared $n, fail=$fail"
