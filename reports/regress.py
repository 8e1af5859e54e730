#!/usr/bin/python3
"""Regression report of two revisions' benchmark runs: Markdown for a CI job summary, a JSON verdict, an exit status.

    /usr/bin/python3 reports/regress.py --base a1.json a2.json ... --head b1.json b2.json ... \\
        [--threshold 0.10] [--alpha 0.05] [--markdown report.md] [--json verdict.json]

scripts/regress.sh builds both revisions, runs multibox_bench on them interleaved (A B A B ...) and calls this. Each
file is one multibox_bench run with --benchmark_repetitions; the repetitions of all files of a side are pooled.

Per benchmark three metrics, each judged by scipy.stats.mannwhitneyu (two-sided) and the change of the medians:
  wall       the wall time per iteration;
  roofline   time over the memory floor probed around the same timed loop (forward and backward stages);
  vs naive   time over the naive backend's time on the same case and stage in the same run (pairs by repetition).
The two ratios are measured inside one process, so a neighbour's load that slows both numerators and denominators
cancels out of them. A benchmark is a REGRESSION when its wall time grew by more than --threshold with p < --alpha
AND its in-run ratio (roofline where there is one, else vs naive; none for benchmarks without either) grew the same
way: a slowdown of the code moves both, drift of the machine moves mostly the wall time (FASTER likewise). A large
change that is not significant, or that the ratio does not confirm, is NOISE. Also regressions: a benchmark that ran
on the base and is MISSING, BROKEN (error) or NEWLY SKIPPED on the head (a backend that newly fails or skips is worse
even when faster). Exit status: 0 no regression, 1 at least one, 2 nothing could be compared.

Conformance (optional): --junit-base/--junit-head take ctest --output-junit files of the two revisions. Tests
instantiated over the registry (AllBackends/SUITE.TEST/BACKEND[_case]) are tabulated per backend, passed, failed,
skipped with the reason; a test that passed on the base and fails or is skipped on the head is a regression too.

Defaults: 10% threshold, alpha 0.05. Same-binary runs on this 2-core VM move 15-30% between processes, but the
interleaved, pooled medians of the two sides of a self-comparison differ by a few percent (README, Regression
reports in CI), so 10% stays above that noise while a 30% slowdown clears it by far; alpha 0.05 with 9+ samples per
side needs a near-complete separation of the two samples, which a real slowdown of 10%+ gives and noise rarely does.
"""

import argparse
import json
import os
import statistics
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results as gb  # noqa: E402

REGRESSIONS = ("REGRESSION", "MISSING", "BROKEN", "NEWLY SKIPPED")


def p_value(x, y):
    """Two-sided Mann-Whitney U p-value (scipy's exact or asymptotic method, as it picks); 1.0 for constant data."""
    from scipy.stats import mannwhitneyu  # imported here so --help works without scipy
    if len(set(x) | set(y)) == 1:
        return 1.0  # scipy returns nan or 1 by version when every value ties
    return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)


def judge(x, y, threshold, alpha, min_samples):
    """{'a','b','change','p','verdict'} for samples x (base) and y (head) of a lower-is-better metric, or None."""
    if min(len(x), len(y)) < min_samples:
        return None
    a, b = statistics.median(x), statistics.median(y)
    change = b / a - 1 if a else 0.0
    p = p_value(x, y)
    if abs(change) <= threshold:
        verdict = "SAME"
    elif p >= alpha:
        verdict = "NOISE"
    else:
        verdict = "SLOWER" if change > 0 else "FASTER"
    return {"a": a, "b": b, "change": change, "p": p, "verdict": verdict}


def load_side(paths):
    """{key: {'times': [...], 'roofline': [...], 'vs_naive': [...], 'error': str, 'result': Result}} pooled."""
    side = {}
    for path in paths:
        try:
            _, runs, _ = gb.load(path)
        except (OSError, ValueError) as e:
            # A run that crashed before writing its JSON: its benchmarks count as missing on that side.
            print(f"regress: skipping unreadable {path}: {e}", file=sys.stderr)
            continue
        for key, r in runs.items():
            s = side.setdefault(key, {"times": [], "roofline": [], "vs_naive": [], "error": "", "result": r})
            if r.error:
                s["error"] = r.error
                continue
            s["times"] += r.times_ms
            s["roofline"] += r.counters.get("roofline", [])
            naive = runs.get(f"naive/{r.group}/{r.case}/{r.stage}/t1")
            if r.backend != "naive" and naive is not None and not naive.error:
                s["vs_naive"] += [t / n for t, n in zip(r.times_ms, naive.times_ms) if n > 0]
    return side


