#!/usr/bin/python3
"""Times torchvision's SSD target assignment and loss on the inputs `multibox_bench --multibox_dump_inputs` wrote.

The peer figure of issue 5: per image `box_iou` + `SSDMatcher` (as `SSD.forward` does in training), then
`SSD.compute_loss`, and for the training step `backward()` through it. The forward-only stage runs with autograd
recording, as the forward half of a training step does. Run with Debian's torch
(/usr/bin/python3; python3-torchvision) and 2 threads, like the C++ suite on this machine:

    /usr/bin/python3 bench/torchvision_bench.py --inputs out/bench-inputs --out out/torchvision.json

With `--device cuda` (issue 9: the peer of the cuda backend, on the same GPU) the inputs are moved to the GPU once,
each timed step is bracketed by torch.cuda.synchronize(), and the names become torchvision-cuda/GROUP/CASE/STAGE/t1
(one host thread drives the GPU, like the C++ suite's cuda/... and cuda-device/... runs). A machine without a
usable GPU gets the "available": false file below, with the reason.

The output is one JSON file: Google Benchmark's layout ("context", "benchmarks": one entry per repetition plus
median/mean/stddev aggregates, names torchvision/GROUP/CASE/STAGE/tTHREADS like the C++ suite) so compare.py and the
report read it alongside the C++ results, plus a "torchvision" summary with median ms per case and stage and
the loss torchvision computed next to the multibox reference loss on the same inputs. When torch or
torchvision cannot be imported, the file says so ("available": false, "reason") and the exit status is 0, so a
report can state why the peer column is empty instead of failing.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from types import SimpleNamespace

STAGES = ("forward", "backward")  # names shared with the C++ suite: matching + loss, and + autograd backward


def write_json(path, payload):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")


def unavailable(path, reason):
    print(f"torchvision_bench: {reason}", file=sys.stderr)
    write_json(path, {"context": {"executable": "torchvision_bench.py"}, "benchmarks": [],
                      "torchvision": {"available": False, "reason": reason}})


def load_case(case_dir, np):
    with open(os.path.join(case_dir, "case.json")) as f:
        header = json.load(f)
    arrays = {name: np.load(os.path.join(case_dir, name + ".npy"))
              for name in ("priors", "gt_boxes", "gt_labels", "gt_offsets", "conf", "loc")}
    shape = header["shape"]
    expected = {
        "priors": (shape["num_priors"], 4),
        "gt_boxes": (shape["total_ground_truths"], 4),
        "gt_labels": (shape["total_ground_truths"],),
        "gt_offsets": (shape["batch"] + 1,),
        "conf": (shape["batch"], shape["num_priors"], shape["num_classes"]),
        "loc": (shape["batch"], shape["num_priors"], 4),
    }
    for name, want in expected.items():
        if tuple(arrays[name].shape) != want:
            raise ValueError(f"{case_dir}/{name}.npy has shape {arrays[name].shape}, case.json says {want}")
    return header, arrays


class TorchvisionLoss:
    """Matching + SSD.compute_loss exactly as torchvision's SSD runs them in training, without the network."""

    def __init__(self, torch, header, arrays, device):
        from torchvision.models.detection import _utils as det_utils
        from torchvision.models.detection.ssd import SSD
        from torchvision.ops import boxes as box_ops

        cfg = header["config"]
        if abs(cfg["pos_threshold"] - cfg["neg_threshold"]) > 0:
            raise ValueError("torchvision's SSDMatcher has no ignore band; the case sets one")
        self.torch = torch
        self.device = device
        self.box_iou = box_ops.box_iou
        self.matcher = det_utils.SSDMatcher(cfg["pos_threshold"])
        # compute_loss reads only box_coder and neg_to_pos_ratio from the model, so an SSD without a backbone
        # is enough; calling the unbound method runs torchvision's own code, not a copy of it.
        wxy, wwh = 1.0 / cfg["variance_xy"], 1.0 / cfg["variance_wh"]
        self.model = SimpleNamespace(box_coder=det_utils.BoxCoder(weights=(wxy, wxy, wwh, wwh)),
                                     neg_to_pos_ratio=cfg["neg_pos_ratio"])
        self.compute_loss = SSD.compute_loss
        if cfg["smooth_l1_beta"] != 1.0 or cfg["alpha"] != 1.0:
            raise ValueError("torchvision's loss is fixed at beta = 1, alpha = 1; the case differs")

        priors = torch.from_numpy(arrays["priors"]).to(device)
        # torchvision's anchors are corners; the contract's prior corners are cx -+ w/2, cy -+ h/2.
        half = priors[:, 2:] / 2
        anchors = torch.cat([priors[:, :2] - half, priors[:, :2] + half], dim=1).contiguous()
        boxes = torch.from_numpy(arrays["gt_boxes"]).to(device)
        labels = torch.from_numpy(arrays["gt_labels"]).to(device=device, dtype=torch.int64)
        offsets = arrays["gt_offsets"].tolist()
        batch = header["shape"]["batch"]
        self.targets = [{"boxes": boxes[offsets[b]:offsets[b + 1]].contiguous(),
                         "labels": labels[offsets[b]:offsets[b + 1]].contiguous()} for b in range(batch)]
        self.anchors = [anchors] * batch
        self.conf = torch.from_numpy(arrays["conf"]).to(device)
        self.loc = torch.from_numpy(arrays["loc"]).to(device)

    def step(self, backward):
        torch = self.torch
        # Fresh leaves each step, as a head's outputs would be; the timed work is matching, loss and backward.
        conf = self.conf.detach().requires_grad_(True)
        loc = self.loc.detach().requires_grad_(True)
        matched_idxs = []
        for anchors_per_image, targets_per_image in zip(self.anchors, self.targets):
            if targets_per_image["boxes"].numel() == 0:
                matched_idxs.append(torch.full((anchors_per_image.size(0),), -1, dtype=torch.int64,
                                               device=self.device))
                continue
            quality = self.box_iou(targets_per_image["boxes"], anchors_per_image)
            matched_idxs.append(self.matcher(quality))
        losses = self.compute_loss(self.model, self.targets, {"bbox_regression": loc, "cls_logits": conf},
                                   self.anchors, matched_idxs)
        total = losses["bbox_regression"] + losses["classification"]
        if backward:
            total.backward()
        return losses, matched_idxs


