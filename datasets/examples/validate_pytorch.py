#!/usr/bin/python3
"""A MultiBox loss written in plain PyTorch, run on a case folder and judged by `multibox validate`.

Shows the round trip for an implementation outside C++:

    multibox export --workload ssd300-voc --batch 4 --forced-match argmax --out /tmp/case
    /usr/bin/python3 datasets/examples/validate_pytorch.py /tmp/case /tmp/case/torch
    multibox validate --case /tmp/case --outputs /tmp/case/torch

validate_pytorch_inprocess.py runs the same loss on named workloads without the files, through the Python package.

The loss follows DESIGN.md in `argmax` mode (torchvision's SSDMatcher rule); on a `bipartite` case its matches
differ wherever two ground truths share a best prior, and `multibox validate` says so quantity by quantity.
"""
import json
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou


def match_image(gt, priors_xyxy, pos_threshold, neg_threshold):
    """Per prior: GT index, -1 negative, -2 ignored; per GT: forced prior or -1."""
    P = priors_xyxy.shape[0]
    matches = torch.full((P,), -1, dtype=torch.int64)
    forced = torch.full((gt.shape[0],), -1, dtype=torch.int64)
    if gt.shape[0] == 0:
        return matches, forced
    iou = box_iou(gt, priors_xyxy)  # [G, P]
    best_iou, best_gt = iou.max(dim=0)  # lowest GT index on ties
    matches[best_iou < pos_threshold] = -2
    matches[best_iou < neg_threshold] = -1
    positive = best_iou >= pos_threshold
    matches[positive] = best_gt[positive]
    # Stage 1 (argmax): each GT forces its best prior; a later GT wins a shared prior; IoU 0 forces nothing.
    owner = {}
    for g in range(gt.shape[0]):
        if iou[g].max() > 0:
            owner[int(iou[g].argmax())] = g
    for p, g in owner.items():
        forced[g] = p
        matches[p] = g
    return matches, forced


def pytorch_outputs(priors, boxes, labels, offsets, conf, loc, cfg):
    """Every output quantity, as NumPy arrays named like a case's outputs folder (loss: a dict like loss.json).

    Inputs are tensors in the case layout; `cfg` holds the case.json config fields."""
    labels = labels.long()
    conf = conf.detach().clone().requires_grad_()
    loc = loc.detach().clone().requires_grad_()
    B, P, C = conf.shape
    pos_t = cfg["pos_threshold"]
    neg_t = cfg["neg_threshold"] if cfg["neg_threshold"] is not None else pos_t
    vxy, vwh = cfg["variance_xy"], cfg["variance_wh"]
    pcx, pcy, pw, ph = priors.unbind(1)
    priors_xyxy = torch.stack([pcx - pw / 2, pcy - ph / 2, pcx + pw / 2, pcy + ph / 2], dim=1)

    matches = torch.full((B, P), -1, dtype=torch.int64)
    forced_prior, unmatched = [], []
    targets = torch.zeros(B, P, 4)
    target_class = torch.zeros(B, P, dtype=torch.int64)
    for b in range(B):
        lo, hi = int(offsets[b]), int(offsets[b + 1])
        gt = boxes[lo:hi]
        m, forced = match_image(gt, priors_xyxy, pos_t, neg_t)
        matches[b] = m
        forced_prior.append(forced)
        unmatched.append(sum(1 for g in range(hi - lo) if not bool((m == g).any())))
        pos = m >= 0
        g = gt[m[pos]]
        gcx, gcy, gw, gh = (g[:, 0] + g[:, 2]) / 2, (g[:, 1] + g[:, 3]) / 2, g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
        p = priors[pos]
        targets[b, pos] = torch.stack([(gcx - p[:, 0]) / p[:, 2] / vxy, (gcy - p[:, 1]) / p[:, 3] / vxy,
                                       torch.log(gw / p[:, 2]) / vwh, torch.log(gh / p[:, 3]) / vwh], dim=1)
        target_class[b, pos] = labels[lo:hi][m[pos]]

    ce = F.cross_entropy(conf.reshape(-1, C), target_class.reshape(-1), reduction="none").reshape(B, P)
    positive, negative = matches >= 0, matches == -1
    num_pos = positive.sum(dim=1)
    mined = torch.zeros(B, P, dtype=torch.bool)
    for b in range(B):
        target = max(cfg["min_negatives_per_image"], cfg["neg_pos_ratio"] * int(num_pos[b]))
        k = min(target, int(negative[b].sum()))
        neg_ce = torch.where(negative[b], ce[b].detach(), torch.tensor(float("-inf")))
        order = torch.sort(neg_ce, descending=True, stable=True).indices  # ties: lowest prior index first
        mined[b, order[:k]] = True
    N = int(num_pos.sum())
    conf_sum = ce[positive | mined].sum()
    loc_sum = F.smooth_l1_loss(loc[positive], targets[positive], beta=cfg["smooth_l1_beta"], reduction="sum")
    total = (conf_sum + cfg["alpha"] * loc_sum) / N if N > 0 else conf_sum * 0
    total.backward()

    n = max(N, 1)
    return {
        "matches": matches.numpy().astype("<i4"),
        "forced_prior": torch.cat(forced_prior).numpy().astype("<i4"),
        "positives": num_pos.numpy().astype("<i4"),
        "unmatched_ground_truths": np.array(unmatched, dtype="<i4"),
        "targets": targets.numpy().astype("<f4"),
        "mined": mined.numpy().astype("u1"),
        "mined_negatives": mined.sum(dim=1).numpy().astype("<i4"),
        "grad_conf": conf.grad.numpy().astype("<f4"),
        "grad_loc": loc.grad.numpy().astype("<f4"),
        "loss": {"total": float(total), "conf": float(conf_sum) / n, "loc": float(loc_sum) / n,
                 "conf_sum": float(conf_sum), "loc_sum": float(loc_sum), "num_positives": N},
    }


def main(case_dir, out_dir):
    case_dir, out_dir = pathlib.Path(case_dir), pathlib.Path(out_dir)
    meta = json.loads((case_dir / "case.json").read_text())
    cfg = meta["config"]
    if cfg["forced_match"] != "argmax":
        print(f"note: case uses {cfg['forced_match']} forced matching; this example implements argmax")
    load = lambda name: torch.from_numpy(np.load(case_dir / f"{name}.npy"))
    outputs = pytorch_outputs(*(load(name) for name in ("priors", "gt_boxes", "gt_labels", "gt_offsets", "conf", "loc")),
                              cfg)
    loss = outputs.pop("loss")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, array in outputs.items():
        np.save(out_dir / f"{name}.npy", array)
    (out_dir / "loss.json").write_text(json.dumps(loss))
    print(f"wrote {out_dir}: loss {loss['total']:.7g}, N = {loss['num_positives']}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
