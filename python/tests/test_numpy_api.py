"""The NumPy face of multibox: registry, priors, configuration, plans, refusals and errors, the comparator."""
import threading
import time

import numpy as np
import pytest

import multibox

ARGMAX = multibox.Config(forced_match="argmax")


@pytest.fixture(scope="module")
def coco():
    return multibox.workload("coco128", batch=4)


def run(plan, w, stage="backward"):
    return plan.run(w.gt_boxes, w.gt_labels, w.gt_offsets, w.conf, w.loc, stage=stage)


def test_backends_lists_the_registry_with_reasons():
    listed = {b["name"]: b for b in multibox.backends()}
    assert list(listed)[:2] == ["naive", "simd"]
    assert listed["naive"]["available"] and listed["simd"]["available"]
    if not listed["cuda"]["available"]:
        assert listed["cuda"]["reason"]
        with pytest.raises(RuntimeError, match="cuda"):
            multibox.prepare("ssd300", 81, backend="cuda")


def test_priors_by_name_and_errors():
    p = multibox.priors("ssd300")
    assert p.shape == (8732, 4) and p.dtype == np.float32 and p.flags.c_contiguous
    assert multibox.priors("tutorial").shape == (441, 4)
    with pytest.raises(ValueError, match="ssd1000"):
        multibox.priors("ssd1000")


def test_config_has_the_command_line_names_and_defaults():
    c = multibox.Config()
    assert (c.forced_match, c.pos_threshold, c.neg_threshold, c.neg_pos_ratio, c.min_negatives) == \
        ("bipartite", 0.5, 0.5, 3, 0)
    assert c.variances == pytest.approx((0.1, 0.2)) and (c.alpha, c.beta) == (1.0, 1.0)
    c = multibox.Config(forced_match="argmax", pos_threshold=0.6, neg_threshold=0.4, variances=(0.2, 0.3),
                        neg_pos_ratio=5, min_negatives=2, alpha=2.0, beta=0.5)
    assert "argmax pos=0.6 neg=0.4 var=(0.2,0.3) ratio=5 min_neg=2 alpha=2 beta=0.5" in repr(c)
    with pytest.raises(ValueError, match="neg_threshold"):
        multibox.Config(pos_threshold=0.5, neg_threshold=0.7)
    with pytest.raises(ValueError, match="bipartite, argmax"):
        multibox.Config(forced_match="hungarian")


def test_simd_agrees_with_the_reference(coco):
    naive = run(multibox.prepare(coco.priors, coco.num_classes, ARGMAX, backend="naive"), coco)
    simd = run(multibox.prepare(coco.priors, coco.num_classes, ARGMAX, backend="simd"), coco)
    assert simd.backend == "simd" and naive.backend == "naive"
    verdict = multibox.compare(naive, simd)
    assert verdict.passed, str(verdict)
    assert {q.quantity for q in verdict.quantities} >= {"matches", "mined", "loss.total", "grad_conf", "grad_loc"}
    assert "PASSED       grad_conf" in str(verdict) and "overall: PASSED" in str(verdict)
    assert simd.loss["num_positives"] == int(simd.positives.sum()) > 0


def test_outputs_follow_the_stage(coco):
    plan = multibox.prepare(coco.priors, coco.num_classes, ARGMAX)
    matched = plan.run(coco.gt_boxes, coco.gt_labels, coco.gt_offsets, stage="match")
    assert matched.stage == "match" and matched.targets is None and matched.loss is None
    assert matched.matches.shape == (4, 8732) and matched.matches.dtype == np.int32
    assert matched.forced_prior.shape == coco.gt_labels.shape
    full = run(plan, coco)
    assert set(full.to_dict()) == set(full.quantities) and full.grad_conf.shape == coco.conf.shape
    np.testing.assert_array_equal(matched.matches, full.matches)
    with pytest.raises(ValueError, match="needs conf and loc"):
        plan.run(coco.gt_boxes, coco.gt_labels, coco.gt_offsets, stage="forward")
    with pytest.raises(ValueError, match="stage 'all'"):
        run(plan, coco, stage="all")


