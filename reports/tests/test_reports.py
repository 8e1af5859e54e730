"""Tests of the report and the regression gate on small synthetic Google Benchmark JSON files."""

import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPORTS = os.path.dirname(HERE)
sys.path.insert(0, REPORTS)
import gate  # noqa: E402
import results  # noqa: E402


def bench_entry(name, ms, rep, counters=None, label="B=32 P=8732 C=81 G=248 bipartite", error=None):
    e = {"name": name + "/real_time", "run_name": name + "/real_time", "run_type": "iteration",
         "repetitions": 1, "repetition_index": rep, "threads": 1, "iterations": 10, "real_time": ms,
         "cpu_time": ms, "time_unit": "ms", "label": label}
    e.update(counters or {})
    if error:
        e.update({"error_occurred": True, "error_message": error})
    return e


def write(path, benchmarks, context=None, extra=None):
    doc = {"context": context or {}, "benchmarks": benchmarks}
    doc.update(extra or {})
    with open(path, "w") as f:
        json.dump(doc, f)


def run(script, *args):
    p = subprocess.run([sys.executable, os.path.join(REPORTS, script), *args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


class MannWhitneyTest(unittest.TestCase):
    # Expected p-values from scipy.stats.mannwhitneyu(x, y, alternative='two-sided') (scipy 1.10).
    def test_exact_without_ties(self):
        self.assertAlmostEqual(gate.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]), 0.007936507936507936, 12)
        self.assertAlmostEqual(gate.mann_whitney_u([1.1, 2.3, 0.7, 5.5, 3.2, 4.4], [2.2, 6.1, 7.3, 3.9, 8.8, 5.0, 9.1]),
                               0.05128205128205128, 12)

    def test_normal_approximation_with_ties(self):
        self.assertAlmostEqual(gate.mann_whitney_u([1, 2, 2, 3, 4, 5, 5, 6], [3, 4, 4, 5, 6, 7, 8, 8, 9]),
                               0.03714012623439529, 9)

    def test_large_samples(self):
        self.assertAlmostEqual(gate.mann_whitney_u(list(range(60)), [v + 10.5 for v in range(55)]),
                               0.017466219103968242, 9)

    def test_identical_samples_are_not_significant(self):
        self.assertEqual(gate.mann_whitney_u([5.0] * 6, [5.0] * 6), 1.0)


class GateTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.rng = random.Random(7)

    def tearDown(self):
        self.dir.cleanup()

    def run_json(self, name, medians, reps):
        path = os.path.join(self.dir.name, name)
        entries = []
        for bench, centre in medians.items():
            entries += [bench_entry(bench, centre * self.rng.uniform(0.98, 1.02), i) for i in range(reps)]
        write(path, entries)
        return path

    def test_unchanged_passes(self):
        base = self.run_json("a.json", {"simd/headline/x/backward/t2": 10.0}, 10)
        new = self.run_json("b.json", {"simd/headline/x/backward/t2": 10.0}, 10)
        code, out = run("gate.py", base, new)
        self.assertEqual(code, 0, out)
        self.assertIn("gate: PASS", out)

    def test_significant_slowdown_fails_and_names_the_benchmark(self):
        base = self.run_json("a.json", {"simd/headline/x/backward/t2": 10.0, "simd/headline/y/match/t2": 1.0}, 10)
        new = self.run_json("b.json", {"simd/headline/x/backward/t2": 12.0, "simd/headline/y/match/t2": 1.0}, 10)
        code, out = run("gate.py", base, new)
        self.assertEqual(code, 1, out)
        self.assertIn("SLOWER", out)
        self.assertIn("significant slowdown in: simd/headline/x/backward/t2", out)

    def test_speedup_passes(self):
        base = self.run_json("a.json", {"simd/headline/x/backward/t2": 10.0}, 10)
        new = self.run_json("b.json", {"simd/headline/x/backward/t2": 8.0}, 10)
        code, out = run("gate.py", base, new)
        self.assertEqual(code, 0, out)
        self.assertIn("FASTER", out)

    def test_too_few_repetitions_cannot_be_judged(self):
        base = self.run_json("a.json", {"simd/headline/x/backward/t2": 10.0}, 3)
        new = self.run_json("b.json", {"simd/headline/x/backward/t2": 20.0}, 3)
        code, out = run("gate.py", base, new)
        self.assertEqual(code, 2, out)
        self.assertIn("TOO FEW", out)

    def test_roofline_metric(self):
        a, b = os.path.join(self.dir.name, "a.json"), os.path.join(self.dir.name, "b.json")
        name = "simd/headline/x/backward/t2"
        write(a, [bench_entry(name, 10.0, i, {"roofline": 2.0 + 0.01 * i}) for i in range(8)])
        write(b, [bench_entry(name, 10.0, i, {"roofline": 3.0 + 0.01 * i}) for i in range(8)])
        self.assertEqual(run("gate.py", a, b)[0], 0)  # same time
        code, out = run("gate.py", a, b, "--metric", "roofline")
        self.assertEqual(code, 1, out)


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.context = {"stream_copy_GBps": "50.0", "stream_threads": "2", "stream_array_MiB": "128",
                        "multibox_backends": "naive=available; simd=available; cuda=no CUDA device"}

    def tearDown(self):
        self.dir.cleanup()

    def bench(self, c81_ms, c21_ms, bip_ms=30.0, arg_ms=25.0):
        b81 = 2 * 32 * 8732 * 85 * 4
        b21 = 2 * 32 * 8732 * 25 * 4
        entries = [
            bench_entry("naive/headline/ssd300-coco-c81/backward/t1", 400.0, 0, {"bytes": b81}),
            bench_entry("simd/headline/ssd300-coco-c81/backward/t2", c81_ms, 0, {"bytes": b81}),
            bench_entry("simd/headline/ssd300-coco-c81/backward/t1", c81_ms * 1.8, 0, {"bytes": b81}),
            bench_entry("simd/headline/ssd300-coco-c21/backward/t2", c21_ms, 0, {"bytes": b21},
                        label="B=32 P=8732 C=21 G=248 bipartite"),
            bench_entry("simd/matching/ssd512-g100-bipartite/match/t2", bip_ms, 0, {"bytes": 1e6}),
            bench_entry("simd/matching/ssd512-g100-argmax/match/t2", arg_ms, 0, {"bytes": 1e6}),
            bench_entry("cuda/headline/ssd300-coco-c81/backward/t2", 0, 0, error="skipped, backend unavailable: no CUDA device"),
        ]
        for axis, group, values in (("P", "scale-priors", (441, 8732)), ("G", "scale-objects", (8, 80)),
                                    ("C", "scale-classes", (2, 21)), ("B", "scale-batch", (1, 8))):
            for v in values:
                shape = {"B": 8, "P": 8732, "C": 21, "G": 59}
                shape[axis] = v
                label = " ".join(f"{k}={shape[k]}" for k in "BPCG") + " bipartite"
                entries.append(bench_entry(f"simd/{group}/{axis}-{v}/backward/t2", v / 100, 0, {"bytes": 1e7}, label))
        path = os.path.join(self.dir.name, "bench.json")
        write(path, entries, self.context)
        return path

    def torchvision(self):
        path = os.path.join(self.dir.name, "tv.json")
        entries = [bench_entry("torchvision/headline/ssd300-coco-c81/backward/t2", 200.0, 0),
                   bench_entry("torchvision/headline/ssd300-coco-c21/backward/t2", 150.0, 0)]
        write(path, entries, extra={"torchvision": {"available": True, "threads": 2, "repetitions": 1, "cases": {}}})
        return path

    def report(self, *args):
        out = os.path.join(self.dir.name, "report")
        code, text = run("make_report.py", "--out", out, *args)
        self.assertEqual(code, 0, text)
        return out, text

    def goal_line(self, text, start, backend="simd"):
        return next(l for l in text.splitlines() if l.startswith(f"| {start}") and f"| {backend} |" in l)

    def test_goals_pass_and_miss(self):
        # 200 / 8 = 25x (>= 20: PASS); 150 / 20 = 7.5x (< 10: MISS); floor at 50 GB/s is 3.8 ms: 8 ms is a MISS.
        out, text = self.report("--bench", self.bench(8.0, 20.0), "--torchvision", self.torchvision())
        self.assertIn("25.0x", self.goal_line(text, "ssd300-coco-c81 forward+backward, speedup"))
        self.assertTrue(self.goal_line(text, "ssd300-coco-c81 forward+backward, speedup").endswith("| PASS |"))
        self.assertTrue(self.goal_line(text, "ssd300-coco-c21 forward+backward, speedup").endswith("| MISS |"))
        self.assertTrue(self.goal_line(text, "ssd300-coco-c81 forward+backward, time").endswith("| MISS |"))
        self.assertTrue(self.goal_line(text, "SSD512").endswith("| PASS |"))  # 30 / 25 = 1.2
        self.assertTrue(self.goal_line(text, "scaling").endswith("| PASS |"))
        self.assertIn("no CUDA device", text)
        for name in ("summary.md", "headline.png", "scaling.png"):
            self.assertGreater(os.path.getsize(os.path.join(out, name)), 0, name)

    def test_roofline_uses_the_same_run_bandwidth(self):
        # 4.0 ms against a floor of 2*32*8732*85*4 B / 50 GB/s = 3.80 ms: ratio 1.05, a PASS.
        _, text = self.report("--bench", self.bench(4.0, 20.0), "--no-plots")
        line = self.goal_line(text, "ssd300-coco-c81 forward+backward, time")
        self.assertIn("1.05", line)
        self.assertTrue(line.endswith("| PASS |"))

    def test_roofline_goal_uses_the_best_bandwidth_of_the_run(self):
        # The benchmark's own probe read 25 GB/s (floor 7.6 ms: 8 ms would be 1.05), but the run saw 50 GB/s at
        # start-up: judged there the floor is 3.80 ms and 8 ms is a MISS at 2.11.
        path = self.bench(8.0, 20.0)
        with open(path) as f:
            data = json.load(f)
        for e in data["benchmarks"]:
            if e["name"].startswith("simd/headline/ssd300-coco-c81/backward/t2"):
                e["stream_GBps"] = 25.0
        with open(path, "w") as f:
            json.dump(data, f)
        _, text = self.report("--bench", path, "--no-plots")
        line = self.goal_line(text, "ssd300-coco-c81 forward+backward, time")
        self.assertIn("2.11", line)
        self.assertIn("1.05 against the 25.0 GB/s probed around it", line)
        self.assertTrue(line.endswith("| MISS |"))

    def with_counters(self, path, counters_by_prefix):
        with open(path) as f:
            data = json.load(f)
        for e in data["benchmarks"]:
            for prefix, counters in counters_by_prefix.items():
                if e["name"].startswith(prefix):
                    e.update(counters)
        with open(path, "w") as f:
            json.dump(data, f)
        return path

    def test_twin_goals_judge_time_over_twin(self):
        # Headline 8 ms against a 7 ms twin: 1.14 <= 1.2, a PASS; the scaling points take v / 100 ms, so a twin of
        # 0.02 ms makes P-8732 (87.32 ms) 4366x its twin: the worst point, a MISS.
        path = self.with_counters(self.bench(8.0, 20.0), {
            "simd/headline/ssd300-coco-c81/backward/t2": {"twin_ms": 7.0},
            "simd/scale-": {"twin_ms": 0.02},
        })
        _, text = self.report("--bench", path, "--no-plots")
        line = self.goal_line(text, "ssd300-coco-c81 forward+backward, time / same-traffic twin")
        self.assertIn("1.14", line)
        self.assertTrue(line.endswith("| PASS |"))
        line = self.goal_line(text, "every scaling-axis point")
        self.assertIn("worst 4366.00 (P-8732) of 8 points; also over 2: ", line)
        # The others over 2 are named, largest first; C-2 (1.0) and B-1 (0.5) are within the limit.
        self.assertIn("also over 2: P-441 220.50, G-80 40.00, C-21 10.50, G-8 4.00, B-8 4.00 |", line)
        self.assertTrue(line.endswith("| MISS |"))
        self.assertIn("roofline (twin)", text)

    def test_twin_goals_take_the_paired_runs_ratio_where_there_is_one(self):
        # The benchmark's roofline counter is the median ratio of paired stage and twin runs: 8 ms over a 7 ms twin
        # would pass (1.14), but the pairs, timed side by side, say 1.30: a MISS, with both times as context. A
        # scaling point's pairs (0.5) likewise replace its 4366x quotient.
        path = self.with_counters(self.bench(8.0, 20.0), {
            "simd/headline/ssd300-coco-c81/backward/t2": {"twin_ms": 7.0, "roofline": 1.3},
            "simd/scale-": {"twin_ms": 0.02, "roofline": 0.5},
        })
        _, text = self.report("--bench", path, "--no-plots")
        line = self.goal_line(text, "ssd300-coco-c81 forward+backward, time / same-traffic twin")
        self.assertIn("1.30 (median of paired runs; 8 ms, twin 7 ms)", line)
        self.assertTrue(line.endswith("| MISS |"))
        line = self.goal_line(text, "every scaling-axis point")
        self.assertIn("worst 0.50", line)
        self.assertTrue(line.endswith("| PASS |"))

    def test_scaling_point_whose_matching_runs_at_the_vector_ceiling_is_judged_without_it(self):
        # G-80 takes 0.8 ms against a 0.3 ms twin (2.67x), 0.5 ms of it matching: with the match stage at 90 % of the
        # IoU ceiling the point is judged on (0.8 - 0.5) / 0.3 = 1.00, a PASS; at 50 % of the ceiling, a MISS.
        path = self.bench(8.0, 20.0)
        with open(path) as f:
            data = json.load(f)
        data["benchmarks"].append(bench_entry("simd/scale-objects/G-80/match/t2", 0.5, 0,
                                              {"iou_pairs/ns/core": 3.6, "iou_pairs/ns/core_limit": 4.0},
                                              "B=8 P=8732 C=21 G=80 bipartite"))
        write(path, data["benchmarks"], self.context)
        self.with_counters(path, {"simd/scale-": {"twin_ms": 100.0}, "simd/scale-objects/G-80/backward": {"twin_ms": 0.3}})
        _, text = self.report("--bench", path, "--no-plots")
        line = self.goal_line(text, "every scaling-axis point")
        self.assertIn("worst 1.00 (G-80 without its 0.5 ms of matching, which runs at 3.60 IoU pairs/ns/core, 90% of "
                      "the ceiling; 2.67 with it)", line)
        self.assertTrue(line.endswith("| PASS |"))
        self.with_counters(path, {"simd/scale-objects/G-80/match": {"iou_pairs/ns/core": 2.0}})
        _, text = self.report("--bench", path, "--no-plots")
        line = self.goal_line(text, "every scaling-axis point")
        self.assertIn("worst 2.67 (G-80)", line)
        self.assertTrue(line.endswith("| MISS |"))

    def test_scaling_tables_show_rows_per_ns_against_the_softmax_ceiling(self):
        path = self.with_counters(self.bench(8.0, 20.0), {
            "simd/scale-classes/C-21/": {"rows/ns/core": 0.03, "rows/ns/core_limit": 0.05},
            "simd/scale-classes/C-2/": {"rows/ns/core": 0.08},
        })
        _, text = self.report("--bench", path, "--no-plots")
        self.assertIn("simd rows/ns/core (softmax ceiling)", text)
        row = next(l for l in text.splitlines() if l.startswith("| C-21 |"))
        self.assertTrue(row.endswith("| 0.03 of 0.05 (60%) |"), row)  # no twin: no "softmax alone"
        row = next(l for l in text.splitlines() if l.startswith("| C-2 |"))
        self.assertTrue(row.endswith("| 0.08 |"), row)  # no ceiling measured: the rate alone
        row = next(l for l in text.splitlines() if l.startswith("| P-441 |"))
        self.assertTrue(row.endswith("| - |"), row)

    def test_scaling_tables_set_a_bare_softmax_against_the_twin(self):
        # C-21 takes 0.21 ms (v / 100 ms) against a 0.07 ms twin, 3.0x, at 60 % of the softmax ceiling: a bare
        # softmax of its rows would take 1.8x the twin by itself.
        path = self.with_counters(self.bench(8.0, 20.0), {
            "simd/scale-classes/C-21/": {"rows/ns/core": 0.03, "rows/ns/core_limit": 0.05, "twin_ms": 0.07},
        })
        _, text = self.report("--bench", path, "--no-plots")
        row = next(l for l in text.splitlines() if l.startswith("| C-21 |"))
        self.assertTrue(row.endswith("| 0.03 of 0.05 (60%), softmax alone 1.80x twin |"), row)

    def test_header_names_the_points_run_while_one_cpu_ran_vector_code_slower(self):
        self.context["core_vector_balance"] = "0.99"
        path = self.with_counters(self.bench(8.0, 20.0), {
            "simd/scale-batch/B-1/": {"core_vec_balance": 0.71},
            "simd/scale-batch/B-8/": {"core_vec_balance": 0.98},
        })
        _, text = self.report("--bench", path, "--no-plots")
        line = next(l for l in text.splitlines() if l.startswith("- how evenly the first two CPUs run vector code"))
        self.assertIn("0.99 at start-up; 0.71-0.98 around the 2-thread benchmarks", line)
        self.assertTrue(line.endswith("; below it here: B-1 backward 0.71"), line)

    def test_twin_goals_without_twin_are_not_judged(self):
        _, text = self.report("--bench", self.bench(8.0, 20.0), "--no-plots")
        self.assertTrue(self.goal_line(text, "ssd300-coco-c81 forward+backward, time / same-traffic twin")
                        .endswith("| n/a |"))

    def test_cliff_is_a_smaller_problem_taking_longer(self):
        path = self.bench(8.0, 20.0)  # every axis's smaller point is faster: no cliff
        _, text = self.report("--bench", path, "--no-plots")
        self.assertTrue(self.goal_line(text, "no cliffs").endswith("| none | PASS |"))
        # classes 2 at 4.1 ms against classes 21 at 0.21 ms: the issue-10 cliff.
        self.with_counters(path, {"simd/scale-classes/C-2/": {"real_time": 4.1}})
        _, text = self.report("--bench", path, "--no-plots")
        line = self.goal_line(text, "no cliffs")
        self.assertIn("C-2 4.1 ms > C-21 0.21 ms", line)
        self.assertTrue(line.endswith("| MISS |"))

    def test_missing_torchvision_is_reported_not_fatal(self):
        _, text = self.report("--bench", self.bench(8.0, 20.0), "--torchvision",
                              os.path.join(self.dir.name, "absent.json"), "--no-plots")
        self.assertIn("torchvision peer: NOT MEASURED", text)
        self.assertTrue(self.goal_line(text, "ssd300-coco-c81 forward+backward, speedup").endswith("| n/a |"))

    def test_unavailable_torchvision_json_gives_its_reason(self):
        tv = os.path.join(self.dir.name, "tv.json")
        write(tv, [], extra={"torchvision": {"available": False, "reason": "cannot import torch"}})
        _, text = self.report("--bench", self.bench(8.0, 20.0), "--torchvision", tv, "--no-plots")
        self.assertIn("NOT MEASURED (cannot import torch)", text)

    def test_results_fold_real_time_suffix_and_aggregates(self):
        path = os.path.join(self.dir.name, "agg.json")
        entries = [bench_entry("simd/headline/x/backward/t2", v, i) for i, v in enumerate([3.0, 1.0, 2.0])]
        entries.append(dict(bench_entry("simd/headline/x/backward/t2", 99.0, 0), run_type="aggregate",
                            name="simd/headline/x/backward/t2/real_time_median", aggregate_name="median"))
        write(path, entries)
        _, loaded, _ = results.load(path)
        r = loaded["simd/headline/x/backward/t2"]
        self.assertEqual(r.median_ms, 2.0)
        self.assertEqual((r.backend, r.group, r.case, r.stage, r.threads), ("simd", "headline", "x", "backward", 2))

    def test_results_fold_manual_time_suffix_of_cuda_event_timings(self):
        path = os.path.join(self.dir.name, "manual.json")
        entry = bench_entry("cuda-device/headline/x/backward/t1", 0.25, 0, counters={"roofline": 1.3})
        entry["name"] = entry["run_name"] = "cuda-device/headline/x/backward/t1/manual_time"
        write(path, [entry])
        _, loaded, _ = results.load(path)
        r = loaded["cuda-device/headline/x/backward/t1"]
        self.assertEqual((r.backend, r.case, r.stage, r.threads), ("cuda-device", "x", "backward", 1))
        self.assertEqual(r.median_ms, 0.25)

    def test_aggregates_only_run_uses_its_median(self):
        path = os.path.join(self.dir.name, "agg_only.json")
        base = bench_entry("simd/headline/x/backward/t2", 0, 0)
        entries = [dict(base, run_type="aggregate", name=base["name"] + "_" + agg, aggregate_name=agg, real_time=v)
                   for agg, v in (("mean", 5.0), ("median", 4.0), ("stddev", 0.5))]
        write(path, entries)
        _, loaded, _ = results.load(path)
        self.assertEqual(loaded["simd/headline/x/backward/t2"].times_ms, [4.0])

    def test_runs_in_several_files_are_pooled(self):
        first, second = (os.path.join(self.dir.name, f) for f in ("quick.json", "judged.json"))
        write(first, [bench_entry("simd/headline/x/backward/t2", 9.0, 0, {"twin_ms": 1.0}),
                      bench_entry("naive/headline/x/backward/t1", 50.0, 0)], {"stream_copy_GBps": "40.0"})
        write(second, [bench_entry("simd/headline/x/backward/t2", v, i, {"twin_ms": 2.0})
                       for i, v in enumerate([2.0, 3.0, 4.0])], {"stream_copy_GBps": "10.0"})
        context, loaded, _ = results.load_many([first, second])
        self.assertEqual(context["stream_copy_GBps"], "40.0")  # the first file's
        r = loaded["simd/headline/x/backward/t2"]
        self.assertEqual(r.times_ms, [9.0, 2.0, 3.0, 4.0])
        self.assertEqual(r.median_ms, 3.5)
        self.assertEqual(r.counter("twin_ms"), 2.0)
        self.assertEqual(loaded["naive/headline/x/backward/t1"].times_ms, [50.0])

    def test_report_pools_bench_files_and_says_how_many_repetitions(self):
        # One slow sample of the headline (a single main-job repetition) is outvoted by three repetitions of a
        # second run: the goal is judged on the median of the four.
        first = os.path.join(self.dir.name, "quick.json")
        second = os.path.join(self.dir.name, "judged.json")
        name = "simd/headline/ssd300-coco-c81/backward/t2"
        write(first, [bench_entry(name, 30.0, 0, {"twin_ms": 10.0})], self.context)
        write(second, [bench_entry(name, v, i, {"twin_ms": 10.0}) for i, v in enumerate([11.0, 11.5, 12.0])],
              self.context)
        _, text = self.report("--bench", first, second, "--no-plots")
        self.assertIn("1 benchmark with 4 repetitions", text)
        self.assertIn("1.18 (11.8 ms vs twin 10 ms)", self.goal_line(text, "ssd300-coco-c81 forward+backward, time / same"))
        code, out = run("make_report.py", "--bench", first, os.path.join(self.dir.name, "absent.json"), "--out",
                        os.path.join(self.dir.name, "r2"))
        self.assertEqual(code, 2)
        self.assertIn("absent.json does not exist", out)


if __name__ == "__main__":
    unittest.main()
