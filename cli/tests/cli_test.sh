#!/usr/bin/env bash
# Command-line checks run by ctest: `cli_test.sh MULTIBOX CASE`. Each case checks an exit status and the words a
# user would read, so a crash, a silent success or an unhelpful message fails.
set -uo pipefail

multibox="$1"
case_name="$2"

fail() {
  echo "FAILED ${case_name}: $*" >&2
  exit 1
}

# Runs the tool; sets `out` (stdout + stderr) and `rc`.
run() {
  out="$("${multibox}" "$@" 2>&1)"
  rc=$?
  echo "\$ multibox $* -> exit ${rc}"
  echo "${out}" | head -40
}

expect_error() {  # expect_error "words in the message" args...
  local words="$1"
  shift
  run "$@"
  ((rc != 0)) || fail "expected a non-zero exit"
  ((rc < 128)) || fail "died from a signal (exit ${rc})"
  grep -qF -- "${words}" <<<"${out}" || fail "message does not say '${words}'"
}

case "${case_name}" in
  backends)
    run backends
    ((rc == 0)) || fail "exit ${rc}"
    grep -qE '^naive +available' <<<"${out}" || fail "naive is not listed as available"
    grep -qE '^default: ' <<<"${out}" || fail "no default backend line"
    ;;
  eval_table)
    run eval --workload tutorial --backend naive --repeats 1
    ((rc == 0)) || fail "exit ${rc}"
    for words in "L = " "L_conf/N = " "L_loc/N = " "N = " "unmatched" "backward"; do
      grep -qF -- "${words}" <<<"${out}" || fail "output lacks '${words}'"
    done
    ;;
  eval_json_all_backends)
    run eval --workload tutorial,adversarial --backend all --repeats 1 --json
    ((rc == 0)) || fail "exit ${rc}"
    # Every available backend reports, and all agree on N and P_b exactly (DESIGN.md section 6).
    /usr/bin/python3 - "${out}" "$("${multibox}" backends)" <<'PY' || fail "JSON check failed"
import json, sys
doc = json.loads(sys.argv[1])
available = [line.split()[0] for line in sys.argv[2].splitlines() if len(line.split()) > 1 and line.split()[1] == "available"]
runs = doc["runs"]
for workload in ("tutorial", "adversarial"):
    mine = [r for r in runs if r["workload"] == workload]
    assert sorted(r["backend"] for r in mine) == sorted(available), (workload, [r["backend"] for r in mine], available)
    ref = mine[0]
    assert ref["loss"]["num_positives"] > 0, "workload without positives proves nothing"
    for r in mine[1:]:
        assert r["loss"]["num_positives"] == ref["loss"]["num_positives"], (workload, r["backend"])
        assert [i["positives"] for i in r["images"]] == [i["positives"] for i in ref["images"]], (workload, r["backend"])
        assert [i["mined_negatives"] for i in r["images"]] == [i["mined_negatives"] for i in ref["images"]]
    for r in mine:
        assert all(v >= 0 for v in r["time_ms"]["stages"].values()), r["time_ms"]
print("ok:", len(runs), "runs")
PY
    ;;
  eval_config_flags)
    run eval --workload tutorial --backend naive --repeats 1 --forced-match argmax --pos-threshold 0.6 \
      --neg-threshold 0.4 --variances 0.2,0.3 --neg-pos-ratio 2 --min-negatives 1 --alpha 0.5 --beta 0.5
    ((rc == 0)) || fail "exit ${rc}"
    grep -qF "argmax pos=0.6 neg=0.4 var=(0.2,0.3) ratio=2 min_neg=1 alpha=0.5 beta=0.5" <<<"${out}" ||
      fail "the config line does not show the flags"
    ;;
  error_unknown_backend) expect_error "unknown backend 'no-such-backend'" eval --backend no-such-backend ;;
  error_unknown_workload) expect_error "unknown workload 'no-such-workload'" eval --workload no-such-workload ;;
  error_bad_threshold) expect_error "pos_threshold must be in (0, 1], got 1.5" eval --pos-threshold 1.5 ;;
  error_neg_above_pos) expect_error "neg_threshold must be in (0, pos_threshold = 0.5], got 0.7" eval --neg-threshold 0.7 ;;
  error_bad_mode) expect_error "--forced-match" eval --forced-match greedy ;;
  error_negative_seed) expect_error "seed must be a non-negative integer" eval --seed -3 ;;
  error_huge_batch) expect_error "use a smaller --batch" eval --batch 2000000000 ;;
  error_forced_backend)
    out="$(MULTIBOX_BACKEND=no-such-backend "${multibox}" eval --workload tutorial 2>&1)"
    rc=$?
    ((rc == 1)) || fail "exit ${rc}"
    grep -qF "MULTIBOX_BACKEND" <<<"${out}" || fail "message does not name MULTIBOX_BACKEND: ${out}"
    ;;
  *) fail "unknown case" ;;
esac
echo "PASSED ${case_name}"
