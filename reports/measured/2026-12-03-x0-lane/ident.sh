#!/bin/bash
# ident.sh <binA> <binB>: the byte comparison of ../2026-12-02-transpose/ident.sh (its run()) over this round's
# shapes: the row lengths of the x[0] layout (31, 32, 40, 91, 92, 96), values unchecked (NOCHECK, the driver's plan
# mode checks by default, as the plans do), and MB_FOLD, which forced a fold in the session's experiment builds and is
# ignored by the committed tree. The driver: ../2026-12-01-pass1/best_of.cpp with its plan mode's
# `p2.check_prediction_values = getenv("NOCHECK") == nullptr;`.
A=$1; B=$2; fail=0; n=0
IDENT_RUN_ONLY=1 source "$(dirname "$0")/../2026-12-02-transpose/ident.sh" "$A" "$B"
for C in 2 3 5 8 9 12 15 16 17 21 24 32 33 48 64 65 81 201; do for T in 1 2; do run X=1 $C $T; done; done
for C in 2 9 16 17 21 31 32 40 81 91 92 96 201; do
  run PRIORS=tutorial $C 2; run BATCH=1 $C 2; run NOCHECK=1 $C 2; run MB_FOLD=4 $C 2; run MB_FOLD=2 $C 1
  run OBJECTS=100 $C 2
done
echo "compared $n, fail=$fail"