def compare(base, head, threshold=0.10, alpha=0.05, min_samples=5):
    """One row per benchmark in either side: key, backend, stage, verdict, detail, and the judged metrics."""
    rows = []
    for key in sorted(base.keys() | head.keys()):
        a, b = base.get(key), head.get(key)
        r = (a or b)["result"]
        row = {"benchmark": key, "backend": r.backend, "stage": r.stage, "metrics": {}, "detail": ""}
        rows.append(row)
        if b is None:
            row["verdict"], row["detail"] = ("MISSING", "ran on the base, absent from the head") if not a["error"] \
                else ("SKIPPED", a["error"])
            continue
        if a is None:
            row["verdict"], row["detail"] = "NEW", b["error"] or "absent from the base"
            continue
        if a["error"] or b["error"]:
            if a["error"] and b["error"]:
                row["verdict"], row["detail"] = "SKIPPED", b["error"]
            elif a["error"]:
                row["verdict"], row["detail"] = "FIXED", "base: " + a["error"]
            else:
                skipped = b["error"].startswith("skipped")
                row["verdict"], row["detail"] = ("NEWLY SKIPPED" if skipped else "BROKEN"), b["error"]
            continue
        for metric, field in (("wall", "times"), ("roofline", "roofline"), ("vs naive", "vs_naive")):
            judged = judge(a[field], b[field], threshold, alpha, min_samples)
            if judged:
                row["metrics"][metric] = judged
        wall = row["metrics"].get("wall")
        if wall is None:
            row["verdict"] = "TOO FEW"
            row["detail"] = f"{len(a['times'])} vs {len(b['times'])} samples, need {min_samples}"
            continue
        ratio_name = next((m for m in ("roofline", "vs naive") if m in row["metrics"]), None)
        ratio = row["metrics"].get(ratio_name)
        if wall["verdict"] in ("SLOWER", "FASTER"):
            confirmed = ratio is None or ratio["verdict"] == wall["verdict"]
            row["verdict"] = ("REGRESSION" if wall["verdict"] == "SLOWER" else "FASTER") if confirmed else "NOISE"
            if not confirmed:
                row["detail"] = f"wall time only; {ratio_name} {ratio['change']:+.1%} (p={ratio['p']:.3g})"
        else:
            row["verdict"] = wall["verdict"]
        if ratio is not None and not row["detail"]:
            row["detail"] = f"{ratio_name} {ratio['change']:+.1%} (p={ratio['p']:.3g})"
    return rows


def load_junit(path):
    """{test name: (status 'passed'|'failed'|'skipped', reason)} from a ctest --output-junit file, or from the
    tests.json a recorded baseline keeps instead (--summarise-junit wrote it: the same map, a tenth of the size)."""
    if path.endswith(".json"):
        with open(path) as f:
            return {name: tuple(v) for name, v in json.load(f).items()}
    tests = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "").split("  # ")[0]  # ctest appends gtest's "# GetParam() = ..." comment
        status = case.get("status", "run")
        reason = ""
        for child in case:
            if child.tag in ("skipped", "failure"):
                reason = child.get("message", "")
        # GoogleTest prints its reason on the line after "file:line: Skipped"; ctest's message only says which
        # regular expression matched.
        out = (case.findtext("system-out") or "").splitlines()
        for i, line in enumerate(out[:-1]):
            if line.endswith(": Skipped") and out[i + 1].strip():
                reason = out[i + 1].strip()
                break
        if status == "run" and case.find("failure") is None:
            tests[name] = ("passed", "")
        elif status in ("notrun", "disabled") or case.find("skipped") is not None:
            tests[name] = ("skipped", reason or status)
        else:
            tests[name] = ("failed", reason or status)
    return tests


def backend_of(name):
    """The backend of a test instantiated over the registry, AllBackends/SUITE.TEST/BACKEND[_case]; else None."""
    parts = name.split("/")
    if len(parts) < 3 or not parts[0].startswith("AllBackends"):
        return None
    return parts[-1].split("_")[0]


def conformance(base, head):
    """(table rows per backend, regressions) comparing two {test: (status, reason)} maps."""
    per_backend, regressions = {}, []
    for name, (status, reason) in sorted(head.items()):
        backend = backend_of(name)
        if backend is None:
            continue
        counts = per_backend.setdefault(backend, {"passed": 0, "failed": 0, "skipped": 0, "reasons": set(),
                                                  "newly": 0})
        counts[status] += 1
        if status == "skipped":
            counts["reasons"].add(reason)
        before = base.get(name, (None, ""))[0]
        if before == "passed" and status != "passed":
            counts["newly"] += 1
            regressions.append({"test": name, "backend": backend, "base": before, "head": status, "reason": reason})
    return per_backend, regressions


