#!/usr/bin/python3
"""Regression gate: compares a baseline and a contender multibox_bench run, benchmark by benchmark.

    multibox_bench --benchmark_repetitions=10 --benchmark_filter=simd/headline \\
        --benchmark_out=base.json --benchmark_out_format=json          # on the baseline commit
    ...same for new.json on the contender...
    /usr/bin/python3 reports/gate.py base.json new.json [--threshold 0.05] [--alpha 0.05] [--metric roofline]

Per benchmark: the contender/baseline ratio of medians and a two-sided Mann-Whitney U test over the repetitions
(the test Google Benchmark's tools/compare.py runs). A benchmark is SLOWER when its median grew by more than
--threshold AND the U test says the difference is significant at --alpha; a large but insignificant change is
reported as NOISE, never as a pass or a failure. Exit status: 0 no significant slowdown, 1 at least one SLOWER,
2 nothing could be compared (no common benchmarks, or fewer than --min-repetitions on a side).

--metric roofline compares the roofline counter (time over the memory floor measured in the same run) instead of
the wall time; on a shared machine that ratio moves less with the neighbours' load than the time does.
"""

import argparse
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results as gb  # noqa: E402


def mann_whitney_u(x, y):
    """Two-sided p-value of the Mann-Whitney U test: scipy's (exact without ties for small samples, else the normal
    approximation with tie and continuity corrections); 1.0 when every value ties."""
    from scipy.stats import mannwhitneyu  # Debian python3-scipy; imported here so --help works without it
    if len(x) == 0 or len(y) == 0:
        raise ValueError("Mann-Whitney U needs two non-empty samples")
    if len(set(x) | set(y)) == 1:
        return 1.0
    return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)


def samples(result, metric):
    if metric == "real_time":
        return result.times_ms
    return result.counters.get(metric, [])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("baseline")
    parser.add_argument("contender")
    parser.add_argument("--threshold", type=float, default=0.05,
                        help="relative growth of the median that counts as a slowdown (default 0.05 = 5%%)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level of the U test (default 0.05)")
    parser.add_argument("--metric", default="real_time",
                        help="real_time (default) or a counter where lower is better, e.g. roofline")
    parser.add_argument("--min-repetitions", type=int, default=5,
                        help="fewer repetitions on either side cannot be judged (default 5)")
    parser.add_argument("--filter", default="", help="regular expression on BACKEND/GROUP/CASE/STAGE/tN")
    args = parser.parse_args()

    _, base, _ = gb.load(args.baseline)
    _, cont, _ = gb.load(args.contender)
    pattern = re.compile(args.filter) if args.filter else None
    keys = sorted(k for k in base.keys() & cont.keys() if not pattern or pattern.search(k))
    if not keys:
        print(f"gate: no benchmark appears in both {args.baseline} and {args.contender}"
              + (f" matching '{args.filter}'" if args.filter else ""), file=sys.stderr)
        return 2

    width = max(len(k) for k in keys)
    print(f"{'benchmark':{width}s}  {'baseline':>10s}  {'contender':>10s}  {'change':>8s}  {'p':>7s}  verdict")
    verdicts = {}
    for key in keys:
        x, y = samples(base[key], args.metric), samples(cont[key], args.metric)
        if base[key].error or cont[key].error:
            verdict, line = "SKIPPED", base[key].error or cont[key].error
            print(f"{key:{width}s}  {'-':>10s}  {'-':>10s}  {'-':>8s}  {'-':>7s}  {verdict} ({line})")
            verdicts[key] = verdict
            continue
        if not x and not y:
            verdict = "NO DATA"
            print(f"{key:{width}s}  {'-':>10s}  {'-':>10s}  {'-':>8s}  {'-':>7s}  {verdict} "
                  f"(no '{args.metric}' values on either side)")
            verdicts[key] = verdict
            continue
        if min(len(x), len(y)) < args.min_repetitions:
            verdict = "TOO FEW"
            print(f"{key:{width}s}  {'-':>10s}  {'-':>10s}  {'-':>8s}  {'-':>7s}  {verdict} "
                  f"({len(x)} vs {len(y)} repetitions; need {args.min_repetitions}: --benchmark_repetitions)")
            verdicts[key] = verdict
            continue
        mx, my = statistics.median(x), statistics.median(y)
        change = my / mx - 1
        p = mann_whitney_u(x, y)
        significant = p < args.alpha
        if change > args.threshold:
            verdict = "SLOWER" if significant else "NOISE"
        elif change < -args.threshold:
            verdict = "FASTER" if significant else "NOISE"
        else:
            verdict = "SAME"
        verdicts[key] = verdict
        print(f"{key:{width}s}  {mx:10.4g}  {my:10.4g}  {change:+8.1%}  {p:7.4f}  {verdict}")

    judged = [v for v in verdicts.values() if v in ("SLOWER", "FASTER", "SAME", "NOISE")]
    slower = [k for k, v in verdicts.items() if v == "SLOWER"]
    print(f"\ngate ({args.metric}, threshold {args.threshold:.0%}, alpha {args.alpha}): {len(judged)} judged, "
          f"{len(slower)} slower, {sum(v == 'FASTER' for v in verdicts.values())} faster, "
          f"{sum(v == 'NOISE' for v in verdicts.values())} noise")
    if not judged:
        print("gate: nothing could be judged", file=sys.stderr)
        return 2
    if slower:
        print("gate: FAIL, significant slowdown in: " + ", ".join(slower))
        return 1
    print("gate: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
