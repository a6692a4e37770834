#!/usr/bin/env python3
"""Predictions for the model-runs end-to-end test, made from the run zip the app exported.

Usage: run_predictions.py RUN_ZIP OUT_DIR

Writes into OUT_DIR: bundle.json (the run's labels, from the zip), results-1.json and results-2.json (COCO
results of two "model iterations": the truth perturbed with two seeds, the second worse: nuclei dropped,
masks shifted or eroded, false positives, random scores), bad-image.json (one result for image_id 999),
and escape.zip (a YOLO-seg zip with an entry named ../../escape.txt). Prints the paths as JSON.
"""

import json
import os
import sys
import zipfile

import numpy as np
from pycocotools import mask as mask_utils


def perturbed_results(coco, seed, drop, shift):
    rng = np.random.default_rng(seed)
    results = []
    for ann in coco["annotations"]:
        if rng.random() < drop:
            continue
        m = mask_utils.decode(ann["segmentation"]).astype(bool)
        if rng.random() < shift:
            m = np.roll(m, int(rng.integers(1, 4)), axis=int(rng.integers(0, 2)))
        if not m.any():
            continue
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        results.append({
            "image_id": ann["image_id"],
            "category_id": ann["category_id"],
            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
            "score": round(float(rng.uniform(0.05, 1.0)), 3),
        })
    for image in coco["images"]:
        h, w = image["height"], image["width"]
        yy, xx = np.mgrid[0:h, 0:w]
        cx, cy = rng.integers(10, w - 10), rng.integers(10, h - 10)
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= 36
        rle = mask_utils.encode(np.asfortranarray(disc.astype(np.uint8)))
        results.append({
            "image_id": image["id"],
            "category_id": coco["annotations"][0]["category_id"],
            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
            "score": round(float(rng.uniform(0.05, 0.5)), 3),
        })
    return results


def main():
    zip_path, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with zipfile.ZipFile(zip_path) as z:
        bundle = json.loads(z.read("bundle.json"))
        parts = [json.loads(z.read(f"coco/{s}.json")) for s in ("train", "val", "test")]
    coco = {"images": [], "annotations": []}
    for p in parts:
        coco["images"] += p["images"]
        coco["annotations"] += p["annotations"]
    coco["images"].sort(key=lambda im: im["id"])
    coco["annotations"].sort(key=lambda a: a["id"])
    paths = {"bundle": os.path.join(out, "bundle.json")}
    with open(paths["bundle"], "w") as f:
        json.dump(bundle, f)
    for name, seed, drop, shift in [("results-1", 1, 0.1, 0.2), ("results-2", 2, 0.3, 0.5)]:
        paths[name] = os.path.join(out, f"{name}.json")
        with open(paths[name], "w") as f:
            json.dump(perturbed_results(coco, seed, drop, shift), f)
    bad = perturbed_results(coco, 3, 0.9, 0)[:1]
    bad[0]["image_id"] = 999
    paths["bad"] = os.path.join(out, "bad-image.json")
    with open(paths["bad"], "w") as f:
        json.dump(bad, f)
    paths["escape"] = os.path.join(out, "escape.zip")
    with zipfile.ZipFile(paths["escape"], "w") as z:
        z.writestr("../../escape.txt", "0 0.1 0.1 0.2 0.1 0.2 0.2 0.9\n")
    print(json.dumps(paths))


if __name__ == "__main__":
    main()
