#!/usr/bin/python3
"""Golden vectors from an implementation nobody here wrote: torchvision's SSD loss.

For every case folder given (or every folder under datasets/golden/cases), runs torchvision's own code on the case's
inputs -- box_iou and SSDMatcher exactly as SSD.forward calls them, then SSD.compute_loss itself, with autograd for the
gradients -- and writes the answers into CASE/torchvision/ under the names of a case outputs folder (see
datasets/include/multibox/case_file.hpp), so `multibox validate` and golden_test.cpp read them like any other output.

Run with Debian's interpreter (python3-torchvision 0.14, torch 1.13): see datasets/golden/README.md for the command.

Besides the standard quantities it writes
  selected.npy    |u1 [B,P]  torchvision's own hard-negative selection (background_idxs); unlike mined.npy it also
                             holds the positives that rank inside the 3P quota when 3P exceeds the negatives
  argmax_prior.npy <i4 [G]   each ground truth's argmax prior (match_quality_matrix.max(dim=1)), before conflicts
  provenance.json            versions of torch, torchvision, numpy and python
"""
import json
import pathlib
import platform
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.ssd import SSD
from torchvision.ops import boxes as box_ops

GOLDEN_DIR = pathlib.Path(__file__).resolve().parent

# The only configuration torchvision's SSD implements (DESIGN.md section 7).
TORCHVISION_CONFIG = {
    "forced_match": "argmax",
    "pos_threshold": 0.5,
    "variance_xy": 0.1,
    "variance_wh": 0.2,
    "neg_pos_ratio": 3,
    "min_negatives_per_image": 0,
    "alpha": 1.0,
    "smooth_l1_beta": 1.0,
}


def fail(case_dir, message):
    sys.exit(f"make_golden.py: {case_dir}: {message}")


def load_case(case_dir):
    meta = json.loads((case_dir / "case.json").read_text())
    if meta.get("format") != "multibox-case" or meta.get("version") != 1:
        fail(case_dir, "case.json is not a version 1 multibox-case")
    config = meta["config"]
    for key, value in TORCHVISION_CONFIG.items():
        same = config[key] == value if isinstance(value, str) else np.float32(config[key]) == np.float32(value)
        if not same:
            fail(case_dir, f"config.{key} is {config[key]!r}; torchvision's SSD only implements {value!r}")
    if config["neg_threshold"] not in (None, config["pos_threshold"]):
        fail(case_dir, "config.neg_threshold sets an ignore band, which SSDMatcher does not have")
    arrays = {name: np.load(case_dir / f"{name}.npy")
              for name in ("priors", "gt_boxes", "gt_labels", "gt_offsets", "conf", "loc")}
    shape = meta["shape"]
    B, P, C = shape["batch"], shape["num_priors"], shape["num_classes"]
    expected = {"priors": (P, 4), "gt_offsets": (B + 1,), "conf": (B, P, C), "loc": (B, P, 4)}
    for name, want in expected.items():
        if arrays[name].shape != want:
            fail(case_dir, f"{name}.npy has shape {arrays[name].shape}, case.json says {want}")
    return meta, arrays


def prior_corners(priors):
    # Same float32 expression as core::prior_corners (cx - w/2, ...), so both sides see bit-identical anchors.
    cx, cy, w, h = (priors[:, k] for k in range(4))
    two = np.float32(2)
    return np.stack([cx - w / two, cy - h / two, cx + w / two, cy + h / two], axis=1).astype(np.float32)


