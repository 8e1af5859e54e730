#!/usr/bin/env bash
# Did HEAD make any benchmark slower than BASE? Builds both revisions with the release preset's flags in git worktrees
# under build/regress/, runs multibox_bench on them interleaved (A B A B ..., so the machine's drift hits both sides
# alike) and hands the JSON to reports/regress.py, whose exit status this returns (0 pass, 1 regression, 2 no data).
#
#   bash scripts/regress.sh [--quick] [--rounds N] [--threshold 0.10] [--plant SPEC] BASE [HEAD]
#
# HEAD omitted: the current working tree, built in build/release (the release preset's own folder).
# --quick: the headline simd and naive cases plus four scaling points, 3 rounds of 3 repetitions (~2 min on 2 cores).
# Default: every CPU benchmark (48), 4 rounds of 3 repetitions (several minutes). Each repetition runs >= 0.2 s: the
# pooled rounds, not long repetitions, are what tame this machine's drift.
# --plant SPEC: MULTIBOX_PLANT_SLOWDOWN=SPEC for the HEAD runs only (e.g. simd:forward:1.3), the gate's self-test.
# --junit-base/--junit-head FILE: ctest --output-junit files of the two revisions, for the conformance table.
# Outputs in out/regress/: report.md (also printed), verdict.json, the raw runs a*.json / b*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

quick=0 rounds="" threshold=0.10 plant="" out=out/regress
positional=() junit=()
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --rounds) rounds=$2; shift ;;
    --threshold) threshold=$2; shift ;;
    --plant) plant=$2; shift ;;
    --out) out=$2; shift ;;
    --junit-base|--junit-head) junit+=("$1" "$(realpath "$2")"); shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) positional+=("$1") ;;
  esac
  shift
done
if ((${#positional[@]} < 1 || ${#positional[@]} > 2)); then
  echo "usage: scripts/regress.sh [--quick] BASE [HEAD]" >&2
  exit 2
fi
# The coco128 workload looks for ../shared/ next to its source tree, which a worktree under build/regress/ lacks:
# both sides must read this checkout's file, or BASE records those cases as skipped.
if [[ -z ${MULTIBOX_COCO_JSON:-} && -f $ROOT/../shared/datasets/coco128/instances_train2017.json ]]; then
  export MULTIBOX_COCO_JSON=$(realpath "$ROOT/../shared/datasets/coco128/instances_train2017.json")
fi

# Builds revision $1 (a commit, or "" for the working tree) and prints the path of its multibox_bench.
build_revision() {
  local rev=$1 src build
  if [[ -z $rev ]]; then
    src=$ROOT build=$ROOT/build/release
  else
    local sha
    sha=$(git rev-parse --verify "$rev^{commit}")
    src=$ROOT/build/regress/$sha
    [[ -d $src ]] || git worktree add --detach "$src" "$sha" >&2
    build=$src/build/release
  fi
  # The preset pins the flags (Release, -march=native via MULTIBOX_NATIVE). An existing build/release keeps its
  # cache (reconfiguring would change the options the tests were built with there).
  (cd "$src" && { [[ -f $build/CMakeCache.txt ]] || cmake --preset release >&2; } \
     && cmake --build --preset release -j"$(nproc)" --target multibox_bench >&2)
  echo "$build/bin/multibox_bench"
}

bench_a=$(build_revision "${positional[0]}")
bench_b=$(build_revision "${positional[1]:-}")

if ((quick)); then
  filter='^(simd/headline/ssd300-coco-c81/(match|forward|backward)/t2|naive/headline/ssd300-coco-c81/(match|forward|backward)/t1|simd/scale-priors/priors-ssd(300|512)/backward/t2|simd/scale-objects/objects-(10|100)/backward/t2)/'
  rounds=${rounds:-3}
else
  filter='^(naive|simd)/'  # the cuda entries only record "skipped" off a GPU; gpu_check.sh benchmarks them
  rounds=${rounds:-4}
fi

rm -rf "$out" && mkdir -p "$out"
start=$SECONDS
for ((i = 1; i <= rounds; i++)); do
  for side in a b; do
    bin=$bench_a env=()
    [[ $side == b ]] && bin=$bench_b && [[ -n $plant ]] && env=(MULTIBOX_PLANT_SLOWDOWN="$plant")
    echo "regress: round $i/$rounds, side $side" >&2
    env "${env[@]}" "$bin" --benchmark_filter="$filter" --benchmark_repetitions=3 --benchmark_min_time=0.2 \
      --benchmark_out="$out/$side$i.json" --benchmark_out_format=json >/dev/null 2>"$out/$side$i.log" || true
  done
done
echo "regress: $((SECONDS - start)) s of benchmarks" >&2

status=0
/usr/bin/python3 reports/regress.py --base "$out"/a*.json --head "$out"/b*.json --threshold "$threshold" "${junit[@]}" \
  --markdown "$out/report.md" --json "$out/verdict.json" || status=$?
exit $status