def test_inputs_are_refused_with_the_conversion_to_apply(coco):
    plan = multibox.prepare(coco.priors, coco.num_classes, ARGMAX)
    args = dict(gt_boxes=coco.gt_boxes, gt_labels=coco.gt_labels, gt_offsets=coco.gt_offsets, conf=coco.conf,
                loc=coco.loc)
    cases = [("conf", coco.conf.astype(np.float64), "np.ascontiguousarray\\(conf, dtype=np.float32\\)"),
             ("gt_labels", coco.gt_labels.astype(np.int64), "dtype=np.int32"),
             ("loc", np.asfortranarray(coco.loc), "not C-contiguous"),
             ("gt_boxes", coco.gt_boxes.tolist(), "numpy.ndarray of float32, got list")]
    for name, bad, message in cases:
        with pytest.raises(TypeError, match=message):
            plan.run(**{**args, name: bad})
    with pytest.raises(ValueError, match=r"conf: shape \(4, 8732, 80\), expected \(4, 8732, 81\)"):
        plan.run(**{**args, "conf": np.ascontiguousarray(coco.conf[:, :, :80])})


def test_invalid_values_raise_the_cpp_message(coco):
    plan = multibox.prepare(coco.priors, coco.num_classes, ARGMAX)
    boxes = coco.gt_boxes.copy()
    boxes[2, 2] = boxes[2, 0] - 0.01
    with pytest.raises(ValueError, match=r"image \d+, ground truth \d+: xmax .* <= xmin"):
        plan.run(boxes, coco.gt_labels, coco.gt_offsets, coco.conf, coco.loc)
    conf = coco.conf.copy()
    conf[1, 7, 3] = np.nan
    with pytest.raises(ValueError, match="image 1.*prior 7"):
        plan.run(coco.gt_boxes, coco.gt_labels, coco.gt_offsets, conf, coco.loc)
    with pytest.raises(ValueError, match="num_classes|C="):
        multibox.prepare(coco.priors, 1)


def test_a_plan_follows_batch_size_and_object_count():
    plan = multibox.prepare("ssd300", 81, ARGMAX)
    naive = multibox.prepare("ssd300", 81, ARGMAX, backend="naive")
    for batch in (2, 6, 1, 6):
        w = multibox.workload("coco128", batch=batch)
        got, want = run(plan, w), run(naive, w)
        assert got.grad_conf.shape[0] == batch
        assert multibox.compare(want, got).passed


def test_results_are_deterministic_across_threads(coco):
    one = run(multibox.prepare(coco.priors, coco.num_classes, ARGMAX, threads=1), coco)
    two = run(multibox.prepare(coco.priors, coco.num_classes, ARGMAX, threads=2), coco)
    for q in ("matches", "mined", "grad_conf", "grad_loc", "targets"):
        np.testing.assert_array_equal(one[q], two[q])
    assert one.loss == two.loss


def test_the_gil_is_released_while_a_backend_runs():
    w = multibox.workload("coco128", batch=24)
    plan = multibox.prepare(w.priors, w.num_classes, ARGMAX, backend="naive")
    run(plan, w)  # warm: page in the inputs
    started = time.perf_counter()
    worker = threading.Thread(target=run, args=(plan, w))
    worker.start()
    gaps, last = [], time.perf_counter()
    while worker.is_alive():
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    duration = time.perf_counter() - started
    # Holding the GIL, the C++ run would stall this loop for the whole run: one gap as long as the run.
    assert duration > 0.05, "the run was too short to tell"
    assert max(gaps) < 0.5 * duration, f"this thread stalled {max(gaps):.3f} s of a {duration:.3f} s run"


def test_compare_judges_a_dict_candidate_and_catches_errors(coco):
    naive = run(multibox.prepare(coco.priors, coco.num_classes, ARGMAX, backend="naive"), coco)
    candidate = {q: np.array(naive[q]) for q in ("matches", "targets", "grad_conf")}
    candidate["mined"] = naive.mined.astype(bool)
    candidate["loss"] = dict(naive.loss)
    assert multibox.compare(naive, candidate).passed
    candidate["grad_conf"] = candidate["grad_conf"] * np.float32(1 + 1e-4)  # just outside kGradRelTol
    verdict = multibox.compare(naive, candidate)
    assert not verdict.passed and verdict["grad_conf"].verdict == "FAILED"
    assert verdict["matches"].verdict == "PASSED"
    with pytest.raises(TypeError, match="dtype=np.int32"):
        multibox.compare(naive, {"matches": naive.matches.astype(np.int64)})
    with pytest.raises(ValueError, match="unknown quantity 'match'"):
        multibox.compare(naive, {"match": naive.matches})