def run_torchvision(arrays):
    priors, gt_boxes, gt_labels, offsets = arrays["priors"], arrays["gt_boxes"], arrays["gt_labels"], arrays["gt_offsets"]
    B, P, C = arrays["conf"].shape
    anchors = torch.from_numpy(prior_corners(priors))
    targets = []
    for b in range(B):
        lo, hi = int(offsets[b]), int(offsets[b + 1])
        targets.append({"boxes": torch.from_numpy(gt_boxes[lo:hi].copy()),
                        "labels": torch.from_numpy(gt_labels[lo:hi].astype(np.int64))})

    # SSD.forward's matching loop, verbatim apart from the names.
    proposal_matcher = det_utils.SSDMatcher(0.5)
    matched_idxs, argmax_prior = [], []
    for t in targets:
        if t["boxes"].numel() == 0:
            matched_idxs.append(torch.full((P,), -1, dtype=torch.int64))
            continue
        match_quality_matrix = box_ops.box_iou(t["boxes"], anchors)
        matched_idxs.append(proposal_matcher(match_quality_matrix))
        argmax_prior.append(match_quality_matrix.max(dim=1)[1])

    # compute_loss reads only these attributes of the model; SSD.__init__ sets them to exactly these values.
    model = types.SimpleNamespace(box_coder=det_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)),
                                  neg_to_pos_ratio=(1.0 - 0.25) / 0.25)
    cls_logits = torch.from_numpy(arrays["conf"].copy()).requires_grad_(True)
    bbox_regression = torch.from_numpy(arrays["loc"].copy()).requires_grad_(True)
    head_outputs = {"cls_logits": cls_logits, "bbox_regression": bbox_regression}
    losses = SSD.compute_loss(model, targets, head_outputs, [anchors] * B, matched_idxs)
    (losses["bbox_regression"] + losses["classification"]).backward()

    # compute_loss returns only the two normalised terms. Re-derive its selection with the same operations, and
    # prove it is the same selection by reproducing its classification term bit for bit.
    with torch.no_grad():
        matches = torch.stack(matched_idxs)
        cls_targets = torch.zeros((B, P), dtype=torch.int64)
        encoded = torch.zeros((B, P, 4), dtype=torch.float32)
        bbox_loss = []
        for b, t in enumerate(targets):
            fg = torch.where(matches[b] >= 0)[0]
            cls_targets[b, fg] = t["labels"][matches[b, fg]]
            enc = model.box_coder.encode_single(t["boxes"][matches[b, fg]], anchors[fg, :])
            encoded[b, fg] = enc
            bbox_loss.append(F.smooth_l1_loss(bbox_regression[b, fg, :], enc, reduction="sum"))
        loc_sum = torch.stack(bbox_loss).sum()
        cls_loss = F.cross_entropy(cls_logits.view(-1, C), cls_targets.view(-1), reduction="none").view(B, P)
        foreground = cls_targets > 0
        num_negative = model.neg_to_pos_ratio * foreground.sum(1, keepdim=True)
        negative_loss = cls_loss.clone()
        negative_loss[foreground] = -float("inf")
        _, idx = negative_loss.sort(1, descending=True)
        selected = idx.sort(1)[1] < num_negative
        conf_sum = cls_loss[foreground].sum() + cls_loss[selected].sum()
        N = max(1, int(foreground.sum()))
        if (conf_sum / N).item() != losses["classification"].item():
            raise RuntimeError("re-derived selection does not reproduce torchvision's classification loss")
        if (loc_sum / N).item() != losses["bbox_regression"].item():
            raise RuntimeError("re-derived targets do not reproduce torchvision's bbox_regression loss")

    G = len(gt_labels)
    forced_prior = np.full(G, -1, dtype=np.int32)
    argmax_all = np.full(G, -1, dtype=np.int32)
    unmatched = np.zeros(B, dtype=np.int32)
    it = iter(argmax_prior)
    for b in range(B):
        lo, hi = int(offsets[b]), int(offsets[b + 1])
        if hi == lo:
            continue
        best = next(it).numpy()
        for g in range(hi - lo):
            argmax_all[lo + g] = best[g]
            # SSDMatcher writes arange(G) into matches at the argmax priors; where several ground truths share one,
            # the last write (highest index) stands. A ground truth's forced prior is its argmax if it kept it.
            if int(matches[b, best[g]]) == g:
                forced_prior[lo + g] = best[g]
        m = matches[b].numpy()
        unmatched[b] = sum(1 for g in range(hi - lo) if not np.any(m == g))

    positive = foreground.numpy()
    mined = selected.numpy() & ~positive
    return {
        "matches": matches.numpy().astype(np.int32),
        "forced_prior": forced_prior,
        "positives": positive.sum(1).astype(np.int32),
        "unmatched_ground_truths": unmatched,
        "targets": encoded.numpy(),
        "mined": mined.astype(np.uint8),
        "mined_negatives": mined.sum(1).astype(np.int32),
        "grad_conf": cls_logits.grad.numpy(),
        "grad_loc": bbox_regression.grad.numpy(),
        "selected": selected.numpy().astype(np.uint8),
        "argmax_prior": argmax_all,
    }, {
        "total": (losses["bbox_regression"] + losses["classification"]).item(),
        "conf": float(losses["classification"].item()),
        "loc": float(losses["bbox_regression"].item()),
        "conf_sum": float(conf_sum.item()),
        "loc_sum": float(loc_sum.item()),
        "num_positives": int(foreground.sum()),
    }


def main(argv):
    case_dirs = [pathlib.Path(a) for a in argv] or sorted(p.parent for p in (GOLDEN_DIR / "cases").glob("*/case.json"))
    if not case_dirs:
        sys.exit("make_golden.py: no case folders (run make_golden_cases first; see README.md)")
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for case_dir in case_dirs:
        meta, arrays = load_case(case_dir)
        outputs, loss = run_torchvision(arrays)
        out_dir = case_dir / "torchvision"
        out_dir.mkdir(exist_ok=True)
        for name, value in outputs.items():
            np.save(out_dir / f"{name}.npy", np.ascontiguousarray(value))
        (out_dir / "loss.json").write_text(json.dumps(loss, indent=2) + "\n")
        (out_dir / "provenance.json").write_text(json.dumps({
            "torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__,
            "python": platform.python_version(),
            "code": "torchvision.ops.boxes.box_iou, det_utils.SSDMatcher(0.5), SSD.compute_loss, autograd",
        }, indent=2) + "\n")
        print(f"{meta['name']:20s} N={loss['num_positives']:4d} loss={loss['total']:.6f} "
              f"(conf {loss['conf']:.6f}, loc {loss['loc']:.6f}) selected={int(outputs['selected'].sum())}")


if __name__ == "__main__":
    main(sys.argv[1:])
