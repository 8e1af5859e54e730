#!/usr/bin/env bash
# The main job on built-in data: installs dependencies, builds the release preset, then evaluates every available
# backend on the built-in workloads and prints per-workload details and a summary table; then runs the benchmark
# suite, times torchvision on the same inputs and writes the performance report to out/report/ (summary printed).
#   bash scripts/main.sh
# Environment: WORKLOADS (comma-separated names, default below), MULTIBOX_EVAL_ARGS (extra `multibox eval` flags),
# MULTIBOX_BENCH_ARGS (extra Google Benchmark flags for multibox_bench).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

# ---- 1. set-up ----
bash scripts/setup.sh

# ---- 2. build ----
build_targets=(multibox_cli multibox_bench)
cmake --preset release
cmake --build --preset release -j "$(nproc)" --target "${build_targets[@]}"
multibox="${root}/build/release/bin/multibox"

# ---- 3. run ----
"${multibox}" backends
echo
workloads="${WORKLOADS:-all}"  # every named workload; file-backed ones are skipped when their file is absent
# shellcheck disable=SC2086  # MULTIBOX_EVAL_ARGS is a list of flags on purpose
"${multibox}" eval --backend all --workload "${workloads}" ${MULTIBOX_EVAL_ARGS:-}

# ---- 4. benchmarks, torchvision peer timing, report (bench/, reports/) ----
# The whole suite once (about a minute on 2 cores), then the benchmarks that carry issue 10's verdicts (the simd
# headline and scaling axes) three more times, their repetitions interleaved in random order so that a slow minute
# of a shared machine lands on several benchmarks rather than on one axis; the report takes each one's median over
# all four. A single repetition let the verdicts flip between two runs minutes apart. MULTIBOX_BENCH_ARGS replaces
# this with one run of the given Google Benchmark flags, e.g. --benchmark_repetitions=5 or --benchmark_filter=headline.
# Results and the report go to out/.
out="${root}/out"
mkdir -p "${out}"
bench="${root}/build/release/bin/multibox_bench"
judged='^simd/(headline|scale-)'
rm -f "${out}/bench.json" "${out}/bench-judged.json"  # a stale file must not stand in for a failed run
echo
echo "== benchmarks (every backend x case x stage; memory bandwidth measured first)"
bench_status=0
bench_files=("${out}/bench.json")
if [[ -n "${MULTIBOX_BENCH_ARGS:-}" ]]; then
  # shellcheck disable=SC2086  # MULTIBOX_BENCH_ARGS is a list of flags on purpose
  "${bench}" --benchmark_out="${out}/bench.json" --benchmark_out_format=json ${MULTIBOX_BENCH_ARGS} || bench_status=$?
else
  "${bench}" --benchmark_out="${out}/bench.json" --benchmark_out_format=json || bench_status=$?
  echo
  echo "== the judged benchmarks (${judged}) 3 more times, interleaved"
  "${bench}" --benchmark_filter="${judged}" --benchmark_repetitions=3 --benchmark_enable_random_interleaving=true \
    --benchmark_display_aggregates_only=true \
    --benchmark_out="${out}/bench-judged.json" --benchmark_out_format=json || bench_status=$?
  bench_files+=("${out}/bench-judged.json")
fi
echo
echo "== torchvision peer timing on the same inputs"
"${bench}" --multibox_dump_inputs="${out}/bench-inputs"
rm -f "${out}/torchvision.json"  # a stale file must not stand in for a failed run
/usr/bin/python3 bench/torchvision_bench.py --inputs "${out}/bench-inputs" --out "${out}/torchvision.json" ||
  echo "main: the torchvision timing failed (see above); the report goes on without it"
echo
echo "== report"
/usr/bin/python3 reports/make_report.py --bench "${bench_files[@]}" --torchvision "${out}/torchvision.json" \
  --out "${out}/report"
if ((bench_status != 0)); then
  echo "main: multibox_bench exited with status ${bench_status}: an available backend failed a case (see above)" >&2
  exit "${bench_status}"
fi
