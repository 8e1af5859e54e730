#!/usr/bin/python3
"""The PyTorch loss of validate_pytorch.py judged in-process: no case folder, no files, one call per workload.

    PYTHONPATH=build/release/python /usr/bin/python3 datasets/examples/validate_pytorch_inprocess.py [WORKLOAD ...]

multibox.validate draws each named workload (default: adversarial and coco128 at 4 images), runs the reference
backend on it, hands the inputs to the function below and prints the verdicts exactly as `multibox validate` does.
Exits non-zero unless every workload PASSED.
"""
import pathlib
import sys

import torch

import multibox

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from validate_pytorch import pytorch_outputs  # noqa: E402


def pytorch_loss(w, config):
    cfg = {"pos_threshold": config.pos_threshold, "neg_threshold": config.neg_threshold,
           "variance_xy": config.variances[0], "variance_wh": config.variances[1],
           "neg_pos_ratio": config.neg_pos_ratio, "min_negatives_per_image": config.min_negatives,
           "alpha": config.alpha, "smooth_l1_beta": config.beta}
    arrays = (w.priors, w.gt_boxes, w.gt_labels, w.gt_offsets, w.conf, w.loc)
    return pytorch_outputs(*(torch.from_numpy(a) for a in arrays), cfg)


def main(workloads):
    results = multibox.validate(pytorch_loss, workloads or ["adversarial", "coco128"], batch=4,
                                config=multibox.Config(forced_match="argmax"))
    for v in results:
        print(v)
    return 0 if all(v.passed for v in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
