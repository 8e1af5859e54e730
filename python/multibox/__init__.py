"""multibox from Python: SSD target assignment, the MultiBox loss, hard negative mining and gradients.

    import multibox
    plan = multibox.prepare(multibox.priors("ssd300"), num_classes=81, config=multibox.Config(forced_match="argmax"))
    out = plan.run(gt_boxes, gt_labels, gt_offsets, conf, loc)   # out.loss, out.grad_conf, out.matches, ...

Arrays are NumPy, float32 / int32 and C-contiguous (taken without a copy; anything else is refused with the
conversion to apply). `multibox.torch.MultiBoxLoss` wraps a plan as a PyTorch loss; `compare` and `validate` judge
another implementation's outputs under the agreement rules of docs/SPEC.md.
"""
from ._multibox import (Config, Outputs, Plan, QuantityVerdict, Validation, Workload, backends, compare, prepare,
                        priors, workload, workloads)

__all__ = ["Config", "Outputs", "Plan", "QuantityVerdict", "Validation", "Workload", "backends", "compare",
           "prepare", "priors", "validate", "workload", "workloads"]


def validate(fn, workload="coco128", config=None, *, stage="backward", batch=0, seed=0, coco_path="",
             reference="naive"):
    """Runs `fn` on named workloads in-process and judges its outputs against the reference backend.

    `fn(w, config)` receives a `Workload` (priors, gt_boxes, gt_labels, gt_offsets, conf, loc, num_classes: NumPy
    views it must not modify) and the `Config` to apply, and returns a dict of the quantities it computes, named as
    in a case folder (matches, forced_prior, positives, unmatched_ground_truths, targets, mined, mined_negatives,
    loss as a dict like loss.json, grad_conf, grad_loc; any subset) or an `Outputs`. The in-process twin of
    `multibox export` + `multibox validate`.

    Returns one `Validation` (or a list of them when `workload` is a list); `print(v)` reads like `multibox validate`.
    `config` defaults to each workload's own.
    """
    names = [workload] if isinstance(workload, str) else list(workload)
    results = []
    for name in names:
        w = _workload(name, batch=batch, seed=seed, coco_path=coco_path)
        cfg = config if config is not None else w.config
        plan = prepare(w.priors, w.num_classes, cfg, backend=reference)
        expected = plan.run(w.gt_boxes, w.gt_labels, w.gt_offsets, w.conf, w.loc, stage=stage)
        verdict = compare(expected, fn(w, cfg))
        verdict.name = name
        results.append(verdict)
    return results[0] if isinstance(workload, str) else results


_workload = workload
