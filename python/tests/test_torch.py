"""multibox.torch.MultiBoxLoss against torchvision's SSD.compute_loss + autograd, on COCO128 boxes and the outputs of
a torchvision SSD300 head, in argmax mode (docs/SPEC.md section 10: the configuration torchvision implements)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

import multibox  # noqa: E402
import torchvision_reference as tv  # noqa: E402
from multibox.torch import MultiBoxLoss, priors_from_anchors  # noqa: E402

ARGMAX = multibox.Config(forced_match="argmax")
BATCH = 4


@pytest.fixture(scope="module")
def scene():
    """COCO128's first images, torchvision SSD300's anchors, and its head's outputs (one tensor per side)."""
    torch.set_num_threads(2)
    w = multibox.workload("coco128", batch=BATCH)
    priors = tv.ssd300_priors()
    head = tv.ssd300_head(w.num_classes)
    with torch.no_grad():
        outputs = head(tv.ssd300_features(BATCH))
    return w, priors, outputs


def leaves(outputs):
    return {k: v.detach().clone().requires_grad_(True) for k, v in outputs.items()}


def test_loss_and_gradients_equal_torchvision(scene):
    w, priors, outputs = scene
    targets = tv.targets_of(w.gt_boxes, w.gt_labels, w.gt_offsets)

    ours = leaves(outputs)
    criterion = MultiBoxLoss(priors, w.num_classes, ARGMAX)
    losses = criterion(ours, targets)
    sum(losses.values()).backward()

    theirs = leaves(outputs)
    reference_losses = tv.compute_loss(theirs, targets, tv.prior_corners(priors))
    sum(reference_losses.values()).backward()

    # Both judged by the project's comparator against the reference backend on the same inputs.
    conf, loc = (np.ascontiguousarray(outputs[k].numpy()) for k in ("cls_logits", "bbox_regression"))
    naive = multibox.prepare(priors, w.num_classes, ARGMAX, backend="naive")
    expected = naive.run(w.gt_boxes, w.gt_labels, w.gt_offsets, conf, loc)
    n = expected.loss["num_positives"]
    for name, terms, grads in (("multibox.torch", losses, ours), ("torchvision", reference_losses, theirs)):
        candidate = {"loss": {"total": float(sum(terms.values())), "conf": float(terms["classification"]),
                              "loc": float(terms["bbox_regression"]), "num_positives": n},
                     "grad_conf": grads["cls_logits"].grad.numpy(), "grad_loc": grads["bbox_regression"].grad.numpy()}
        verdict = multibox.compare(expected, candidate)
        assert verdict.passed, f"{name}:\n{verdict}"

    # And directly, torchvision against multibox.torch, with the SPEC's tolerances.
    for key in ("classification", "bbox_regression"):
        assert float(losses[key]) == pytest.approx(float(reference_losses[key]), rel=1e-5)  # kLossRelTol
    # kGradScaledAbsTol / N + kGradRelTol, and for grad_loc the allowance for torchvision's BoxCoder rebuilding priors
    # from corners: kPriorRoundTripError / (variance x prior side) in each target, through smoothL1' / (beta N).
    side = torch.from_numpy(priors[:, [2, 3, 2, 3]]) * torch.tensor([0.1, 0.1, 0.2, 0.2])
    for key, round_trip in (("cls_logits", 0.0), ("bbox_regression", 4 * 2.0 ** -23 / side / n)):
        got, want = ours[key].grad, theirs[key].grad
        allowed = 4 * 2.0 ** -23 / n + 1e-5 * want.abs() + round_trip
        used = float(((got - want).abs() / allowed).max())
        print(f"{key}: torchvision vs multibox.torch, worst element uses {used:.1%} of its allowance")
        assert used <= 1, f"{key}: worst {float((got - want).abs().max()):.3g}"
    assert int(criterion.last_outputs.positives.sum()) == n > 0


