#!/usr/bin/env bash
# The CUDA backend's proof on a GPU (issue 9), in two halves, because a GPU machine is lent only now and then, for
# about 15 minutes, with nvcc and PyTorch but none of this project's Debian packages and no package registry.
#
#   bash scripts/gpu_check.sh prepare   CPU machine (CI too): build the tests, CLI and benchmarks with CUDA, gather
#                                       them with every shared library they load (Debian's glibc and loader included,
#                                       libcuda excepted: it must be the GPU machine's driver) into build/gpu-bundle,
#                                       then check it as `dry-run` does and print the device call to make
#   bash scripts/gpu_check.sh dry-run   CPU machine: every bundled binary starts, both through the system loader and
#                                       through the bundled one; the whole `run` goes through (steps without a GPU
#                                       skip) and its report is complete; the plan is printed
#   bash scripts/gpu_check.sh run       GPU machine: tests filtered to cuda, compute-sanitizer, the cuda benchmarks,
#                                       torchvision on the same GPU and inputs; report in $OUT (default out/gpu-check)
#
# `run` stops by itself within GPU_CHECK_BUDGET_S seconds (default 430; a watchdog adds at most 40, so the call
# ends inside 8 minutes): each phase has a deadline, each step a timeout, and a failed step does not stop the next. The device tool brings back
# at most 8 files from $OUT, so logs and gtest XML go to a work folder and come back as one archive; the report is
# rewritten after every step, so a run cut short still leaves one.
#
# Variables: GPU_CHECK_BUILD (build folder, default build/gpu), GPU_CHECK_BUNDLE (default build/gpu-bundle),
# GPU_CHECK_KEEP_GOING=1 (prepare: bundle what built when some target fails), GPU_CHECK_BUDGET_S,
# GPU_CHECK_WORK (run's work folder, default a fresh one under /tmp), GPU_CHECK_PYTHON (python3 with torch for the
# torchvision step, default python3), GPU_CHECK_LAUNCH=system|loader (force how binaries start).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
build="${GPU_CHECK_BUILD:-build/gpu}"
bundle="${GPU_CHECK_BUNDLE:-build/gpu-bundle}"
# The GPU machine's working tree (carried paths included) may hold 64 MiB; the tracked files need some of it.
tree_limit_mib=64

die() { echo "gpu_check: $*" >&2; exit 1; }
now() { date +%s; }

# ---- what runs ----------------------------------------------------------------------------------------------------
# gtest binaries get --gtest_filter="${cuda_filter}" (cuda_host_test runs whole: every test in it is about cuda).
cuda_filter='*cuda*:*Cuda*:*CUDA*'
# Benchmark cases the goals are judged on, dumped for torchvision when --multibox_list_cases has them.
torchvision_cases=(ssd300-coco-c81 ssd300-coco-c81-b256)
# compute-sanitizer runs a reduced set: few property cases (rapidcheck honours RC_PARAMS's max_success as given).
sanitizer_rc_params="max_success=3"
# In this order until the time is up: both tools on the properties (every kernel, many shapes) and the device tests
# first, the worked examples after.
sanitizer_runs=(memcheck:multibox_property_test racecheck:multibox_property_test memcheck:cuda_host_test
                racecheck:cuda_host_test memcheck:unit_loss memcheck:unit_matching memcheck:multibox_case_tests
                racecheck:unit_loss racecheck:unit_matching memcheck:unit_validation)

# ---- prepare ------------------------------------------------------------------------------------------------------

# Libraries that must come from one glibc build together with the loader: used only through the bundled loader.
glibc_libs=(ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libresolv.so.2 libutil.so.1
            libmvec.so.1)
is_glibc_lib() { local n; for n in "${glibc_libs[@]}"; do [[ "$1" == "$n" ]] && return 0; done; return 1; }

gtest_binaries_in_build() {
  # gtest_discover_tests writes NAME[1]_include.cmake beside each test executable: the list follows the build.
  find "${build}" -name '*\[1\]_include.cmake' -not -path '*/CMakeFiles/*' | sort | while read -r f; do
    local exe="${f%\[1\]_include.cmake}"
    [[ -x "${exe}" ]] && echo "${exe}"
  done
}

