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

# A two-image COCO instances file: coco128 read through --coco instead of the shared annotations.
tiny_coco() {
  cat >"$1" <<'JSON'
{"images": [{"id": 1, "width": 640, "height": 480}, {"id": 2, "width": 320, "height": 320}],
 "annotations": [{"id": 10, "image_id": 1, "category_id": 3, "bbox": [100, 100, 200, 150], "iscrowd": 0},
                 {"id": 11, "image_id": 2, "category_id": 1, "bbox": [10, 20, 100, 200], "iscrowd": 0}],
 "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]}
JSON
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
  eval_coco_flag)
    # eval, export and datasets take the same workload flags (cli/options.cpp): --coco reaches coco128 in each.
    dir="$(mktemp -d)"
    trap 'rm -rf "${dir}"' EXIT
    tiny_coco "${dir}/coco.json"
    run eval -w coco128 --coco "${dir}/coco.json" --backend naive --repeats 1
    ((rc == 0)) || fail "exit ${rc}"
    grep -qF "B=2 P=8732 C=3" <<<"${out}" || fail "eval did not read the COCO file given by --coco"
    run datasets -w coco128 --coco "${dir}/coco.json"
    ((rc == 0)) || fail "datasets: exit ${rc}"
    grep -qE "^coco128 +2 +8732 +3 +2 " <<<"${out}" || fail "datasets did not read the COCO file given by --coco"
    run export -w coco128 --coco "${dir}/coco.json" -o "${dir}/case" --stage match
    ((rc == 0)) || fail "export: exit ${rc}"
    grep -qF "B=2 P=8732 C=3" <<<"${out}" || fail "export did not read the COCO file given by --coco"
    ;;
  export_config_roundtrip)
    # A case for a non-default configuration: every config flag written by export, read back by validate.
    dir="$(mktemp -d)"
    trap 'rm -rf "${dir}"' EXIT
    config_line="argmax pos=0.6 neg=0.4 var=(0.2,0.3) ratio=2 min_neg=1 alpha=0.5 beta=0.25"
    run export -w tutorial -o "${dir}/case" --forced-match argmax --pos-threshold 0.6 --neg-threshold 0.4 \
      --variances 0.2,0.3 --neg-pos-ratio 2 --min-negatives 1 --alpha 0.5 --beta 0.25
    ((rc == 0)) || fail "export: exit ${rc}"
    grep -qF "${config_line}" <<<"${out}" || fail "export does not show the configuration"
    /usr/bin/python3 - "${dir}/case/case.json" <<'PY' || fail "case.json does not hold the configuration"
import json, sys
c = json.load(open(sys.argv[1]))["config"]
want = {"forced_match": "argmax", "pos_threshold": 0.6, "neg_threshold": 0.4, "variance_xy": 0.2, "variance_wh": 0.3,
        "neg_pos_ratio": 2, "min_negatives_per_image": 1, "alpha": 0.5, "smooth_l1_beta": 0.25}
assert all(abs(c[k] - v) < 1e-6 if isinstance(v, float) else c[k] == v for k, v in want.items()), c
PY
    run validate -c "${dir}/case"  # the default backend, judged against the reference under that configuration
    ((rc == 0)) || fail "validate: exit ${rc}"
    grep -qF "${config_line}" <<<"${out}" || fail "validate did not read the configuration back"
    grep -qF "overall: PASSED" <<<"${out}" || fail "the backend does not pass under this configuration"
    ;;
  eval_dry_run)
    # The issue's shape: B x P x C = 64 x 100,000 x 401 = 2.57e9 logits, past 2^31. The dry run allocates nothing.
    run eval -w synthetic --priors grid:250x400:0.2:1 --classes 401 --batch 64 --backend all --dry-run
    ((rc == 0)) || fail "exit ${rc}"
    grep -qF "B=64 P=100000 C=401" <<<"${out}" || fail "the shape is not shown"
    grep -qE "^  naive +9\.[0-9]+ GiB +[0-9.]+ GiB +[0-9.]+ MiB" <<<"${out}" ||
      fail "naive's inputs (9.67 GiB), outputs and workspace are not shown"
    grep -qF "reference matching: up to" <<<"${out}" || fail "no matching estimate"
    if [[ -x /usr/bin/time ]]; then
      kib="$(/usr/bin/time -f %M "${multibox}" eval -w synthetic --priors grid:250x400:0.2:1 --classes 401 --batch 64 \
        --backend naive --dry-run 2>&1 >/dev/null | tail -1)"
      ((kib < 200000)) || fail "the dry run used ${kib} KiB: it allocated the batch"
    fi
    ;;
  eval_dry_run_refused)
    run eval -w synthetic --priors tutorial --classes 200000000 --batch 1 --backend simd --dry-run
    if grep -qF "unknown backend 'simd'" <<<"${out}"; then exit 0; fi  # a build without simd has nothing to refuse
    ((rc == 1)) || fail "exit ${rc}"
    grep -qF "refused: simd: C = 200000000 classes, at most 134217727" <<<"${out}" || fail "no refusal with numbers"
    ;;
  eval_reference_warning)
    # 10,000 objects in one image: the reference's bipartite loop takes about 15 minutes a run. The estimate must
    # come first, on stderr, rather than a terminal that looks hung; the run itself is cut short here.
    out="$(timeout 10 "${multibox}" eval -w synthetic --objects 10000,10000 --batch 1 --backend naive 2>&1 >/dev/null)"
    rc=$?
    echo "${out}"
    ((rc == 124)) || fail "expected the run to be still going after 10 s (exit ${rc})"
    for words in "note:" "O(G^2 P) bipartite loop" "image 0 has 10000 ground truths x 8732 priors" "--forced-match argmax"; do
      grep -qF -- "${words}" <<<"${out}" || fail "the warning lacks '${words}'"
    done
    run eval -w synthetic --objects 10000,10000 --batch 1 --backend naive --forced-match argmax --dry-run
    ((rc == 0)) || fail "exit ${rc}"
    ;;
  validate_reference_warning)
    dir="$(mktemp -d)"
    trap 'rm -rf "${dir}"' EXIT
    # argmax writes the case in a second; the same case in bipartite mode costs the reference minutes a run.
    run export -w synthetic --objects 3000,3000 --batch 1 --forced-match argmax --stage match -o "${dir}/case"
    ((rc == 0)) || fail "export: exit ${rc}"
    sed -i 's/"argmax"/"bipartite"/' "${dir}/case/case.json"
    run validate -c "${dir}/case" --backend naive --dry-run
    ((rc == 0)) || fail "validate --dry-run: exit ${rc}"
    grep -qF "reference matching: up to 3.93e+10 bipartite pairs" <<<"${out}" || fail "no estimate in the dry run"
    out="$(timeout 10 "${multibox}" validate -c "${dir}/case" --backend naive 2>&1 >/dev/null)"
    rc=$?
    echo "${out}"
    ((rc == 124)) || fail "expected the run to be still going after 10 s (exit ${rc})"
    grep -qF "multibox validate: note: case 'synthetic'" <<<"${out}" || fail "no up-front estimate on stderr"
    grep -qF "2 runs" <<<"${out}" || fail "the reference is also the candidate: two runs"
    ;;
  error_shape_flag_on_named) expect_error "--classes applies to -w synthetic only" eval -w tutorial --classes 5 ;;
  error_export_without_out) expect_error "--out is required" export -w tutorial ;;
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