def test_sgd_on_a_toy_head_follows_torchvision(scene):
    """Five SGD steps of the same toy head trained by each loss: the loss curves agree to 1e-5."""
    w, priors, _ = scene
    targets = tv.targets_of(w.gt_boxes, w.gt_labels, w.gt_offsets)
    anchors = tv.prior_corners(priors)
    features = torch.randn(BATCH, priors.shape[0], 16, generator=torch.Generator().manual_seed(3))
    criterion = MultiBoxLoss(priors, w.num_classes, ARGMAX)

    def train(loss_fn):
        torch.manual_seed(5)
        cls, box = torch.nn.Linear(16, w.num_classes), torch.nn.Linear(16, 4)
        optimiser = torch.optim.SGD([*cls.parameters(), *box.parameters()], lr=0.5)
        curve = []
        for _ in range(5):
            optimiser.zero_grad()
            losses = loss_fn({"cls_logits": cls(features), "bbox_regression": box(features)}, targets)
            total = sum(losses.values())
            total.backward()
            optimiser.step()
            curve.append(float(total))
        return curve

    ours = train(criterion)
    theirs = train(lambda outputs, t: tv.compute_loss(outputs, t, anchors))
    print(f"SGD loss curves: multibox.torch {ours}, torchvision {theirs}, "
          f"largest difference {max(abs(a - b) for a, b in zip(ours, theirs)):.2e}")
    assert ours[-1] < ours[0] - 0.1, f"the toy head did not learn: {ours}"
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


def test_no_gradient_needed_runs_only_the_forward_stage(scene):
    w, priors, outputs = scene
    criterion = MultiBoxLoss(priors, w.num_classes, ARGMAX)
    with torch.no_grad():
        losses = criterion(outputs, tv.targets_of(w.gt_boxes, w.gt_labels, w.gt_offsets))
    assert criterion.last_outputs.stage == "forward" and float(losses["classification"]) > 0


def test_pixel_targets_and_anchors_map_onto_normalised_ones(scene):
    w, priors, outputs = scene
    size = (300, 400)  # height, width
    scale = torch.tensor([400.0, 300.0, 400.0, 300.0])
    pixel_targets = [{"boxes": t["boxes"] * scale, "labels": t["labels"]}
                     for t in tv.targets_of(w.gt_boxes, w.gt_labels, w.gt_offsets)]
    in_pixels = MultiBoxLoss(priors_from_anchors(tv.prior_corners(priors) * scale, size), w.num_classes, ARGMAX,
                             image_size=size)
    normalised = MultiBoxLoss(priors, w.num_classes, ARGMAX)
    a = in_pixels(outputs, pixel_targets)
    b = normalised(outputs, tv.targets_of(w.gt_boxes, w.gt_labels, w.gt_offsets))
    np.testing.assert_array_equal(in_pixels.last_outputs.positives, normalised.last_outputs.positives)
    assert float(a["classification"]) == pytest.approx(float(b["classification"]), rel=1e-5)
    assert float(a["bbox_regression"]) == pytest.approx(float(b["bbox_regression"]), rel=1e-4)


def test_tensors_needing_a_copy_are_refused(scene):
    w, priors, outputs = scene
    criterion = MultiBoxLoss(priors, w.num_classes, ARGMAX)
    targets = tv.targets_of(w.gt_boxes, w.gt_labels, w.gt_offsets)
    with pytest.raises(TypeError, match=r"cls_logits: dtype torch.float64.*\.float\(\)"):
        criterion({**outputs, "cls_logits": outputs["cls_logits"].double()}, targets)
    with pytest.raises(TypeError, match=r"bbox_regression: not contiguous.*\.contiguous\(\)"):
        criterion({**outputs, "bbox_regression": outputs["bbox_regression"].transpose(0, 1)}, targets)
    bad = [dict(t) for t in targets]
    bad[1]["labels"] = bad[1]["labels"] + 200
    with pytest.raises(ValueError, match="label"):
        criterion(outputs, bad)