prepare() {
  local t0; t0=$(now)
  command -v cmake >/dev/null || die "cmake not found (bash scripts/setup.sh installs it)"
  if [[ ! -f "${build}/CMakeCache.txt" ]]; then
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    # No -march=native: the GPU machine's CPU is unknown, and a bundle built for this one could die of SIGILL there.
    cmake -S . -B "${build}" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DMULTIBOX_NATIVE=OFF -DMULTIBOX_CUDA=ON \
      -DMULTIBOX_BUILD_TESTS=ON -DMULTIBOX_BUILD_BENCHMARKS=ON || die "configure failed"
  fi
  local nvcc_version
  nvcc_version="$(grep -h 'set(CMAKE_CUDA_COMPILER_VERSION' "${build}"/CMakeFiles/*/CMakeCUDACompiler.cmake 2>/dev/null |
                  head -1 | grep -o '"[^"]*"' | tr -d '"')"
  [[ -n "${nvcc_version}" ]] ||
    die "${build} was configured without nvcc: the bundle would hold no CUDA backend (is /usr/local/cuda/bin/nvcc there?)"
  local keep=()
  if [[ "${GPU_CHECK_KEEP_GOING:-0}" == 1 ]]; then
    if [[ -f "${build}/build.ninja" ]]; then keep=(-- -k 0); else keep=(-- -k); fi
  fi
  echo "== build ${build} (-j$(nproc))"
  if ! cmake --build "${build}" -j "$(nproc)" "${keep[@]}"; then
    [[ "${GPU_CHECK_KEEP_GOING:-0}" == 1 ]] || die "build failed (GPU_CHECK_KEEP_GOING=1 bundles what did build)"
    echo "gpu_check: build failed; bundling what built (GPU_CHECK_KEEP_GOING=1)" >&2
  fi
  local built=$(( $(now) - t0 ))

  echo "== bundle ${bundle}"
  rm -rf "${bundle}"
  mkdir -p "${bundle}/bin" "${bundle}/lib" "${bundle}/cxx" "${bundle}/glibc" "${bundle}/data"
  local exes=() e
  mapfile -t exes < <(gtest_binaries_in_build)
  for e in bin/multibox bin/multibox_bench; do
    [[ -x "${build}/${e}" ]] && exes+=("${build}/${e}") || echo "gpu_check: ${build}/${e} missing" >&2
  done
  [[ ${#exes[@]} -gt 0 ]] || die "nothing built under ${build}"
  local manifest="${bundle}/manifest.txt"
  {
    echo "# build/gpu-bundle: what scripts/gpu_check.sh run executes on a GPU machine (written by prepare)"
    echo "created $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit $(git rev-parse HEAD 2>/dev/null)$(git diff --quiet HEAD -- impls bench datasets cli property_tests tests 2>/dev/null || echo '+uncommitted')"
    echo "host $(uname -n) $(ldd --version 2>/dev/null | head -1)"
    echo "source_root ${root}"
    echo "build ${build} (portable, Release) nvcc ${nvcc_version}"
  } > "${manifest}"

  local libs=() line lib path name
  for e in "${exes[@]}"; do
    name="$(basename "${e}")"
    cp "${e}" "${bundle}/bin/${name}"
    strip --strip-unneeded "${bundle}/bin/${name}"
    if [[ "${e}" == */bin/multibox || "${e}" == */bin/multibox_bench ]]; then
      echo "binary ${name} tool" >> "${manifest}"
    else
      echo "binary ${name} gtest" >> "${manifest}"
    fi
    while read -r line; do
      # "libfmt.so.9 => /lib/x86_64-linux-gnu/libfmt.so.9 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
      path="$(awk '{ if ($2 == "=>") print $3; else print $1 }' <<< "${line}")"
      [[ "${path}" == /* ]] || continue
      libs+=("${path}")
    done < <(ldd "${e}")
  done
  # libcuda (and libcudart, were it linked) load the GPU machine's own driver stack at run time; the loader-mode
  # run needs these glibc pieces for libcuda itself, whether or not our binaries name them.
  for name in libdl.so.2 libpthread.so.0 librt.so.1; do
    path="$(ldconfig -p | awk -v n="${name}" '$1 == n && /x86-64/ { print $NF; exit }')"
    [[ -n "${path}" ]] && libs+=("${path}")
  done
  local seen=" "
  for path in "${libs[@]}"; do
    name="$(basename "${path}")"
    [[ "${seen}" == *" ${name} "* ]] && continue
    seen+="${name} "
    case "${name}" in
      libcuda.so* | libnvidia-*) continue ;;
      libstdc++.so* | libgcc_s.so*) cp -L "${path}" "${bundle}/cxx/${name}" ;;
      *) if is_glibc_lib "${name}"; then cp -L "${path}" "${bundle}/glibc/${name}"; else cp -L "${path}" "${bundle}/lib/${name}"; fi ;;
    esac
    echo "library ${name} ${path}" >> "${manifest}"
  done
  [[ -f "${bundle}/glibc/ld-linux-x86-64.so.2" ]] || die "no ld-linux-x86-64.so.2 in ldd's output"

  # The coco128 workload (benchmark group 'real', the COCO tests) reads ../shared/datasets, which does not travel.
  local coco="" cand
  for cand in "${MULTIBOX_COCO_JSON:-}" "$(grep -h '^MULTIBOX_SHARED_DATASETS:' "${build}/CMakeCache.txt" | cut -d= -f2)/coco128/instances_train2017.json" \
              "${root}/../shared/datasets/coco128/instances_train2017.json"; do
    [[ -n "${cand}" && -f "${cand}" ]] && { coco="${cand}"; break; }
  done
  if [[ -n "${coco}" ]]; then
    mkdir -p "${bundle}/data/coco128"
    cp "${coco}" "${bundle}/data/coco128/instances_train2017.json"
    echo "data coco128/instances_train2017.json ${coco}" >> "${manifest}"
  else
    echo "gpu_check: no coco128 annotations found: the 'real' benchmarks and COCO tests will skip on the GPU" >&2
    echo "data none (coco128 annotations not found at prepare time)" >> "${manifest}"
  fi

  local bundle_kib tree_kib
  bundle_kib=$(du -sk "${bundle}" | cut -f1)
  tree_kib=$(git ls-files -z -co --exclude-standard | xargs -0 du -ck 2>/dev/null | tail -1 | cut -f1)
  echo "bundle ${bundle}: $(( bundle_kib / 1024 )) MiB ($(ls "${bundle}/bin" | wc -l) binaries, $(ls "${bundle}/lib" "${bundle}/cxx" "${bundle}/glibc" | grep -c '\.so')" \
       "libraries); working tree that travels with it: $(( tree_kib / 1024 )) MiB; limit ${tree_limit_mib} MiB together"
  (( (bundle_kib + tree_kib) / 1024 < tree_limit_mib )) ||
    die "bundle plus working tree exceed ${tree_limit_mib} MiB: the device tool would refuse to send them"
  echo "prepare: build ${built} s, bundle ready in $(( $(now) - t0 )) s total"
}

# ---- starting bundled binaries ------------------------------------------------------------------------------------

driver_dir=""   # a folder of links to the GPU driver's libcuda and libnvidia-* (empty: none found)
launch=()       # prefix that starts a bundled binary: env LD_LIBRARY_PATH=... or the bundled loader
launch_mode=""

find_driver() {
  local dirs=() d seen=" "
  while read -r d; do dirs+=("$(dirname "${d}")"); done < <(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 / { print $NF }')
  dirs+=(/usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /lib/x86_64-linux-gnu)
  for d in "${dirs[@]}"; do
    [[ -e "${d}/libcuda.so.1" ]] || continue
    [[ "${seen}" == *" ${d} "* ]] && continue
    seen+="${d} "
    # Links to the driver's own libraries only: the whole system folder would also put its glibc on the bundled
    # loader's path.
    driver_dir="${work}/driver-libs"
    mkdir -p "${driver_dir}"
    local f
    for f in "${d}"/libcuda.so* "${d}"/libnvidia-*.so*; do
      [[ -e "${f}" && ! -e "${driver_dir}/$(basename "${f}")" ]] && ln -s "${f}" "${driver_dir}/$(basename "${f}")"
    done
    echo "driver libraries from ${d}"
  done
  [[ -n "${driver_dir}" ]] || echo "no libcuda.so.1 found (ldconfig -p, /usr/local/nvidia/lib64, /usr/lib/x86_64-linux-gnu, /usr/lib64)"
}

set_launch() {
  local b="${root}/${bundle}" extra="${driver_dir:+:${driver_dir}}"
  case "$1" in
    # The machine's own LD_LIBRARY_PATH stays after ours: an image may find its driver through it.
    system) launch=(env "LD_LIBRARY_PATH=${b}/lib${extra}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}") ;;
    system-cxx) launch=(env "LD_LIBRARY_PATH=${b}/lib:${b}/cxx${extra}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}") ;;
    loader) launch=("${b}/glibc/ld-linux-x86-64.so.2" --library-path "${b}/lib:${b}/cxx:${b}/glibc${extra}") ;;
  esac
  launch_mode="$1"
}

# Starts every bundled binary in its cheapest way: a loader that cannot start one fails here, not mid-run.
starts_all() {
  local exe name kind rest
  while read -r kind name rest; do
    [[ "${kind}" == binary ]] || continue
    exe="${root}/${bundle}/bin/${name}"
    case "${name}" in
      multibox) timeout 60 "${launch[@]}" "${exe}" --help > /dev/null 2>&1 ;;
      multibox_bench) timeout 60 "${launch[@]}" "${exe}" --multibox_list_cases > /dev/null 2>&1 ;;
      *) timeout 60 "${launch[@]}" "${exe}" --gtest_list_tests > /dev/null 2>&1 ;;
    esac || { echo "  ${launch_mode}: ${name} does not start"; return 1; }
  done < "${bundle}/manifest.txt"
}

choose_launch() {
  local modes=(system system-cxx loader) m
  [[ -n "${GPU_CHECK_LAUNCH:-}" ]] && modes=("${GPU_CHECK_LAUNCH}")
  for m in "${modes[@]}"; do
    set_launch "${m}"
    if starts_all; then echo "launch mode: ${m} (${launch[*]})"; return 0; fi
  done
  launch_mode=""
  return 1
}

# ---- run ----------------------------------------------------------------------------------------------------------

step_log() { echo "${work}/logs/$1.log"; }

# record NAME STATUS RC SECONDS NOTE: one line of steps.tsv, which gpu_report.py reads.
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5//$'\t'/ }" >> "${work}/steps.tsv"; }

report() {
  python3 "${root}/scripts/gpu_report.py" --work "${work}" --out "${OUT}" --budget "${budget}" --started "${started}" \
    > "${work}/logs/report.log" 2>&1 || echo "gpu_check: gpu_report.py failed (see logs/report.log)"
  tar -C "${work}" -czf "${OUT}/gpu-check-logs.tar.gz" logs xml steps.tsv 2>/dev/null
}

# step NAME PHASE_END BUDGET COMMAND...: runs COMMAND under a timeout that ends by the phase's deadline.
step() {
  local name="$1" phase_end="$2" cap="$3"; shift 3
  local left=$(( phase_end - $(now) )) t0 rc status note=""
  (( left < cap )) && cap="${left}"
  if (( cap < 3 )); then
    record "${name}" skip "" 0 "out of time (phase deadline reached)"
    echo "-- ${name}: skipped, out of time"
    return 0
  fi
  t0=$(now)
  echo "-- ${name} (up to ${cap} s): $*" | tee -a "$(step_log "${name}")"
  timeout -k 5 "${cap}" "$@" >> "$(step_log "${name}")" 2>&1
  rc=$?
  case "${rc}" in
    0) status=pass ;;
    124 | 137) status=timeout; note="stopped after ${cap} s" ;;
    *) status=fail ;;
  esac
  record "${name}" "${status}" "${rc}" "$(( $(now) - t0 ))" "${note}"
  echo "   ${status} (rc ${rc}, $(( $(now) - t0 )) s)"
  report
}

gtest_count() {  # number of tests FILTER selects in a bundled gtest binary
  timeout 60 "${launch[@]}" "${root}/${bundle}/bin/$1" --gtest_list_tests --gtest_filter="$2" 2>/dev/null | grep -c '^  '
}

run_checks() {
  local dry="${1:-0}"
  started=$(now)
  budget="${GPU_CHECK_BUDGET_S:-430}"
  OUT="${OUT:-${root}/out/gpu-check}"
  mkdir -p "${OUT}"
  OUT="$(cd "${OUT}" && pwd)"
  work="${GPU_CHECK_WORK:-$(mktemp -d /tmp/gpu-check.XXXXXX)}"
  rm -rf "${work}/logs" "${work}/xml" "${work}/steps.tsv" "${work}/inputs"
  mkdir -p "${work}/logs" "${work}/xml"
  : > "${work}/steps.tsv"
  [[ -f "${bundle}/manifest.txt" ]] || die "no ${bundle}/manifest.txt: run 'bash scripts/gpu_check.sh prepare' on a CPU machine and carry ${bundle}"
  cp "${bundle}/manifest.txt" "${work}/logs/manifest.txt"
  # Phase deadlines as fractions of the budget: tests, benchmarks, torchvision, then the sanitizers, whose time on
  # this driver is the least predictable (gVisor machines refuse them outright).
  local t_env=$(( started + budget * 5 / 100 )) t_tests=$(( started + budget * 38 / 100 ))
  local t_bench=$(( started + budget * 60 / 100 )) t_tv=$(( started + budget * 76 / 100 )) t_end=$(( started + budget ))
  local py="${GPU_CHECK_PYTHON:-python3}" b="${root}/${bundle}/bin"
  echo "== gpu_check run: bundle ${bundle}, OUT=${OUT}, work ${work}, budget ${budget} s"

  # a. the machine, how binaries start, and whether cuda is available
  {
    echo "== uname"; uname -a
    echo "== os"; cat /etc/os-release 2>/dev/null | head -4
    echo "== glibc"; ldd --version 2>/dev/null | head -1
    echo "== cpu"; grep -m1 'model name' /proc/cpuinfo; nproc
    echo "== nvidia-smi"
    if command -v nvidia-smi >/dev/null; then
      timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
      timeout 20 nvidia-smi
    else
      echo "nvidia-smi: not found"
    fi
    echo "== compute-sanitizer"; timeout 20 compute-sanitizer --version 2>&1 | tail -2 || echo "compute-sanitizer: not found"
    echo "== python"; timeout 60 "${py}" -c 'import sys, torch, torchvision; print(sys.executable, torch.__version__, torchvision.__version__, "cuda", torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))' 2>&1 | tail -1
  } > "$(step_log environment)" 2>&1
  if grep -q '^name, driver_version' "$(step_log environment)"; then
    record environment pass 0 0 "$(grep -A1 '^name, driver_version' "$(step_log environment)" | tail -1)"
  else
    record environment skip "" 0 "no nvidia-smi: not a GPU machine"
  fi

  find_driver > "$(step_log launch)" 2>&1
  # The source folder's path is compiled into the golden tests (MULTIBOX_GOLDEN_DIR); the tree travels, its path
  # may not: point the old path at this one when it is free (a bare machine, as root).
  local src_root; src_root="$(awk '$1 == "source_root" { print $2 }' "${bundle}/manifest.txt")"
  if [[ -n "${src_root}" && "${src_root}" != "${root}" && ! -e "${src_root}" ]]; then
    if mkdir -p "$(dirname "${src_root}")" 2>/dev/null && ln -s "${root}" "${src_root}" 2>/dev/null; then
      echo "linked ${src_root} -> ${root} (paths compiled into the tests)" >> "$(step_log launch)"
    else
      echo "cannot link ${src_root} -> ${root}: golden tests will not find their files" >> "$(step_log launch)"
    fi
  fi
  if [[ -f "${bundle}/data/coco128/instances_train2017.json" ]]; then
    export MULTIBOX_COCO_JSON="${root}/${bundle}/data/coco128/instances_train2017.json"
  fi
  if choose_launch >> "$(step_log launch)" 2>&1; then
    record launch pass 0 0 "${launch_mode}"
  else
    record launch fail 1 0 "no way to start the bundled binaries (see logs/launch.log)"
    echo "gpu_check: the bundled binaries do not start here; see $(step_log launch)" >&2
    report
    return 1
  fi
  cat "$(step_log launch)"
  step backends "${t_env}" 30 "${launch[@]}" "${b}/multibox" backends
  local cuda_ok=0
  grep -Eq '^cuda +available' "$(step_log backends)" && cuda_ok=1
  echo "   cuda available: ${cuda_ok}"
  echo "cuda_available ${cuda_ok}" >> "${work}/logs/manifest.txt"

  # b. every test on cuda: the cuda-only binary whole, the rest filtered; the long property suite last
  local name filter n names=()
  mapfile -t names < <(awk '$1 == "binary" && $3 == "gtest" { print $2 }' "${bundle}/manifest.txt" |
                       sort | awk '$1 == "cuda_host_test" { print "0 " $1; next } $1 == "multibox_property_test" { print "2 " $1; next } { print "1 " $1 }' |
                       sort | cut -d' ' -f2)
  for name in "${names[@]}"; do
    filter="${cuda_filter}"
    [[ "${name}" == cuda_host_test ]] && filter='*'
    n=$(gtest_count "${name}" "${filter}")
    if [[ "${n}" == 0 ]]; then
      record "test-${name}" skip "" 0 "no cuda tests in this binary"
      continue
    fi
    step "test-${name}" "${t_tests}" 240 "${launch[@]}" "${b}/${name}" --gtest_filter="${filter}" \
      --gtest_output="xml:${work}/xml/${name}.xml"
  done

  # d. benchmarks: the goals' cases first (3 repetitions: medians), the rest once, each to its own JSON
  n=$(timeout 60 "${launch[@]}" "${b}/multibox_bench" --benchmark_list_tests --benchmark_filter='^cuda' 2>/dev/null | grep -c '^cuda')
  echo "cuda benchmarks registered: ${n}" | tee "$(step_log bench-list)"
  if [[ "${n}" == 0 ]]; then
    record bench-headline skip "" 0 "no benchmark named cuda/... or cuda-device/... is registered"
  elif [[ "${cuda_ok}" == 0 ]]; then
    record bench-headline skip "" 0 "cuda unavailable here: every cuda benchmark would only report its skip"
  else
    step bench-headline "${t_bench}" 200 "${launch[@]}" "${b}/multibox_bench" --benchmark_filter='^cuda(-device)?/headline/' \
      --benchmark_repetitions=3 --benchmark_out="${OUT}/bench-cuda.json" --benchmark_out_format=json
    step bench-rest "${t_bench}" 200 "${launch[@]}" "${b}/multibox_bench" --benchmark_filter='^cuda(-device)?/[^h]' \
      --benchmark_out="${OUT}/bench-cuda-rest.json" --benchmark_out_format=json
  fi

  # e. torchvision's SSDMatcher + SSD.compute_loss + autograd on the same GPU and the same inputs
  local listed=() cases=() c
  mapfile -t listed < <(timeout 60 "${launch[@]}" "${b}/multibox_bench" --multibox_list_cases 2>/dev/null | awk '{ print $2 }')
  for c in "${torchvision_cases[@]}"; do
    [[ " ${listed[*]} " == *" ${c} "* ]] && cases+=("${c}")
  done
  if ! timeout 60 "${py}" -c 'import numpy, torch, torchvision; assert torch.cuda.is_available(), "torch.cuda.is_available() is False"' \
       > "$(step_log torchvision-probe)" 2>&1; then
    record torchvision skip "" 0 "${py}: $(tail -1 "$(step_log torchvision-probe)")"
    # The unavailable file still says why, for the report.
    "${py}" "${root}/bench/torchvision_bench.py" --inputs "${work}/inputs" --out "${OUT}/torchvision-cuda.json" --device cuda \
      >> "$(step_log torchvision-probe)" 2>&1
  elif [[ ${#cases[@]} == 0 ]]; then
    record torchvision skip "" 0 "none of ${torchvision_cases[*]} in multibox_bench --multibox_list_cases"
  else
    local joined; joined="$(IFS=,; echo "${cases[*]}")"
    step torchvision-inputs "${t_tv}" 120 "${launch[@]}" "${b}/multibox_bench" --multibox_dump_inputs="${work}/inputs" \
      --multibox_dump_cases="${joined}"
    step torchvision "${t_tv}" 240 env PYTHONUNBUFFERED=1 "${py}" "${root}/bench/torchvision_bench.py" --inputs "${work}/inputs" \
      --out "${OUT}/torchvision-cuda.json" --device cuda --repetitions 10 --warmup 3
    rm -rf "${work}/inputs"
  fi

  # c. compute-sanitizer on a reduced set. The system loader's library path is set for the tool too (it holds only
  # libraries the tool does not use, unless system-cxx); the bundled loader is the tool's target, ahead of the binary.
  local sanitizer=""
  if command -v compute-sanitizer >/dev/null; then sanitizer=compute-sanitizer
  elif [[ -x /usr/local/cuda/bin/compute-sanitizer ]]; then sanitizer=/usr/local/cuda/bin/compute-sanitizer; fi
  local tool pair before=("${launch[@]}") after=()
  [[ "${launch_mode}" == loader ]] && before=() after=("${launch[@]}")
  for pair in "${sanitizer_runs[@]}"; do
    tool="${pair%%:*}" name="${pair#*:}"
    if [[ -z "${sanitizer}" ]]; then record "${tool}-${name}" skip "" 0 "compute-sanitizer not found"; continue; fi
    if [[ "${cuda_ok}" == 0 ]]; then record "${tool}-${name}" skip "" 0 "cuda unavailable here"; continue; fi
    [[ -x "${b}/${name}" ]] || { record "${tool}-${name}" skip "" 0 "not in the bundle"; continue; }
    filter="${cuda_filter}"
    [[ "${name}" == cuda_host_test ]] && filter='*'
    step "${tool}-${name}" "${t_end}" 60 env RC_PARAMS="${sanitizer_rc_params}" "${before[@]}" "${sanitizer}" --tool "${tool}" \
      --error-exitcode 99 --target-processes all "${after[@]}" "${b}/${name}" --gtest_filter="${filter}" \
      --gtest_output="xml:${work}/xml/${tool}-${name}.xml"
  done

  report
  echo "== done in $(( $(now) - started )) s; report: ${OUT}/gpu-report.md"
  [[ -f "${OUT}/gpu-report.md" ]] && cat "${OUT}/gpu-report.md"
  [[ "${dry}" == 1 ]] && return 0
  python3 - "${OUT}/gpu-report.json" <<'EOF'
import json, sys
sys.exit(0 if json.load(open(sys.argv[1])).get("verdict") == "PASS" else 1)
EOF
}

# ---- dry-run --------------------------------------------------------------------------------------------------------

print_plan() {
  cat <<EOF
== on a GPU machine, the device tool's run with
     carry:     ["${bundle}"]
     command:   bash scripts/gpu_check.sh run
     timeout_s: 540    (the script stops itself within ${GPU_CHECK_BUDGET_S:-430} s + a 40 s watchdog, under 8 minutes)
   then copy the report files it brings back (gpu-report.md, gpu-report.json, bench-cuda*.json,
   torchvision-cuda.json) into reports/measured/<date>-gpu/ and commit them.
== what that run does, in this order, each step with its own timeout and log:
   a. nvidia-smi, OS and glibc, compute-sanitizer and torch versions; how the bundled binaries start; multibox backends
   b. gtest, --gtest_filter='${cuda_filter}' (cuda_host_test whole), XML per binary:
$(awk '$1 == "binary" && $3 == "gtest" { printf "        %s\n", $2 }' "${bundle}/manifest.txt")
   d. multibox_bench --benchmark_filter='^cuda(-device)?/headline/' --benchmark_repetitions=3 -> bench-cuda.json,
      then '^cuda(-device)?/[^h]' once -> bench-cuda-rest.json
   e. multibox_bench --multibox_dump_inputs (${torchvision_cases[*]}), then
      python3 bench/torchvision_bench.py --device cuda -> torchvision-cuda.json
   c. compute-sanitizer (RC_PARAMS=${sanitizer_rc_params}), tool:binary, in this order while time is left:
        ${sanitizer_runs[*]}
   f. gpu-report.md + gpu-report.json (scripts/gpu_report.py), rewritten after every step; logs and XML in
      gpu-check-logs.tar.gz
EOF
}

dry_run() {
  [[ -f "${bundle}/manifest.txt" ]] || die "no ${bundle}: run 'bash scripts/gpu_check.sh prepare' first"
  local m failed=0
  work="$(mktemp -d /tmp/gpu-check-dry.XXXXXX)"
  find_driver > /dev/null
  echo "== every bundled binary starts, through each loader"
  for m in system loader; do
    set_launch "${m}"
    if starts_all; then echo "  ${m}: all start (${launch[0]})"; else failed=1; fi
  done
  set_launch loader
  echo "== multibox backends through the bundled loader"
  "${launch[@]}" "${root}/${bundle}/bin/multibox" backends || failed=1
  echo "== gpu_report.py on no input at all"
  mkdir -p "${work}/empty/logs" "${work}/empty-out"
  python3 "${root}/scripts/gpu_report.py" --work "${work}/empty" --out "${work}/empty-out" > /dev/null &&
    [[ -s "${work}/empty-out/gpu-report.md" ]] || { echo "  gpu_report.py failed on an empty work folder"; failed=1; }
  echo "== gpu_report.py on synthetic GPU runs (scripts/tests/test_gpu_report.py)"
  python3 "${root}/scripts/tests/test_gpu_report.py" > "${work}/report-tests.log" 2>&1 ||
    { cat "${work}/report-tests.log"; failed=1; }
  tail -1 "${work}/report-tests.log"
  echo "== the whole run, here (no GPU: its GPU steps must skip, never pass)"
  local out="${work}/out"
  if ! (OUT="${out}" GPU_CHECK_WORK="${work}/run" GPU_CHECK_BUDGET_S="${GPU_CHECK_BUDGET_S:-300}" run_checks 1) \
       > "${work}/run.log" 2>&1; then
    cat "${work}/run.log"; echo "  run failed"; failed=1
  fi
  python3 - "${out}" <<'EOF' || failed=1
import json, os, sys
out = sys.argv[1]
report = json.load(open(os.path.join(out, "gpu-report.json")))
files = sorted(os.listdir(out))
problems = []
if len(files) > 8:
    problems.append(f"{len(files)} files in OUT; the device tool brings back 8")
if report.get("cuda_available"):
    problems.append("cuda reported available on a machine without a GPU")
passed = [g["id"] for g in report["goals"] if g["verdict"] == "PASS"]
if passed:
    problems.append(f"goals judged PASS without a GPU: {passed}")
if report["verdict"] == "PASS":
    problems.append("overall verdict PASS without a GPU")
for s in report["steps"]:
    t = s.get("tests") or {}
    # cuda_host_test is host code and passes anywhere, as do unit_limits' plan-time refusals (B > 65535 is refused
    # before any device call); every other cuda test needs the device.
    if s["name"].startswith("test-") and s["name"] not in ("test-cuda_host_test", "test-unit_limits") \
            and t.get("passed"):
        problems.append(f"{s['name']}: {t['passed']} cuda tests passed without a GPU")
print("  OUT holds:", ", ".join(files))
print("  steps:", ", ".join(f"{s['name']}={s['status']}" for s in report["steps"]))
for p in problems:
    print("  PROBLEM:", p)
sys.exit(1 if problems else 0)
EOF
  print_plan
  if (( failed )); then echo "dry-run: FAILED (logs in ${work})"; return 1; fi
  rm -rf "${work}"
  echo "dry-run: OK"
}

case "${1:-}" in
  prepare) prepare && dry_run ;;
  dry-run) dry_run ;;
  run)
    # The steps' timeouts leave out the probes between them (imports, test lists): this bounds the whole.
    guard=$(( ${GPU_CHECK_BUDGET_S:-430} + 30 ))
    timeout -k 10 "${guard}" bash "${BASH_SOURCE[0]}" run-unguarded
    rc=$?
    (( rc == 124 || rc == 137 )) && echo "gpu_check: stopped by the ${guard} s watchdog; the report is as of the last step" >&2
    exit "${rc}" ;;
  run-unguarded) run_checks 0 ;;
  plan) print_plan ;;
  *) echo "usage: bash scripts/gpu_check.sh prepare|dry-run|run|plan" >&2; exit 2 ;;
esac
