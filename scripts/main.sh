#!/usr/bin/env bash
# The main job on built-in data: installs dependencies, builds the release preset, then evaluates every available
# backend on the built-in workloads and prints per-workload details and a summary table.
#   bash scripts/main.sh
# Environment: WORKLOADS (comma-separated names, default below), MULTIBOX_EVAL_ARGS (extra `multibox eval` flags).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

# ---- 1. set-up ----
bash scripts/setup.sh

# ---- 2. build ----
build_targets=(multibox_cli)
cmake --preset release
cmake --build --preset release -j "$(nproc)" --target "${build_targets[@]}"
multibox="${root}/build/release/bin/multibox"

# ---- 3. run ----
"${multibox}" backends
echo
workloads="${WORKLOADS:-all}"  # every named workload; file-backed ones are skipped when their file is absent
# shellcheck disable=SC2086  # MULTIBOX_EVAL_ARGS is a list of flags on purpose
"${multibox}" eval --backend all --workload "${workloads}" ${MULTIBOX_EVAL_ARGS:-}
