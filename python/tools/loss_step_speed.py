#!/usr/bin/python3
"""Times one training loss step (matching + loss + backward) of multibox.torch.MultiBoxLoss against torchvision's
(box_iou + SSDMatcher + SSD.compute_loss + autograd) on the same COCO128 batch, and checks they agree.

    PYTHONPATH=build/release/python /usr/bin/python3 python/tools/loss_step_speed.py [--batch 32] [--threads 2]

Logits and box regressions are the coco128 workload's (the "trained" logit model); priors are torchvision SSD300's
8732 default boxes; argmax mode. Prints the median of --repetitions timed steps of each and the ratio.
"""
import argparse
import pathlib
import statistics
import sys
import time

import torch

import multibox
from multibox.torch import MultiBoxLoss

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
import torchvision_reference as tv  # noqa: E402


def median_ms(step, repetitions, warmup=2):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repetitions):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch threads and backend threads (default 2)")
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--backend", default="simd")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    w = multibox.workload("coco128", batch=args.batch)
    priors = tv.ssd300_priors()
    anchors = tv.prior_corners(priors)
    targets = tv.targets_of(w.gt_boxes, w.gt_labels, w.gt_offsets)
    conf, loc = torch.from_numpy(w.conf), torch.from_numpy(w.loc)
    criterion = MultiBoxLoss(priors, w.num_classes, multibox.Config(forced_match="argmax"), backend=args.backend,
                             threads=args.threads)

    def step(loss_fn):
        outputs = {"cls_logits": conf.detach().requires_grad_(True),
                   "bbox_regression": loc.detach().requires_grad_(True)}
        total = sum(loss_fn(outputs, targets).values())
        total.backward()
        return float(total)

    ours = lambda: step(criterion)
    theirs = lambda: step(lambda o, t: tv.compute_loss(o, t, anchors))
    l_ours, l_theirs = ours(), theirs()
    print(f"coco128 B={args.batch} P={priors.shape[0]} C={w.num_classes} G={len(w.gt_labels)}, argmax, "
          f"{args.threads} threads; torch {torch.__version__}")
    print(f"  loss: multibox.torch ({criterion.plan.backend}) {l_ours:.7f}, torchvision {l_theirs:.7f}, "
          f"rel diff {abs(l_ours - l_theirs) / abs(l_theirs):.2e}")
    m_ours, min_ours = median_ms(ours, args.repetitions)
    m_theirs, min_theirs = median_ms(theirs, args.repetitions)
    print(f"  loss step (match + loss + backward), median of {args.repetitions}: multibox.torch {m_ours:.2f} ms "
          f"(min {min_ours:.2f}), torchvision {m_theirs:.2f} ms (min {min_theirs:.2f}): {m_theirs / m_ours:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
