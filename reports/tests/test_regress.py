"""Tests of reports/regress.py (the two-revision regression report) on synthetic Google Benchmark JSON."""

import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPORTS = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from test_reports import bench_entry, write  # noqa: E402

SIMD_FWD = "simd/headline/c81/forward/t2"
NAIVE_FWD = "naive/headline/c81/forward/t1"
SIMD_MATCH = "simd/matching/g100/match/t2"  # no roofline, no naive counterpart: wall time alone


class RegressTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.rng = random.Random(11)
        self.files = 0

    def tearDown(self):
        self.dir.cleanup()

    def run_json(self, medians, reps=5, noise=0.02, errors=None, roofline_per_ms=0.2):
        """One multibox_bench run: {name: median ms}; roofline counters proportional to the time, as in the suite."""
        self.files += 1
        path = os.path.join(self.dir.name, f"run{self.files}.json")
        entries = []
        for name, centre in medians.items():
            if errors and name in errors:
                entries.append(bench_entry(name, 0, 0, error=errors[name]))
                continue
            for i in range(reps):
                ms = centre * self.rng.uniform(1 - noise, 1 + noise)
                counters = {"roofline": ms * roofline_per_ms} if "/match/" not in name else {}
                entries.append(bench_entry(name, ms, i, counters))
        write(path, entries)
        return path

    def regress(self, base, head, *extra):
        verdict = os.path.join(self.dir.name, "verdict.json")
        p = subprocess.run([sys.executable, os.path.join(REPORTS, "regress.py"), "--base", *base, "--head", *head,
                            "--json", verdict, *extra], capture_output=True, text=True)
        with open(verdict) as f:
            doc = json.load(f)
        return p.returncode, p.stdout + p.stderr, doc, {r["benchmark"]: r for r in doc["benchmarks"]}

    def sides(self, base, head, **kw):
        return [self.run_json(base, **kw) for _ in range(2)], [self.run_json(head, **kw) for _ in range(2)]

    def test_clear_regression_is_flagged_naming_backend_and_stage(self):
        a, b = self.sides({SIMD_FWD: 5.0, NAIVE_FWD: 150.0, SIMD_MATCH: 1.0},
                          {SIMD_FWD: 6.5, NAIVE_FWD: 150.0, SIMD_MATCH: 1.0})
        code, out, doc, rows = self.regress(a, b)
        self.assertEqual(code, 1, out)
        self.assertEqual(doc["verdict"], "REGRESSION")
        self.assertTrue(out.startswith("**REGRESSION**"), out)
        self.assertIn(f"{SIMD_FWD} (simd forward: regression +30%)", out.splitlines()[0])
        self.assertEqual(rows[SIMD_FWD]["verdict"], "REGRESSION")
        self.assertEqual(rows[NAIVE_FWD]["verdict"], "SAME")
        self.assertEqual([r["benchmark"] for r in doc["regressions"]], [SIMD_FWD])
        self.assertEqual(rows[SIMD_FWD]["metrics"]["vs naive"]["verdict"], "SLOWER")

    def test_wall_time_alone_is_enough_where_no_ratio_exists(self):
        a, b = self.sides({SIMD_MATCH: 1.0}, {SIMD_MATCH: 2.0})
        code, out, _, rows = self.regress(a, b)
        self.assertEqual(code, 1, out)
        self.assertEqual(rows[SIMD_MATCH]["verdict"], "REGRESSION")

    def test_noise_is_not_flagged(self):
        # Same centre, +-25% spread: medians may differ by more than 10%, the U test must not call it.
        a, b = self.sides({SIMD_FWD: 5.0, SIMD_MATCH: 1.0}, {SIMD_FWD: 5.0, SIMD_MATCH: 1.0}, noise=0.25)
        code, out, doc, rows = self.regress(a, b)
        self.assertEqual(code, 0, out)
        self.assertEqual(doc["verdict"], "PASS")
        self.assertTrue(all(r["verdict"] in ("SAME", "NOISE") for r in rows.values()), out)

    def test_slower_wall_time_that_the_in_run_ratio_does_not_confirm_is_noise(self):
        # The machine, not the code, got slower: time up 40%, and the memory floor with it (roofline unchanged).
        a = [self.run_json({SIMD_FWD: 5.0}) for _ in range(2)]
        b = [self.run_json({SIMD_FWD: 7.0}, roofline_per_ms=0.2 / 1.4) for _ in range(2)]
        code, out, _, rows = self.regress(a, b)
        self.assertEqual(code, 0, out)
        self.assertEqual(rows[SIMD_FWD]["verdict"], "NOISE")
        self.assertIn("wall time only", rows[SIMD_FWD]["detail"])

    def test_improvement_is_reported(self):
        a, b = self.sides({SIMD_FWD: 5.0}, {SIMD_FWD: 3.0})
        code, out, doc, rows = self.regress(a, b)
        self.assertEqual(code, 0, out)
        self.assertEqual(rows[SIMD_FWD]["verdict"], "FASTER")
        self.assertIn("1 faster", out.splitlines()[0])

    def test_missing_benchmark_on_either_side(self):
        a, b = self.sides({SIMD_FWD: 5.0, SIMD_MATCH: 1.0}, {SIMD_FWD: 5.0, "simd/new/x/match/t2": 1.0})
        code, out, _, rows = self.regress(a, b)
        self.assertEqual(code, 1, out)
        self.assertEqual(rows[SIMD_MATCH]["verdict"], "MISSING")
        self.assertEqual(rows["simd/new/x/match/t2"]["verdict"], "NEW")

    def test_errors_and_skips(self):
        names = {SIMD_FWD: 5.0, SIMD_MATCH: 1.0, "cuda/headline/c81/forward/t1": 1.0}
        skip = {"cuda/headline/c81/forward/t1": "skipped, backend unavailable: no CUDA device"}
        a = [self.run_json(names, errors=skip) for _ in range(2)]
        b = [self.run_json(names, errors={**skip, SIMD_MATCH: "simd run of g100 (match): internal error"})
             for _ in range(2)]
        code, out, _, rows = self.regress(a, b)
        self.assertEqual(code, 1, out)
        self.assertEqual(rows["cuda/headline/c81/forward/t1"]["verdict"], "SKIPPED")
        self.assertEqual(rows[SIMD_MATCH]["verdict"], "BROKEN")
        self.assertEqual(rows[SIMD_FWD]["verdict"], "SAME")
        # A benchmark that ran before and is skipped now is a regression too.
        b = [self.run_json({SIMD_FWD: 5.0}, errors={SIMD_FWD: "skipped, backend unavailable: x"}) for _ in range(2)]
        a = [self.run_json({SIMD_FWD: 5.0}) for _ in range(2)]
        code, out, _, rows = self.regress(a, b)
        self.assertEqual((code, rows[SIMD_FWD]["verdict"]), (1, "NEWLY SKIPPED"), out)

    def test_a_head_run_that_wrote_no_json_is_a_regression(self):
        a = [self.run_json({SIMD_FWD: 5.0})]
        code, out, _, rows = self.regress(a, [os.path.join(self.dir.name, "crashed.json")])
        self.assertEqual((code, rows[SIMD_FWD]["verdict"]), (1, "MISSING"), out)
        self.assertIn("skipping unreadable", out)

    def test_too_few_samples_cannot_be_judged(self):
        code, out, doc, rows = self.regress([self.run_json({SIMD_FWD: 5.0}, reps=2)],
                                            [self.run_json({SIMD_FWD: 9.0}, reps=2)])
        self.assertEqual(code, 2, out)
        self.assertEqual(rows[SIMD_FWD]["verdict"], "TOO FEW")

    def junit(self, name, cases):
        """A ctest --output-junit file: cases are (test name, 'run'|'fail'|'notrun', GoogleTest output)."""
        path = os.path.join(self.dir.name, name)
        body = "".join(f'<testcase name="{n}  # GetParam() = 0x1" status="{st}">'
                       + ('<skipped message="SKIP_REGULAR_EXPRESSION_MATCHED"/>' if st == "notrun" else "")
                       + ('<failure message="Failed"/>' if st == "fail" else "")
                       + f"<system-out>{out}</system-out></testcase>" for n, st, out in cases)
        with open(path, "w") as f:
            f.write(f'<?xml version="1.0"?><testsuite name="(empty)">{body}</testsuite>')
        return path

    def test_conformance_table_and_newly_failing_or_skipped_tests(self):
        skip = "x.cpp:1: Skipped\ncuda unavailable: no device\n"
        base = self.junit("a.xml", [("AllBackends/P.Holds/naive", "run", ""), ("AllBackends/P.Holds/simd", "run", ""),
                                    ("AllBackends/G.Agrees/simd_tutorial", "run", ""),
                                    ("AllBackends/P.Holds/cuda", "notrun", skip), ("cuda.Host.Test", "run", "")])
        head = self.junit("b.xml", [("AllBackends/P.Holds/naive", "run", ""), ("AllBackends/P.Holds/simd", "fail", ""),
                                    ("AllBackends/G.Agrees/simd_tutorial", "run", ""),
                                    ("AllBackends/P.Holds/cuda", "notrun", skip), ("cuda.Host.Test", "run", "")])
        a, b = self.sides({SIMD_FWD: 5.0}, {SIMD_FWD: 4.0})
        code, out, doc, rows = self.regress(a, b, "--junit-base", base, "--junit-head", head)
        self.assertEqual(code, 1, out)  # faster, but a test that passed now fails
        self.assertEqual(rows[SIMD_FWD]["verdict"], "FASTER")
        self.assertIn("AllBackends/P.Holds/simd (simd: newly failed)", out.splitlines()[0])
        self.assertIn("| cuda | 0 | 0 | 1 | 0 | cuda unavailable: no device |", out)
        self.assertIn("| simd | 1 | 1 | 0 | **1** |", out)
        self.assertEqual(doc["conformance"]["naive"]["passed"], 1)
        # The same conformance on both sides: nothing to report.
        code, out, _, _ = self.regress(a, b, "--junit-base", base, "--junit-head", base)
        self.assertEqual(code, 0, out)

    def test_baseline_keeps_a_summary_of_the_junit_file_that_judges_alike(self):
        skip = "x.cpp:1: Skipped\ncuda unavailable: no device\n"
        base = self.junit("a.xml", [("AllBackends/P.Holds/simd", "run", ""), ("AllBackends/P.Holds/cuda", "notrun", skip)])
        head = self.junit("b.xml", [("AllBackends/P.Holds/simd", "notrun", skip),
                                    ("AllBackends/P.Holds/cuda", "notrun", skip)])
        p = subprocess.run([sys.executable, os.path.join(REPORTS, "regress.py"), "--summarise-junit", base],
                           capture_output=True, text=True, check=True)
        summary = json.loads(p.stdout)
        self.assertEqual(summary["AllBackends/P.Holds/cuda"], ["skipped", "cuda unavailable: no device"])
        tests_json = os.path.join(self.dir.name, "tests.json")
        with open(tests_json, "w") as f:
            f.write(p.stdout)
        a, b = self.sides({SIMD_FWD: 5.0}, {SIMD_FWD: 5.0})
        code, out, doc, _ = self.regress(a, b, "--junit-base", tests_json, "--junit-head", head)
        self.assertEqual(code, 1, out)
        self.assertEqual(doc["conformance_regressions"][0]["head"], "skipped")
        self.assertIn("AllBackends/P.Holds/simd (simd: newly skipped)", out.splitlines()[0])

    def test_ci_threshold_fails_a_doubling_and_passes_drift(self):
        # .ci/run's gate (--threshold 0.5) against a baseline recorded in another session: the machine may be 30%
        # slower throughout (wall time and ratio alike), which must pass; a 2x headline stage must fail.
        a = [self.run_json({SIMD_FWD: 5.0, SIMD_MATCH: 1.0}, noise=0.1) for _ in range(3)]
        drift = [self.run_json({SIMD_FWD: 6.5, SIMD_MATCH: 1.3}, noise=0.1, roofline_per_ms=0.2) for _ in range(3)]
        code, out, _, rows = self.regress(a, drift, "--threshold", "0.5")
        self.assertEqual(code, 0, out)
        self.assertEqual(rows[SIMD_FWD]["verdict"], "SAME")
        slow = [self.run_json({SIMD_FWD: 10.0, SIMD_MATCH: 1.0}, noise=0.1) for _ in range(3)]
        code, out, _, rows = self.regress(a, slow, "--threshold", "0.5", "--label-base", "baseline 1234")
        self.assertEqual(code, 1, out)
        self.assertEqual(rows[SIMD_FWD]["verdict"], "REGRESSION")
        self.assertIn("A: baseline 1234", out)

    def test_markdown_table(self):
        a, b = self.sides({SIMD_FWD: 5.0}, {SIMD_FWD: 5.0})
        _, out, _, _ = self.regress(a, b)
        self.assertIn("| benchmark | A median | B median | change | p | verdict | in-run ratio |", out)
        self.assertIn(f"| `{SIMD_FWD}` |", out)


if __name__ == "__main__":
    unittest.main()
