#!/usr/bin/env bash
# Coverage-guided fuzzing of every input boundary and of the backends against each other (fuzz/README.md): builds the
# libFuzzer targets of fuzz/ with clang 14, AddressSanitizer and UndefinedBehaviorSanitizer in build/fuzz, then runs
# each one, seeded with the committed corpus and regression inputs, for a bounded time.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]   seconds per target (default: $MULTIBOX_FUZZ_SECONDS, else 60);
#                                                targets: npy coco case_folder validate backends (default: all)
# Exits non-zero on any finding (a crash, a sanitizer report, a broken invariant: "FUZZ FINDING"), after printing
# where libFuzzer saved the input and the command that replays it. New corpus inputs stay in build/fuzz/corpus/.
set -euo pipefail

seconds="${1:-${MULTIBOX_FUZZ_SECONDS:-60}}"
if [[ ! "${seconds}" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: bash scripts/fuzz.sh [SECONDS] [TARGET...]  (got '${seconds}' seconds)" >&2
  exit 2
fi
shift || true
all_targets=(npy coco case_folder validate backends)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" ${t} "* ]] || { echo "fuzz.sh: unknown target '${t}' (${all_targets[*]})" >&2; exit 2; }
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
bash scripts/setup.sh

build=build/fuzz
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
echo "== configure (${build}: clang++-14, libFuzzer, ASan + UBSan)"
# -O1 -g: libFuzzer's recommendation (fast enough, stacks still readable). The CUDA backend stays out: nvcc does not
# take the sanitizer flags, and no GPU is assumed here.
cmake -S . -B "${build}" "${generator[@]}" "${launcher[@]}" -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" -DMULTIBOX_FUZZ=ON \
  -DMULTIBOX_CUDA=OFF -DMULTIBOX_BUILD_TESTS=OFF -DMULTIBOX_BUILD_BENCHMARKS=OFF >"${build}.configure.log" 2>&1 ||
  { cat "${build}.configure.log"; exit 1; }
echo "== build"
cmake --build "${build}" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
mkdir -p "${build}/logs"
failed=()
summary=()
for t in "${targets[@]}"; do
  corpus="${build}/corpus/${t}"
  findings="${build}/findings/${t}"
  log="${build}/logs/${t}.log"
  mkdir -p "${corpus}" "${findings}"
  seeds=(fuzz/corpus/"${t}")
  [[ -d fuzz/regressions/${t} ]] && seeds+=(fuzz/regressions/"${t}")
  dict=()
  [[ -f fuzz/dict/${t}.dict ]] && dict=(-dict=fuzz/dict/"${t}".dict)
  max_len=4096
  [[ ${t} == case_folder || ${t} == validate ]] && max_len=8192
  echo "== fuzz ${t} for ${seconds} s (log: ${log})"
  start=$(date +%s)
  set +e
  # The first folder is where libFuzzer adds new inputs: the build tree's, so the committed seeds are only read.
  "${build}/fuzz/fuzz_${t}" "${corpus}" "${seeds[@]}" "${dict[@]}" -max_total_time="${seconds}" -max_len="${max_len}" \
    -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="${findings}/" >"${log}" 2>&1
  rc=$?
  set -e
  elapsed=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "${log}" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "${log}" | tail -1)
  units=$(find "${corpus}" -type f | wc -l)
  if ((rc == 0)); then
    verdict="no finding"
  else
    verdict="FINDING (exit ${rc})"
    failed+=("${t}")
    grep -E "FUZZ FINDING|ERROR: (AddressSanitizer|libFuzzer)|runtime error|SUMMARY" "${log}" | head -5 || true
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "${log}" | tail -1)
    echo "   input saved: ${artifact:-(none written; see ${log})}"
    [[ -n ${artifact} ]] && echo "   replay: ${build}/fuzz/fuzz_${t} ${artifact}"
    echo "   fixed? copy it to fuzz/regressions/${t}/ so ctest replays it in every build"
  fi
  line=$(printf "  %-12s %5s s %12s execs %8s execs/s %6s corpus  %s" "${t}" "${elapsed}" "${execs:-?}" \
    "${rate:-?}" "${units}" "${verdict}")
  echo "${line}"
  summary+=("${line}")
done

echo "== fuzz summary (${seconds} s per target; log in ${build}/logs/)"
printf "%s\n" "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz.sh: findings in: ${failed[*]}" >&2
  exit 1
fi
