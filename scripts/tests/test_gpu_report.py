#!/usr/bin/env python3
"""scripts/gpu_report.py on synthetic GPU runs: the report it will write on the first GPU, checked on a CPU machine.

Run by `bash scripts/gpu_check.sh dry-run` (so by `prepare`, and by CI); stdlib only, like the script under test.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "gpu_report.py")

GTEST_XML = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="{failures}" disabled="0" errors="0" name="AllTests">
  <testsuite name="AllBackends/Conformance" tests="3">
    <testcase name="IsDeterministic/cuda" status="run" result="completed" classname="AllBackends/Conformance"/>
    <testcase name="AgreesWithTheReference/cuda" status="run" result="completed" classname="AllBackends/Conformance">
      {failure}
    </testcase>
    <testcase name="NoPositivesGivesZeroLossAndGradients/cuda" status="run" result="skipped" classname="AllBackends/Conformance">
      <skipped message="why"/>
    </testcase>
  </testsuite>
</testsuites>
"""


def gbench(entries):
    """Google Benchmark JSON: per name (ms, counters), three repetitions and a median aggregate."""
    out = []
    for name, ms, counters in entries:
        run = {"run_name": name, "time_unit": "ms", "threads": 1, "repetitions": 3, **counters}
        for i in range(3):
            out.append({"name": name, "run_type": "iteration", "repetition_index": i, "real_time": ms * (1 + 0.1 * i),
                        "iterations": 10, **run})
        out.append({"name": name + "_median", "run_type": "aggregate", "aggregate_name": "median", "real_time": ms,
                    **run})
    return {"context": {"copy_GBps": 4300.0, "multibox_backends": "naive,simd,cuda"}, "benchmarks": out}


