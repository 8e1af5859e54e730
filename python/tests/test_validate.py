"""multibox.validate: another implementation judged in-process on named workloads, the twin of export + validate."""
import pathlib
import sys

import numpy as np
import pytest

import multibox

torch = pytest.importorskip("torch")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "datasets" / "examples"))
from validate_pytorch_inprocess import pytorch_loss  # noqa: E402

ARGMAX = multibox.Config(forced_match="argmax")


def test_the_pytorch_example_passes_on_named_workloads():
    results = multibox.validate(pytorch_loss, ["adversarial", "coco128"], config=ARGMAX, batch=3)
    assert [v.name for v in results] == ["adversarial", "coco128"]
    for v in results:
        assert v.passed, str(v)
        assert v.stage == "backward" and len(v.quantities) == 15
        assert str(v).startswith(f"against '{v.name}', up to stage 'backward':")


def test_an_error_the_size_of_the_tolerances_fails_naming_the_quantity():
    def off_by_one_normaliser(w, config):
        out = pytorch_loss(w, config)
        n = out["loss"]["num_positives"]
        out["grad_conf"] = (out["grad_conf"] * (n / (n + 1))).astype(np.float32)
        return out

    v = multibox.validate(off_by_one_normaliser, "coco128", config=ARGMAX, batch=3)
    assert not v.passed and v.overall == "FAILED"
    assert [q.quantity for q in v.quantities if q.verdict == "FAILED"] == ["grad_conf"]


def test_a_subset_of_quantities_is_judged_and_the_rest_reported_absent():
    v = multibox.validate(lambda w, c: {"matches": pytorch_loss(w, c)["matches"]}, "tutorial", config=ARGMAX,
                          stage="match")
    assert v.passed and [q.quantity for q in v.quantities] == ["matches"]
    assert "not provided forced_prior" in str(v)


def test_the_workload_configuration_is_the_default():
    seen = []
    multibox.validate(lambda w, c: seen.append(repr(c)) or {"positives": np.zeros(2, np.int32)}, "tutorial",
                      batch=2, stage="match")
    assert seen == [repr(multibox.workload("tutorial").config)]
