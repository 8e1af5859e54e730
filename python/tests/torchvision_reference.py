"""torchvision's own SSD loss on multibox's inputs (box_iou + SSDMatcher as SSD.forward calls them, then
SSD.compute_loss), and the torchvision SSD300 geometry: what the Python package is proved against."""
import types

import numpy as np
import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD, SSDHead
from torchvision.ops import boxes as box_ops

# ssd300_vgg16's feature maps, channels, anchors per location and DefaultBoxGenerator arguments.
SSD300_GRIDS = [38, 19, 10, 5, 3, 1]
SSD300_CHANNELS = [512, 1024, 512, 256, 256, 256]
SSD300_ASPECT_RATIOS = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
SSD300_SCALES = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
SSD300_STEPS = [8, 16, 32, 64, 100, 300]


def ssd300_priors():
    """torchvision SSD300's 8732 default boxes, normalised (cx, cy, w, h), in the order its head emits them."""
    generator = DefaultBoxGenerator(SSD300_ASPECT_RATIOS, scales=SSD300_SCALES, steps=SSD300_STEPS)
    boxes = generator._grid_default_boxes([[g, g] for g in SSD300_GRIDS], [300, 300], dtype=torch.float32)
    return np.ascontiguousarray(boxes.numpy(), dtype=np.float32)


def ssd300_head(num_classes, seed=0):
    torch.manual_seed(seed)
    anchors = [2 + 2 * len(r) for r in SSD300_ASPECT_RATIOS]
    return SSDHead(SSD300_CHANNELS, anchors, num_classes)


def ssd300_features(batch, seed=1):
    """Stand-ins for the VGG16 backbone's feature maps: the head, not the backbone, shapes the loss's inputs."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, s, s, generator=g) for c, s in zip(SSD300_CHANNELS, SSD300_GRIDS)]


def prior_corners(priors):
    # The float32 expression of core::prior_corners, so both sides compute IoUs from the same anchor bits.
    p = torch.from_numpy(priors)
    return torch.cat([p[:, :2] - p[:, 2:] / 2, p[:, :2] + p[:, 2:] / 2], dim=1)


def targets_of(gt_boxes, gt_labels, gt_offsets):
    """multibox's ragged arrays as torchvision's list of {"boxes", "labels"} (int64 labels)."""
    return [{"boxes": torch.from_numpy(gt_boxes[lo:hi].copy()),
             "labels": torch.from_numpy(gt_labels[lo:hi].astype(np.int64))}
            for lo, hi in zip(gt_offsets[:-1], gt_offsets[1:])]


def compute_loss(head_outputs, targets, anchors):
    """SSD.compute_loss with SSD's matching; only box_coder and neg_to_pos_ratio of the model are read."""
    matcher = det_utils.SSDMatcher(0.5)
    num_anchors = anchors.shape[0]
    matched = [matcher(box_ops.box_iou(t["boxes"], anchors)) if len(t["boxes"])
               else torch.full((num_anchors,), -1, dtype=torch.int64) for t in targets]
    model = types.SimpleNamespace(box_coder=det_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)), neg_to_pos_ratio=3)
    return SSD.compute_loss(model, targets, head_outputs, [anchors] * len(targets), matched)