def time_stage(runner, backward, repetitions, warmup, sync):
    # sync: torch.cuda.synchronize on a GPU, where a step returns once its kernels are queued, not done.
    for _ in range(warmup):
        runner.step(backward)
    times = []
    for _ in range(repetitions):
        sync()
        t0 = time.perf_counter()
        runner.step(backward)
        sync()
        times.append(time.perf_counter() - t0)
    return times


def gbench_entries(name, times_s, label):
    """One Google Benchmark 'iteration' entry per repetition plus the aggregates compare.py and the report read."""
    entries = []
    run = {"run_name": name, "family_index": 0, "per_family_instance_index": 0, "threads": 1,
           "iterations": 1, "time_unit": "ms", "label": label, "repetitions": len(times_s)}
    for i, t in enumerate(times_s):
        entries.append({"name": name, "run_type": "iteration", "repetition_index": i,
                        "real_time": t * 1e3, "cpu_time": t * 1e3, **run})
    ms = [t * 1e3 for t in times_s]
    aggregates = {"median": statistics.median(ms), "mean": statistics.fmean(ms),
                  "stddev": statistics.stdev(ms) if len(ms) > 1 else 0.0}
    for agg, value in aggregates.items():
        entries.append({"name": f"{name}_{agg}", "run_type": "aggregate", "aggregate_name": agg,
                        "aggregate_unit": "time", "real_time": value, "cpu_time": value, **run})
    return entries


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", required=True, help="folder written by multibox_bench --multibox_dump_inputs")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--cases", default="", help="comma-separated case names (default: every case folder)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--repetitions", type=int, default=15, help="timed repetitions per stage (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--device", default="cpu",
                        help="torch device: cpu (default) or cuda / cuda:N (the GPU peer of the cuda backend)")
    args = parser.parse_args()

    try:
        import numpy as np
        import torch
        import torchvision
    except Exception as e:  # ImportError, or a broken install raising something else
        unavailable(args.out, f"cannot import torch/torchvision with {sys.executable}: {e}")
        return 0
    try:
        device = torch.device(args.device)
    except Exception as e:  # RuntimeError for an unknown device string
        print(f"torchvision_bench: --device {args.device!r}: {e}", file=sys.stderr)
        return 2
    on_gpu = device.type == "cuda"
    if on_gpu:
        if not torch.cuda.is_available():
            unavailable(args.out, f"--device {args.device}: torch {torch.__version__} ({sys.executable}) sees no CUDA "
                                  f"device (built with CUDA {torch.version.cuda})")
            return 0
        if device.index is not None and device.index >= torch.cuda.device_count():
            unavailable(args.out, f"--device {args.device}: only {torch.cuda.device_count()} CUDA device(s)")
            return 0

    if not os.path.isdir(args.inputs):
        print(f"torchvision_bench: input folder {args.inputs} does not exist "
              "(write it with multibox_bench --multibox_dump_inputs=DIR)", file=sys.stderr)
        return 2
    cases = [c for c in args.cases.split(",") if c] or sorted(
        d for d in os.listdir(args.inputs) if os.path.isfile(os.path.join(args.inputs, d, "case.json")))
    if not cases:
        print(f"torchvision_bench: no case folders (with case.json) under {args.inputs}", file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    summary = {"available": True, "torch": torch.__version__, "torchvision": torchvision.__version__,
               "threads": args.threads, "repetitions": args.repetitions, "cases": {}}
    prefix, suffix, sync = "torchvision", f"t{args.threads}", (lambda: None)
    if on_gpu:
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        prefix, suffix, sync = "torchvision-cuda", "t1", (lambda: torch.cuda.synchronize(device))
        summary.update({"device": str(device), "device_name": torch.cuda.get_device_name(device),
                        "cuda": torch.version.cuda})
    benchmarks = []
    for case in cases:
        header, arrays = load_case(os.path.join(args.inputs, case), np)
        runner = TorchvisionLoss(torch, header, arrays, device)
        losses, matched = runner.step(backward=False)
        loss = float(losses["bbox_regression"] + losses["classification"])
        positives = int(sum(int((m >= 0).sum()) for m in matched))
        reference = header.get("reference_loss", {}).get("argmax", {})
        case_summary = {"group": header["group"], "shape": header["shape"], "loss": loss, "num_positives": positives,
                        "reference_loss_argmax": reference.get("total"),
                        "reference_num_positives_argmax": reference.get("num_positives")}
        if reference.get("total"):
            case_summary["loss_rel_diff_vs_reference_argmax"] = abs(loss - reference["total"]) / abs(reference["total"])
        label = "B={batch} P={num_priors} C={num_classes} G={total_ground_truths} argmax ({peer})".format(
            peer=prefix, **header["shape"])
        for stage in STAGES:
            times = time_stage(runner, backward=(stage == "backward"), repetitions=args.repetitions,
                               warmup=args.warmup, sync=sync)
            name = f"{prefix}/{header['group']}/{case}/{stage}/{suffix}"
            benchmarks += gbench_entries(name, times, label)
            case_summary[stage] = {"median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3,
                                   "max_ms": max(times) * 1e3}
            print(f"{name:55s} median {statistics.median(times) * 1e3:8.2f} ms  "
                  f"(min {min(times) * 1e3:.2f}, max {max(times) * 1e3:.2f}, n={len(times)})")
        print(f"  loss {loss:.6g} (N={positives}); multibox reference, argmax mode: "
              f"{reference.get('total', float('nan')):.6g} (N={reference.get('num_positives')})")
        summary["cases"][case] = case_summary

    context = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host_name": platform.node(),
               "executable": os.path.abspath(__file__), "num_cpus": os.cpu_count(),
               "library_build_type": "release", "torch": torch.__version__, "torchvision": torchvision.__version__,
               "torch_threads": str(args.threads)}
    if on_gpu:
        context.update({"device": summary["device"], "device_name": summary["device_name"], "cuda": torch.version.cuda})
    write_json(args.out, {"context": context, "benchmarks": benchmarks, "torchvision": summary})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
