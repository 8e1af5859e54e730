"""Reading Google Benchmark JSON (multibox_bench's and torchvision_bench.py's) into per-benchmark samples.

Benchmark names are BACKEND/GROUP/CASE/STAGE/tTHREADS; Google Benchmark appends "/real_time" when a benchmark
uses real time, and "_median" etc. to aggregates. Both are folded away here so results of the two programs line up.
"""

import json
import re
import statistics
from dataclasses import dataclass, field

_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
_LABEL_FIELD = re.compile(r"\b([BPCG])=(\d+)")


@dataclass
class Result:
    key: str                  # BACKEND/GROUP/CASE/STAGE/tTHREADS
    backend: str
    group: str
    case: str
    stage: str
    threads: int
    label: str = ""
    times_ms: list = field(default_factory=list)     # one per repetition (iteration entries only)
    counters: dict = field(default_factory=dict)     # counter name -> list of values, one per repetition
    error: str = ""                                  # set when the benchmark was skipped or failed

    @property
    def median_ms(self):
        return statistics.median(self.times_ms) if self.times_ms else None

    def counter(self, name):
        values = self.counters.get(name)
        return statistics.median(values) if values else None

    def shape(self):
        """{'B': .., 'P': .., 'C': .., 'G': ..} parsed from the label 'B=32 P=8732 C=81 G=248 bipartite'."""
        return {k: int(v) for k, v in _LABEL_FIELD.findall(self.label)}


# Fields every Google Benchmark entry carries that are not user counters.
_STANDARD_FIELDS = {
    "name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations", "real_time",
    "cpu_time", "time_unit", "label", "family_index", "per_family_instance_index", "aggregate_name",
    "aggregate_unit", "error_occurred", "error_message", "bytes_per_second", "items_per_second",
}


def normalise_name(name):
    # Google Benchmark appends the timing mode: /real_time (CPU backends, host views), /manual_time (CUDA events).
    for suffix in ("/real_time", "/manual_time"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def split_key(key):
    parts = key.split("/")
    if len(parts) != 5 or not parts[4].startswith("t") or not parts[4][1:].isdigit():
        return None
    return parts[0], parts[1], parts[2], parts[3], int(parts[4][1:])


def load(path):
    """Returns (context dict, {key: Result}, extra top-level dict) for one JSON file."""
    with open(path) as f:
        doc = json.load(f)
    results = {}
    entries = doc.get("benchmarks", [])
    with_repetitions = {normalise_name(e.get("run_name") or e["name"]) for e in entries
                        if e.get("run_type") != "aggregate"}
    for entry in entries:
        key = normalise_name(entry.get("run_name") or entry["name"])
        if entry.get("run_type") == "aggregate":
            # Medians are recomputed from the repetitions; a run with --benchmark_report_aggregates_only wrote
            # none, and then its median is the one sample there is.
            if key in with_repetitions or entry.get("aggregate_name") != "median":
                continue
        parts = split_key(key)
        if parts is None:
            continue  # not one of ours
        r = results.get(key)
        if r is None:
            r = results[key] = Result(key, *parts, label=entry.get("label", ""))
        if entry.get("error_occurred"):
            r.error = entry.get("error_message", "error")
            continue
        r.times_ms.append(entry["real_time"] * _TO_MS[entry.get("time_unit", "ns")])
        if "bytes_per_second" in entry:
            r.counters.setdefault("bytes_per_second", []).append(entry["bytes_per_second"])
        for name, value in entry.items():
            if name not in _STANDARD_FIELDS and isinstance(value, (int, float)):
                r.counters.setdefault(name, []).append(float(value))
    return doc.get("context", {}), results, {k: v for k, v in doc.items() if k not in ("context", "benchmarks")}


def load_many(paths):
    """load() over several runs of the same program, pooled: a benchmark that appears in more than one file gets the
    repetitions of all of them (e.g. the main job's quick pass plus its repeated pass over the judged benchmarks).
    The context is the first file's."""
    context, merged, extra = None, {}, {}
    for path in paths:
        ctx, results, more = load(path)
        if context is None:
            context, extra = ctx, more
        for key, r in results.items():
            have = merged.get(key)
            if have is None:
                merged[key] = r
                continue
            have.times_ms += r.times_ms
            for name, values in r.counters.items():
                have.counters.setdefault(name, []).extend(values)
            have.error = have.error or r.error
            have.label = have.label or r.label
    return context or {}, merged, extra

