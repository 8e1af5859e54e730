#!/usr/bin/env bash
# Installs a build, builds examples/plugin against the installed package, then checks that the installed tools load
# its plugins: the conformance suite passes example-reference and rejects example-buggy-ties with a repro line naming
# it; a plugin that fails to load fails the suite and the command line.
#   plugin_test.sh BUILD_DIR EXAMPLE_SOURCE_DIR WORK_DIR CXX_COMPILER [EXTRA_CXX_FLAGS]
set -euo pipefail
build=$1 example=$2 work=$3 cxx=$4 extra_flags=${5:-}

fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "${work}"
mkdir -p "${work}"
prefix=${work}/prefix

cmake --install "${build}" --prefix "${prefix}" >"${work}/install.log" || fail "cmake --install (see ${work}/install.log)"
cmake -S "${example}" -B "${work}/example" -DCMAKE_PREFIX_PATH="${prefix}" -DCMAKE_CXX_COMPILER="${cxx}" \
  -DCMAKE_CXX_FLAGS="${extra_flags}" -DCMAKE_MODULE_LINKER_FLAGS="${extra_flags}" >"${work}/configure.log" 2>&1 ||
  { cat "${work}/configure.log"; fail "configuring the example against ${prefix}"; }
cmake --build "${work}/example" -j2 >"${work}/build.log" 2>&1 || { cat "${work}/build.log"; fail "building the example"; }
good=${work}/example/libexample_plugin.so
buggy=${work}/example/libexample_plugin_buggy.so
suite=${prefix}/bin/multibox_property_test
cli=${prefix}/bin/multibox

# A fixed seed and few cases keep this quick and repeatable; the in-tree suite runs the full counts on the built-ins.
cases='seed=7 max_success=100'

echo "== the good plugin passes every property"
MULTIBOX_PLUGINS=${good} RC_PARAMS=${cases} "${suite}" --gtest_brief=1 \
  --gtest_filter='Plugins.*:AllBackends/Conformance.*/example_reference' >"${work}/good.log" 2>&1 ||
  { tail -40 "${work}/good.log"; fail "the conformance suite rejected example-reference"; }
grep -E '^\[==========\] [0-9]+ tests from 2 test suites ran' "${work}/good.log" ||
  fail "the filter matched no conformance test of example-reference"

echo "== the planted bug is caught (the whole suite runs, as a user would run it)"
rc=0
MULTIBOX_PLUGINS=${buggy} RC_PARAMS=${cases} "${suite}" --gtest_brief=1 \
  --gtest_filter='AllBackends/Conformance.*/example_buggy_ties' >"${work}/buggy.log" 2>&1 ||
  rc=$?
((rc != 0)) || { tail -40 "${work}/buggy.log"; fail "the conformance suite passed example-buggy-ties"; }
repro=$(grep -E '^REPRO backend=example-buggy-ties .*RC_PARAMS="reproduce=' "${work}/buggy.log" | head -1) ||
  { tail -40 "${work}/buggy.log"; fail "no one-line repro naming example-buggy-ties"; }
echo "${repro}"

echo "== a plugin that fails to load fails the suite and the command line"
rc=0
MULTIBOX_PLUGINS=${work}/missing.so "${suite}" --gtest_filter='Plugins.*' >"${work}/missing.log" 2>&1 || rc=$?
((rc != 0)) && grep -qF "plugin '${work}/missing.so': no such file" "${work}/missing.log" ||
  { cat "${work}/missing.log"; fail "the suite did not fail on a missing plugin"; }
rc=0
"${cli}" backends --plugin "${work}/missing.so" >"${work}/cli_missing.log" 2>&1 || rc=$?
((rc != 0)) && grep -qF "missing.so': no such file" "${work}/cli_missing.log" ||
  { cat "${work}/cli_missing.log"; fail "multibox backends did not fail on a missing plugin"; }

echo "== the command line lists and runs the plugin backend"
"${cli}" backends --plugin "${good}" | grep -E "^example-reference +available .*\[plugin ${good}\]" ||
  fail "multibox backends does not list example-reference"
"${cli}" --plugin "${good}" eval --workload tutorial --backend example-reference --repeats 1 >"${work}/eval.log" ||
  { cat "${work}/eval.log"; fail "multibox eval on example-reference"; }
grep -q 'L = ' "${work}/eval.log" || fail "multibox eval printed no loss"
echo "PASS"
