"""The MultiBox loss of a multibox backend as a PyTorch module: a drop-in for torchvision's `SSD.compute_loss`.

    from multibox.torch import MultiBoxLoss
    criterion = MultiBoxLoss(priors, num_classes=81, config=multibox.Config(forced_match="argmax"))
    losses = criterion(head(features), targets)       # {"bbox_regression": ..., "classification": ...}
    sum(losses.values()).backward()

Matching, encoding, mining and the gradients all run in the backend (one call, the GIL released); autograd only
multiplies the backend's analytic gradients by the incoming ones. CPU float32 tensors for now. `forced_match="argmax"`
with the default thresholds, variances (torchvision's BoxCoder weights 10, 10, 5, 5), ratio 3 and beta 1 is
torchvision's SSD loss; docs/SPEC.md section 10 lists where the two still differ on purpose.
"""
import numpy as np
import torch

from . import Config, prepare
from . import priors as named_priors


def priors_from_anchors(anchors, image_size):
    """torchvision's anchors (pixel corners [P, 4], e.g. one image's from DefaultBoxGenerator) as normalised
    (cx, cy, w, h) priors. `image_size` is (height, width) or one int."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    a = torch.as_tensor(anchors, dtype=torch.float64)
    scale = torch.tensor([w, h, w, h], dtype=torch.float64)
    x1, y1, x2, y2 = (a / scale).unbind(1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=1).float().numpy()


def _checked(tensor, name):
    """The tensor's memory as a NumPy array, refusing what would need a silent copy (the rule of the NumPy API)."""
    if tensor.device.type != "cpu":
        raise TypeError(f"{name}: tensor on {tensor.device}; multibox.torch takes CPU tensors for now (use .cpu())")
    if tensor.dtype != torch.float32:
        raise TypeError(f"{name}: dtype {tensor.dtype}; multibox reads float32 without copying (use .float())")
    if not tensor.is_contiguous():
        raise TypeError(f"{name}: not contiguous; multibox reads it without copying (use .contiguous())")
    return tensor.detach().numpy()


def ground_truths(targets, image_size=None):
    """torchvision's targets (a list of {"boxes": [G, 4] corners, "labels": [G]}) as the ragged arrays of the NumPy
    API: boxes normalised by `image_size` ((height, width) or one int) when given, labels int32, offsets [B+1]."""
    boxes = [t["boxes"].detach().to("cpu", torch.float32) for t in targets]
    if image_size is not None:
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        boxes = [b / torch.tensor([w, h, w, h], dtype=torch.float32) for b in boxes]
    counts = [len(b) for b in boxes]
    gt_boxes = np.ascontiguousarray(torch.cat(boxes).reshape(-1, 4).numpy(), dtype=np.float32)
    gt_labels = np.concatenate([t["labels"].detach().cpu().numpy() for t in targets]).astype(np.int32)
    gt_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return gt_boxes, gt_labels, gt_offsets


class _BackendLoss(torch.autograd.Function):
    """(classification, bbox_regression) terms from one backend run; backward hands back its analytic gradients."""

    @staticmethod
    def forward(ctx, cls_logits, bbox_regression, plan, ground_truth, alpha, holder):
        stage = "backward" if ctx.needs_input_grad[0] or ctx.needs_input_grad[1] else "forward"
        out = plan.run(*ground_truth, _checked(cls_logits, "cls_logits"),
                       _checked(bbox_regression, "bbox_regression"), stage=stage)
        holder.append(out)
        if stage == "backward":
            # Views of the backend's buffers (no copy); the arrays keep the outputs alive.
            ctx.grads = (torch.from_numpy(out.grad_conf), torch.from_numpy(out.grad_loc))
        loss = out.loss
        return (torch.tensor(loss["conf"], dtype=torch.float32),
                torch.tensor(alpha * loss["loc"], dtype=torch.float32))

    @staticmethod
    def backward(ctx, grad_classification, grad_regression):
        grad_conf, grad_loc = ctx.grads
        # Dropped here so autograd can adopt the backend's buffers as .grad instead of copying B*P*C floats.
        del ctx.grads
        # The backend's grad_loc is d(conf + alpha * loc)/d loc, i.e. already the gradient of the alpha-weighted term.
        scale = lambda g, grad: None if g is None else grad if float(g) == 1.0 else grad * g
        return scale(grad_classification, grad_conf), scale(grad_regression, grad_loc), None, None, None, None


class MultiBoxLoss(torch.nn.Module):
    """SSD's MultiBox loss computed by a multibox backend.

    priors: a prior-set name ("ssd300") or [P, 4] normalised (cx, cy, w, h) (see `priors_from_anchors`).
    num_classes: C, background 0 included. config: a `multibox.Config` (default: the project's, bipartite; pass
    `Config(forced_match="argmax")` for torchvision's). image_size: when given, target boxes are in pixels of an image
    of that size ((height, width) or one int) and are normalised here; otherwise they are already normalised.

    forward(head_outputs, targets): head_outputs as torchvision's SSDHead returns them ({"cls_logits": [B, P, C],
    "bbox_regression": [B, P, 4]}), targets as torchvision takes them; returns {"bbox_regression": alpha * L_loc / N,
    "classification": L_conf / N} like `SSD.compute_loss`, whose sum is the loss. `last_outputs` holds the last run's
    `multibox.Outputs` (matches, mined negatives, ...).
    """

    def __init__(self, priors, num_classes, config=None, backend="simd", threads=0, image_size=None):
        super().__init__()
        self.config = config if config is not None else Config()
        p = named_priors(priors) if isinstance(priors, str) else np.ascontiguousarray(
            torch.as_tensor(priors).detach().cpu().numpy(), dtype=np.float32)
        self.plan = prepare(p, num_classes, self.config, backend=backend, threads=threads)
        self.image_size = image_size
        self.last_outputs = None

    def forward(self, head_outputs, targets):
        holder = []
        classification, regression = _BackendLoss.apply(
            head_outputs["cls_logits"], head_outputs["bbox_regression"], self.plan,
            ground_truths(targets, self.image_size), float(self.config.alpha), holder)
        self.last_outputs = holder[0]
        return {"bbox_regression": regression, "classification": classification}

    def extra_repr(self):
        return f"backend={self.plan.backend}, priors={self.plan.num_priors}, config={self.config!r}"
