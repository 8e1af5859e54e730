#!/usr/bin/env bash
# Did HEAD make any benchmark slower than BASE? Builds both revisions with the release preset's flags in git worktrees
# under build/regress/, runs multibox_bench on them interleaved (A B, then B A, ..., so the machine's drift and any
# first-run advantage hit both sides alike) and hands the JSON to reports/regress.py, whose exit status this returns
# (0 pass, 1 regression, 2 nothing compared).
#
#   bash scripts/regress.sh [--quick] [--rounds N] [--threshold 0.10] [--plant SPEC] BASE [HEAD]
#   bash scripts/regress.sh --ci                     the check .ci/run ends with (against reports/baseline/)
#   bash scripts/regress.sh --refresh-baseline       records reports/baseline/ from the committed HEAD
#
# HEAD omitted: the current working tree, built in build/release (the release preset's own folder).
# --quick: the headline simd and naive cases plus four scaling points, 3 rounds of 3 repetitions (~2 min on 2 cores).
# Default: every CPU benchmark (48), 4 rounds of 3 repetitions (several minutes). Each repetition runs >= 0.2 s: the
# pooled rounds, not long repetitions, are what tame this machine's drift.
# --plant SPEC: MULTIBOX_PLANT_SLOWDOWN=SPEC for the HEAD runs only (e.g. simd:forward:1.3), the gate's self-test.
# --junit-base/--junit-head FILE: ctest --output-junit files (or a baseline's tests.json) for the conformance table.
# --baseline DIR: BASE is a recorded baseline (context.json, base*.json, tests.json). On a machine like the one that
#   recorded it (same CPU model, core count and caches) its JSON is the BASE side as it stands; on any other machine
#   its commit is rebuilt here and run interleaved, because times from another CPU say nothing about this change.
# --ci: --quick --baseline reports/baseline --threshold 0.5, conformance from build/release/junit.xml (written by
#   scripts/test.sh). 50 %: runs of one binary on this kind of shared 2-core VM differ by up to 30 % between
#   sessions, and the gate must never fail CI on that, while a 2x slowdown (+100 %) of a headline stage clears it.
# Outputs in out/regress/: report.md (also printed), verdict.json, the raw runs a*.json / b*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

quick=0 rounds="" threshold=0.10 plant="" out=out/regress baseline="" refresh=""
positional=() junit=()
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --rounds) rounds=$2; shift ;;
    --threshold) threshold=$2; shift ;;
    --plant) plant=$2; shift ;;
    --out) out=$2; shift ;;
    --junit-base|--junit-head) junit+=("$1" "$(realpath "$2")"); shift ;;
    --baseline) baseline=$2; shift ;;
    --ci)
      quick=1 threshold=0.5 baseline=reports/baseline
      [[ -f build/release/junit.xml ]] && junit+=(--junit-head "$ROOT/build/release/junit.xml") ;;
    --refresh-baseline) quick=1 refresh=reports/baseline ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) positional+=("$1") ;;
  esac
  shift
