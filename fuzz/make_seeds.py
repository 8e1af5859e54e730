#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/ and the dictionaries of fuzz/dict/ (the only command that writes them):
    python3 fuzz/make_seeds.py [COCO_JSON]
Seeds come from the golden cases, the .npy test fixtures and the first images of COCO128 (COCO_JSON, default
../shared/datasets/coco128/instances_train2017.json); multi-file inputs are the files joined by SEPARATOR, as
fuzz_support.hpp reads them. Deterministic: a rerun reproduces the committed bytes."""
import json
import random
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
GOLDEN = ROOT / "datasets" / "golden" / "cases"
SEPARATOR = b"\n@@multibox-file@@\n"  # fuzz::kFileSeparator
CASE_FILES = ["case.json", "priors.npy", "gt_boxes.npy", "gt_labels.npy", "gt_offsets.npy", "conf.npy", "loc.npy"]
SMALL_CASES = ["no-overlap", "overflow"]  # the cases fuzz_validate.cpp loads


def output_quantities():
    """(name, stage) of each kOutputs entry, in kOutputQuantities order, read from the table itself so that the seeds
    follow any change to it."""
    header = (ROOT / "datasets" / "include" / "multibox" / "case_file.hpp").read_text()
    table = re.search(r"kOutputs\[\] = \{(.*?)\};", header, re.S)
    entries = re.findall(r'^\s*\{"(\w+)", Stage::(\w+),', table.group(1) if table else "", re.M)
    if not entries:
        sys.exit("make_seeds.py: found no kOutputs table in datasets/include/multibox/case_file.hpp")
    return entries


OUTPUTS = output_quantities()
OUTPUT_QUANTITIES = [q for q, _ in OUTPUTS]


def fresh(name):
    folder = FUZZ / "corpus" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def output_file(quantity):
    return quantity + (".json" if quantity == "loss" else ".npy")


def npy_seeds():
    out = fresh("npy")
    for path in sorted((ROOT / "datasets" / "tests" / "npy_fixtures").glob("*.npy")):
        shutil.copy(path, out / path.name)
    for name in CASE_FILES[1:]:
        shutil.copy(GOLDEN / "no-overlap" / name, out / ("no-overlap_" + name))


def coco_seeds(coco_json):
    out = fresh("coco")
    doc = json.loads(Path(coco_json).read_text())
    images = doc["images"][:3]
    ids = {im["id"] for im in images}
    annotations = [a for a in doc["annotations"] if a["image_id"] in ids]
    for a in annotations:
        a.pop("segmentation", None)  # polygons are large and the loader never reads them
    used = {a["category_id"] for a in annotations}
    small = {"images": [{k: im[k] for k in ("id", "file_name", "width", "height")} for im in images],
             "annotations": annotations,
             "categories": [c for c in doc["categories"] if c["id"] in used]}
    (out / "coco128_first3.json").write_text(json.dumps(small))
    hand_made = {"images": [{"id": 1, "width": 100, "height": 50.5}, {"id": 2, "width": 1, "height": 1}],
                 "annotations": [{"id": 10, "image_id": 1, "category_id": 7, "bbox": [0, 0, 100, 50.5]},
                                 {"id": 11, "image_id": 1, "category_id": 3, "bbox": [-0.5, 2, 10, 1e-3],
                                  "iscrowd": True},
                                 {"id": 12, "image_id": 2, "category_id": 7, "bbox": [0.25, 0.25, 0.5, 0.5],
                                  "iscrowd": 0}],
                 "categories": [{"id": 7, "name": "seven"}, {"id": 3, "name": "three"}, {"id": 900}]}
    (out / "hand_made.json").write_text(json.dumps(hand_made, indent=1))
    (out / "empty.json").write_text('{"images": [], "annotations": [], "categories": []}')


def case_seeds():
    out = fresh("case_folder")
    for case in SMALL_CASES:
        (out / case).write_bytes(SEPARATOR.join((GOLDEN / case / f).read_bytes() for f in CASE_FILES))


def validate_seeds():
    out = fresh("validate")
    for case in SMALL_CASES:
        files = [(GOLDEN / case / "torchvision" / output_file(q)).read_bytes() for q in OUTPUT_QUANTITIES]
        (out / (case + "_torchvision")).write_bytes(SEPARATOR.join([case.encode()] + files))
        match_only = [f if stage == "match" else b"" for (_, stage), f in zip(OUTPUTS, files)]
        (out / (case + "_match_stage")).write_bytes(SEPARATOR.join([case.encode()] + match_only))


def backends_seeds():
    out = fresh("backends")
    rng = random.Random(11)
    (out / "short").write_bytes(b"\x00")
    (out / "counting").write_bytes(bytes(range(256)) * 4)
    for i in range(6):
        (out / f"random_{i}").write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(64, 1500))))


def dictionaries():
    folder = FUZZ / "dict"
    folder.mkdir(exist_ok=True)
    npy = ["\\x93NUMPY", "\\x01\\x00", "\\x02\\x00", "\\x03\\x00", "'descr'", "'fortran_order'", "'shape'", "'<f4'",
           "'>f4'", "'=f4'", "'<i4'", "'>i4'", "'|u1'", "'|b1'", "'<f8'", "'<i8'", "True", "False", "(", ")", ",", "L",
           "{", "}", ": ", "\\x0a"]
    coco = ["\"images\"", "\"annotations\"", "\"categories\"", "\"id\"", "\"image_id\"", "\"category_id\"", "\"bbox\"",
            "\"iscrowd\"", "\"width\"", "\"height\"", "\"file_name\"", "\"name\"", "true", "false", "null", "1e308",
            "-0.0", "4.9e-324", "9223372036854775807", "18446744073709551615", "[", "]", "{", "}"]
    sep = "\\x0a@@multibox-file@@\\x0a"
    case = ["\"format\"", "\"multibox-case\"", "\"version\"", "\"name\"", "\"workload\"", "\"seed\"", "\"shape\"",
            "\"batch\"", "\"num_priors\"", "\"num_classes\"", "\"config\"", "\"forced_match\"", "\"bipartite\"",
            "\"argmax\"", "\"pos_threshold\"", "\"neg_threshold\"", "\"variance_xy\"", "\"variance_wh\"",
            "\"neg_pos_ratio\"", "\"min_negatives_per_image\"", "\"alpha\"", "\"smooth_l1_beta\"", sep]
    validate = ["\"total\"", "\"conf\"", "\"loc\"", "\"conf_sum\"", "\"loc_sum\"", "\"num_positives\"", sep,
                "no-overlap", "overflow"]

    def write(name, tokens):
        lines = [f"# {name} tokens for libFuzzer's -dict (written by fuzz/make_seeds.py)"]
        lines += ['t{}="{}"'.format(i, t.replace('"', '\\"') if not t.startswith("\\x") else t)
                  for i, t in enumerate(tokens)]
        (folder / f"{name}.dict").write_text("\n".join(lines) + "\n")

    write("npy", npy)
    write("coco", coco)
    write("case_folder", case + npy)
    write("validate", validate + npy)


def main():
    coco_json = sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "datasets" / "coco128" / \
        "instances_train2017.json"
    npy_seeds()
    coco_seeds(coco_json)
    case_seeds()
    validate_seeds()
    backends_seeds()
    dictionaries()


if __name__ == "__main__":
    main()
