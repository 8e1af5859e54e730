#!/usr/bin/env bash
# The test command: installs dependencies, configures and builds a preset, and runs every test with ctest.
#   bash scripts/test.sh          release preset (-O3)
#   bash scripts/test.sh avx2     release for x86-64-v3 + AES (Highway's AVX2 target): the simd backend's AVX2
#                                 paths, which an AVX-512 machine's native build never compiles
#   bash scripts/test.sh portable release without -march=native: the simd backend on Highway's baseline target,
#                                 so its non-AVX-512 code paths build and pass too
#   bash scripts/test.sh debug    debug preset (AddressSanitizer + UndefinedBehaviorSanitizer)
#   bash scripts/test.sh tsan     ThreadSanitizer preset: builds and runs only the simd backend's threaded tests
#                                 (its own and its conformance suite)
# Exits non-zero when set-up, the build or any test fails.
set -euo pipefail

preset="${1:-release}"
case "${preset}" in
  release | avx2 | portable | debug | tsan) ;;
  *) echo "usage: bash scripts/test.sh [release|avx2|portable|debug|tsan]  (got '${preset}')" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

bash scripts/setup.sh

jobs="$(nproc)"
echo "== configure (${preset})"
cmake --preset "${preset}"
echo "== build (${preset}, -j${jobs})"
cmake --build --preset "${preset}" -j "${jobs}"
echo "== test (${preset})"
# A configure that silently lost every test must not pass as green. The JUnit file (in the build folder) feeds the
# conformance table of scripts/regress.sh --ci.
ctest --preset "${preset}" --no-tests=error --output-junit junit.xml
