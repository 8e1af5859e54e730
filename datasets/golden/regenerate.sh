#!/usr/bin/env bash
# Rewrites datasets/golden/cases: inputs from make_golden_cases (C++), answers from torchvision (make_golden.py).
# Usage: datasets/golden/regenerate.sh [BUILD_DIR]   (default build/release; needs python3-torchvision)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-${root}/build/release}"
coco="${MULTIBOX_COCO_JSON:-${root}/../shared/datasets/coco128/instances_train2017.json}"

cmake --build "${build}" --target make_golden_cases -j 2
rm -rf "${root}/datasets/golden/cases"
"${build}/datasets/golden/make_golden_cases" "${root}/datasets/golden/cases" --coco "${coco}"
/usr/bin/python3 "${root}/datasets/golden/make_golden.py"
du -sh "${root}/datasets/golden/cases"