class GpuReport(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.work = os.path.join(self.tmp.name, "work")
        self.out = os.path.join(self.tmp.name, "out")
        os.makedirs(os.path.join(self.work, "logs"))
        os.makedirs(os.path.join(self.work, "xml"))
        os.makedirs(self.out)

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, rel, text, base=None):
        path = os.path.join(base or self.work, rel)
        with open(path, "w") as f:
            f.write(text if isinstance(text, str) else json.dumps(text))

    def steps(self, rows):
        self.write("steps.tsv", "".join("\t".join(map(str, r)) + "\n" for r in rows))

    def run_report(self):
        subprocess.run([sys.executable, SCRIPT, "--work", self.work, "--out", self.out, "--budget", "450",
                        "--started", "0"], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.out, "gpu-report.json")) as f:
            report = json.load(f)
        with open(os.path.join(self.out, "gpu-report.md")) as f:
            self.assertIn("# GPU check", f.read())
        return report, {g["id"]: g for g in report["goals"]}

    def full_run(self, failure="", memcheck_errors=0):
        self.write("logs/manifest.txt", "commit abc\ncreated now\nbinary multibox_property_test gtest\ncuda_available 1\n")
        self.write("logs/environment.log", "== glibc\nldd (GNU libc) 2.39\nname, driver_version, memory.total\n"
                                           "NVIDIA H200, 580.159.03, 143771 MiB\n")
        self.write("xml/multibox_property_test.xml",
                   GTEST_XML.format(failures=1 if failure else 0, failure=failure))
        self.write("xml/cuda_host_test.xml", GTEST_XML.format(failures=0, failure=""))
        self.write("logs/memcheck-cuda_host_test.log", f"========= ERROR SUMMARY: {memcheck_errors} errors\n")
        self.write("logs/racecheck-cuda_host_test.log",
                   "========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)\n")
        self.steps([("environment", "pass", 0, 0, "NVIDIA H200"), ("launch", "pass", 0, 0, "system"),
                    ("test-cuda_host_test", "pass", 0, 3, ""),
                    ("test-multibox_property_test", "fail" if failure else "pass", 1 if failure else 0, 60, ""),
                    ("bench-headline", "pass", 0, 40, ""),
                    ("memcheck-cuda_host_test", "fail" if memcheck_errors else "pass", 99 if memcheck_errors else 0, 20, ""),
                    ("racecheck-cuda_host_test", "pass", 0, 20, "")])
        self.write("bench-cuda.json", gbench([
            ("cuda/headline/ssd300-coco-c81/backward/t1/real_time", 9.0, {"upload_ms": 6.0, "kernels_ms": 1.0, "download_ms": 2.0}),
            ("cuda-device/headline/ssd300-coco-c81/backward/t1/manual_time", 1.0, {"roofline": 2.5, "copy_GBps": 4300.0}),
            ("cuda-device/headline/ssd300-coco-c81-b256/backward/t1/manual_time", 6.0, {"roofline": 1.7, "copy_GBps": 4300.0}),
        ]), base=self.out)
        tv = gbench([("torchvision-cuda/headline/ssd300-coco-c81/backward/t1", 80.0, {}),
                     ("torchvision-cuda/headline/ssd300-coco-c81-b256/backward/t1", 240.0, {})])
        tv["torchvision"] = {"available": True, "torch": "2.11.0", "device_name": "NVIDIA H200",
                             "cases": {"ssd300-coco-c81": {"loss": 16.36, "reference_loss_argmax": 16.36}}}
        self.write("torchvision-cuda.json", tv, base=self.out)

    def test_full_run_judges_every_goal(self):
        self.full_run()
        report, goals = self.run_report()
        self.assertEqual(goals["floor-b32"]["verdict"], "PASS")
        self.assertEqual(goals["floor-b256"]["verdict"], "MISS")  # 1.7 > 1.5
        self.assertAlmostEqual(goals["speedup-ssd300-coco-c81"]["value"], 80.0)
        self.assertEqual(goals["speedup-ssd300-coco-c81"]["verdict"], "PASS")
        self.assertEqual(goals["speedup-ssd300-coco-c81-b256"]["verdict"], "MISS")  # 40x
        self.assertEqual(goals["deterministic"]["verdict"], "PASS")
        self.assertEqual(goals["conformance"]["verdict"], "PASS")
        self.assertEqual(goals["sanitizers"]["verdict"], "PASS")
        self.assertEqual(report["verdict"], "MISS")
        self.assertEqual(report["environment"]["gpu"], "NVIDIA H200, 580.159.03, 143771 MiB")
        row = next(e for e in report["benchmarks"] if e["case"] == "ssd300-coco-c81" and e["stage"] == "backward")
        self.assertEqual((row["cuda_ms"], row["cuda_device_ms"], row["host_upload_ms"]), (9.0, 1.0, 6.0))

    def test_failures_and_sanitizer_errors_are_misses(self):
        self.full_run(failure='<failure message="mismatch"/>', memcheck_errors=2)
        report, goals = self.run_report()
        self.assertEqual(goals["conformance"]["verdict"], "MISS")
        self.assertEqual(goals["sanitizers"]["verdict"], "MISS")
        step = next(s for s in report["steps"] if s["name"] == "test-multibox_property_test")
        self.assertEqual(step["tests"]["failed_names"], ["AllBackends/Conformance.AgreesWithTheReference/cuda"])

    def test_a_run_cut_short_still_reports(self):
        # A benchmark JSON stopped mid-write, a test log without XML (timeout), a sanitizer that refused the device.
        self.full_run()
        with open(os.path.join(self.out, "bench-cuda.json")) as f:
            text = f.read()
        self.write("bench-cuda.json", text[:text.rfind('"aggregate_name"')], base=self.out)
        os.remove(os.path.join(self.work, "xml", "multibox_property_test.xml"))
        self.write("logs/test-multibox_property_test.log",
                   "[       OK ] AllBackends/Conformance.IsDeterministic/cuda (812 ms)\n[ RUN      ] Next/cuda\n")
        self.write("logs/racecheck-cuda_host_test.log", "========= Error: Device not supported\n")
        report, goals = self.run_report()
        self.assertEqual(goals["floor-b32"]["verdict"], "PASS")
        self.assertEqual(goals["deterministic"]["verdict"], "PASS")
        self.assertEqual(goals["sanitizers"]["verdict"], "NOT MEASURED")
        race = next(x for x in report["sanitizers"] if x["tool"] == "racecheck")
        self.assertIn("Device not supported", race["verdict"])
        self.assertEqual(next(s for s in report["steps"] if s["name"] == "racecheck-cuda_host_test")["status"], "skip")

    def test_skips_are_not_passes(self):
        # Sanitizer over tests that all skipped, benchmarks that all reported their skip: neither proves anything.
        self.full_run()
        self.write("xml/memcheck-cuda_host_test.xml", GTEST_XML.replace('result="completed"', 'result="skipped"').format(
            failures=0, failure=""))
        self.write("bench-cuda-rest.json", {"benchmarks": [
            {"name": "cuda/real/coco128-b32/backward/t1/real_time", "run_type": "iteration", "error_occurred": True,
             "error_message": "skipped, backend unavailable: no device", "real_time": 0, "time_unit": "ms"}]},
            base=self.out)
        with open(os.path.join(self.work, "steps.tsv"), "a") as f:
            f.write("bench-rest\tpass\t0\t1\t\n")
        report, goals = self.run_report()
        memcheck = next(x for x in report["sanitizers"] if x["tool"] == "memcheck")
        self.assertIsNone(memcheck["errors"])
        self.assertEqual(goals["sanitizers"]["verdict"], "NOT MEASURED")
        rest = next(s for s in report["steps"] if s["name"] == "bench-rest")
        self.assertEqual((rest["status"], rest["benchmarks"]["skipped"]), ("skip", 1))
        headline = next(s for s in report["steps"] if s["name"] == "bench-headline")
        self.assertEqual((headline["status"], headline["benchmarks"]["results"]), ("pass", 3))

    def test_nothing_at_all(self):
        report, goals = self.run_report()
        self.assertEqual(report["verdict"], "INCOMPLETE")
        self.assertTrue(all(g["verdict"] == "NOT MEASURED" for g in goals.values()))

    def test_without_a_device_nothing_passes(self):
        self.write("logs/manifest.txt", "cuda_available 0\n")
        self.write("xml/unit_loss.xml", GTEST_XML.replace('result="completed"', 'result="skipped"').format(
            failures=0, failure=""))
        self.steps([("test-unit_loss", "pass", 0, 1, "")])
        self.write("torchvision-cuda.json", {"benchmarks": [], "torchvision": {"available": False, "reason": "no GPU"}},
                   base=self.out)
        report, goals = self.run_report()
        self.assertEqual(report["steps"][0]["status"], "skip")
        self.assertEqual(goals["conformance"]["verdict"], "NOT MEASURED")
        self.assertEqual(goals["speedup-ssd300-coco-c81"]["note"], "no GPU")


if __name__ == "__main__":
    unittest.main()