def conformance_markdown(per_backend, regressions):
    lines = ["", "Conformance (head; tests instantiated over every backend):", "",
             "| backend | passed | failed | skipped | newly failing or skipped | skip reasons |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for backend, c in sorted(per_backend.items()):
        newly = f"**{c['newly']}**" if c["newly"] else "0"
        lines.append(f"| {backend} | {c['passed']} | {c['failed']} | {c['skipped']} | {newly} | "
                     f"{'; '.join(sorted(c['reasons']))} |")
    for r in regressions:
        lines.append(f"- **{r['head'].upper()}** (passed on the base): `{r['test']}` {r['reason']}".rstrip())
    return "\n".join(lines) + "\n"


def summary(rows, threshold, alpha, conformance_regressions=()):
    bad = [r for r in rows if r["verdict"] in REGRESSIONS]
    if conformance_regressions:
        tests = ", ".join(f"{r['test']} ({r['backend']}: newly {r['head']})" for r in conformance_regressions)
        return "REGRESSION", f"**REGRESSION** in conformance, {len(conformance_regressions)} tests: {tests}"
    judged = [r for r in rows if r["metrics"]]
    if bad:
        named = ", ".join(f"{r['benchmark']} ({r['backend']} {r['stage']}: {r['verdict'].lower()}"
                          + (f" {r['metrics']['wall']['change']:+.0%}" if r["metrics"].get("wall") else "") + ")"
                          for r in bad)
        return "REGRESSION", f"**REGRESSION** in {len(bad)} of {len(rows)} benchmarks: {named}"
    if not judged:
        return "NOTHING COMPARED", "**NOTHING COMPARED**: no benchmark had enough samples on both sides"
    faster = sum(r["verdict"] == "FASTER" for r in rows)
    noise = sum(r["verdict"] == "NOISE" for r in rows)
    return "PASS", (f"**PASS**: no regression beyond {threshold:.0%} at p < {alpha} in {len(judged)} benchmarks "
                    f"({faster} faster, {noise} noise)")


def markdown(rows, headline, threshold, alpha, labels=("", "")):
    sides = [f"{side}: {label}" for side, label in zip("AB", labels) if label]
    lines = [headline, ""] + ([" · ".join(sides), ""] if sides else []) + [
             f"Threshold {threshold:.0%} on the median with two-sided Mann-Whitney U p < {alpha}, confirmed by the "
             "in-run ratio (roofline, else time over naive). Times in ms.", "",
             "| benchmark | A median | B median | change | p | verdict | in-run ratio |",
             "| --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for r in rows:
        w = r["metrics"].get("wall")
        if w:
            cells = [f"{w['a']:.4g}", f"{w['b']:.4g}", f"{w['change']:+.1%}", f"{w['p']:.3g}"]
        else:
            cells = ["-"] * 4
        verdict = f"**{r['verdict']}**" if r["verdict"] in REGRESSIONS else r["verdict"]
        lines.append(f"| `{r['benchmark']}` | " + " | ".join(cells) + f" | {verdict} | {r['detail']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--base", nargs="+", help="multibox_bench JSON files of revision A")
    parser.add_argument("--head", nargs="+", help="multibox_bench JSON files of revision B")
    parser.add_argument("--threshold", type=float, default=0.10, help="relative growth that counts (default 0.10)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--min-samples", type=int, default=5, help="fewer pooled repetitions cannot be judged")
    parser.add_argument("--junit-base", help="ctest --output-junit file of revision A")
    parser.add_argument("--junit-head", help="ctest --output-junit file of revision B")
    parser.add_argument("--label-base", default="", help="what side A is, for the report")
    parser.add_argument("--label-head", default="", help="what side B is, for the report")
    parser.add_argument("--summarise-junit", metavar="FILE",
                        help="print FILE (ctest --output-junit) as the {test: [status, reason]} JSON a baseline keeps")
    parser.add_argument("--markdown", help="also write the Markdown here")
    parser.add_argument("--json", help="write the JSON verdict here")
    args = parser.parse_args(argv)
    if args.summarise_junit:
        json.dump(load_junit(args.summarise_junit), sys.stdout, indent=0, sort_keys=True)
        print()
        return 0
    if not args.base or not args.head:
        parser.error("--base and --head are required")

    rows = compare(load_side(args.base), load_side(args.head), args.threshold, args.alpha, args.min_samples)
    per_backend, broken_tests = {}, []
    if args.junit_head:
        per_backend, broken_tests = conformance(load_junit(args.junit_base) if args.junit_base else {},
                                                load_junit(args.junit_head))
    verdict, headline = summary(rows, args.threshold, args.alpha, broken_tests)
    text = markdown(rows, headline, args.threshold, args.alpha, (args.label_base, args.label_head))
    if per_backend:
        text += conformance_markdown(per_backend, broken_tests)
    print(text, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"verdict": verdict, "base": args.label_base, "head": args.label_head, "threshold": args.threshold, "alpha": args.alpha,
                       "regressions": [r for r in rows if r["verdict"] in REGRESSIONS], "benchmarks": rows,
                       "conformance": {b: {**c, "reasons": sorted(c["reasons"])} for b, c in per_backend.items()},
                       "conformance_regressions": broken_tests},
                      f, indent=1)
    return {"PASS": 0, "REGRESSION": 1}.get(verdict, 2)


if __name__ == "__main__":
    sys.exit(main())