done
if [[ -n $refresh ]]; then
  ((${#positional[@]} == 0)) || { echo "usage: scripts/regress.sh --refresh-baseline  (it writes reports/baseline/)" >&2; exit 2; }
elif [[ -n $baseline ]]; then
  ((${#positional[@]} <= 1)) || { echo "usage: scripts/regress.sh --baseline DIR [HEAD]" >&2; exit 2; }
elif ((${#positional[@]} < 1 || ${#positional[@]} > 2)); then
  echo "usage: scripts/regress.sh [--quick] BASE [HEAD]  (--help for the rest)" >&2
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
  # cache (reconfiguring would change the options the tests were built with there). A worktree of another revision
  # is built without CUDA: neither tier runs the cuda benchmarks (gpu_check.sh does), and nvcc would add minutes.
  local extra=()
  [[ -n $rev ]] && extra=(-DMULTIBOX_CUDA=OFF)
  (cd "$src" && { [[ -f $build/CMakeCache.txt ]] || cmake --preset release "${extra[@]}" >&2; } \
     && cmake --build --preset release -j"$(nproc)" --target multibox_bench >&2)
  echo "$build/bin/multibox_bench"
}

# This machine as a baseline's context.json describes it: what decides whether its recorded times can be compared.
machine_context() {
  /usr/bin/python3 - <<'PY'
import json, os
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
caches = {}
for d in sorted(os.listdir("/sys/devices/system/cpu/cpu0/cache")) if os.path.isdir("/sys/devices/system/cpu/cpu0/cache") else []:
    if d.startswith("index"):
        rd = lambda f: open(f"/sys/devices/system/cpu/cpu0/cache/{d}/{f}").read().strip()
        caches[f"L{rd('level')}{rd('type')[0].lower() if rd('level') == '1' else ''}"] = rd("size")
print(json.dumps({"cpu_model": model, "num_cpus": os.cpu_count(), "caches": caches}, sort_keys=True))
PY
}

if ((quick)); then
  filter='^(simd/headline/ssd300-coco-c81/(match|forward|backward)/t2|naive/headline/ssd300-coco-c81/(match|forward|backward)/t1|simd/scale-priors/priors-ssd(300|512)/backward/t2|simd/scale-objects/objects-(10|100)/backward/t2)/'
  rounds=${rounds:-3}
else
  filter='^(naive|simd)/'  # the cuda entries only record "skipped" off a GPU; gpu_check.sh benchmarks them
  rounds=${rounds:-4}
fi

# One multibox_bench run of the tier's benchmarks: run BIN JSON LOG [env...]
run_bench() {
  local bin=$1 json=$2 log=$3
  shift 3
  env "$@" "$bin" --benchmark_filter="$filter" --benchmark_repetitions=3 --benchmark_min_time=0.2 \
    --benchmark_out="$json" --benchmark_out_format=json >/dev/null 2>"$log" || true
}

if [[ -n $refresh ]]; then
  # A baseline names the commit it measured, so it is recorded from a committed, unmodified tree only.
  if [[ -n $(git status --porcelain --untracked-files=no) ]]; then
    echo "regress: --refresh-baseline needs a clean tree (commit first); it records HEAD $(git rev-parse --short HEAD)" >&2
    exit 2
  fi
  [[ -f build/release/junit.xml ]] || { echo "regress: run 'bash scripts/test.sh' first (build/release/junit.xml)" >&2; exit 2; }
  bench=$(build_revision "")
  mkdir -p "$refresh" && rm -f "$refresh"/base*.json
  for ((i = 1; i <= rounds; i++)); do
    echo "regress: baseline round $i/$rounds" >&2
    run_bench "$bench" "$refresh/base$i.json" /dev/null
  done
  /usr/bin/python3 reports/regress.py --summarise-junit build/release/junit.xml > "$refresh/tests.json"
  machine_context | /usr/bin/python3 -c '
import json, sys, datetime, subprocess
ctx = json.load(sys.stdin)
ctx.update(commit=sys.argv[1], recorded=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           tier="quick", rounds=int(sys.argv[2]), repetitions=3)
json.dump(ctx, open(sys.argv[3], "w"), indent=1, sort_keys=True)' "$(git rev-parse HEAD)" "$rounds" "$refresh/context.json"
  echo "regress: baseline of $(git rev-parse --short HEAD) written to $refresh/ (context.json, base1..$rounds.json, tests.json)"
  exit 0
fi

rm -rf "$out" && mkdir -p "$out"
base_files=() label_a=""
if [[ -n $baseline ]]; then
  [[ -f $baseline/context.json ]] || { echo "regress: no $baseline/context.json (see docs/ci.md)" >&2; exit 2; }
  base_commit=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["commit"])' "$baseline/context.json")
  [[ -f $baseline/tests.json ]] && ! [[ " ${junit[*]} " == *" --junit-base "* ]] && junit+=(--junit-base "$baseline/tests.json")
  if /usr/bin/python3 -c '
import json, sys
keys = ("cpu_model", "num_cpus", "caches")
rec, here = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
sys.exit(0 if all(rec.get(k) == here.get(k) for k in keys) else 1)' "$baseline/context.json" "$(machine_context)"; then
    base_files=("$baseline"/base*.json)
    label_a="baseline ${base_commit:0:10} as recorded on this kind of machine ($baseline/)"
  else
    echo "regress: this machine is not the baseline's ($(machine_context)); rebuilding ${base_commit:0:10} here" >&2
    positional=("$base_commit" "${positional[@]}")
    label_a="baseline ${base_commit:0:10}, rebuilt and run here (another CPU recorded $baseline/)"
  fi
fi

if ((${#base_files[@]} > 0)); then
  bench_b=$(build_revision "${positional[0]:-}")
else
  bench_a=$(build_revision "${positional[0]}")
  bench_b=$(build_revision "${positional[1]:-}")
fi

start=$SECONDS
for ((i = 1; i <= rounds; i++)); do
  order=(a b)
  ((i % 2 == 0)) && order=(b a)  # alternate who goes first: a cache warmed by the previous run favours the second
  for side in "${order[@]}"; do
    if [[ $side == a ]]; then
      ((${#base_files[@]} > 0)) && continue
      echo "regress: round $i/$rounds, side A" >&2
      run_bench "$bench_a" "$out/a$i.json" "$out/a$i.log"
    else
      echo "regress: round $i/$rounds, side B" >&2
      env=()
      [[ -n $plant ]] && env=(MULTIBOX_PLANT_SLOWDOWN="$plant")
      run_bench "$bench_b" "$out/b$i.json" "$out/b$i.log" "${env[@]}"
    fi
  done
done
echo "regress: $((SECONDS - start)) s of benchmarks" >&2
((${#base_files[@]} > 0)) || base_files=("$out"/a*.json)

status=0
/usr/bin/python3 reports/regress.py --base "${base_files[@]}" --head "$out"/b*.json --threshold "$threshold" \
  ${label_a:+--label-base "$label_a"} "${junit[@]}" --markdown "$out/report.md" --json "$out/verdict.json" || status=$?
exit $status
