#!/usr/bin/env bash
# Instructions per logit row of each part of the simd loss, counted by callgrind (this VM's perf has no hardware
# counters): 5 runs of the one-thread driver (../2026-12-01-pass1/best_of.cpp, values checked) on the benchmark's
# SSD300 batch-8 scene, 69856 rows a run. Counts are exact and repeatable, unlike times on this VM.
#   bash callgrind_rows.sh ./best_of C BACKWARD     e.g. bash callgrind_rows.sh ./best_of 2 1
# Needs valgrind (apt-get install valgrind); not a project dependency.
set -euo pipefail
bin=$1 classes=$2 backward=$3
out=$(mktemp)
trap 'rm -f "${out}"' EXIT
CHECK=1 valgrind --tool=callgrind --callgrind-out-file="${out}" "${bin}" "${classes}" 5 "${backward}" >/dev/null 2>&1
callgrind_annotate "${out}" 2>/dev/null | python3 -c '
import re, sys
rows = 5 * 69856
parts = [("pass 1, group start (bound_rows)", "GroupBounds&)#"), ("pass 1, the rest", "bounds_impl<"),
         ("pass 2 (exact_impl)", "exact_impl<"), ("select_impl", "select_impl("), ("collect_rows", "collect_rows("),
         ("finish_impl", "finish_impl<"), ("select_above", "select_above(")]
counts = dict.fromkeys(name for name, _ in parts)
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)", line)
    if not m:
        continue
    for name, key in parts:
        if key in m.group(2):
            counts[name] = (counts[name] or 0) + int(m.group(1).replace(",", ""))
            break
for name, n in counts.items():
    print(f"{name:40s} {(n or 0) / rows:7.2f} a row")
print("%-40s %7.2f a row" % ("the loss, all of the above", sum(n or 0 for n in counts.values()) / rows))
'
