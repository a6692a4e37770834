#!/usr/bin/env python3
"""Synthetic data for the metrics benchmark: N images x K nuclei (256x256, ellipses), their labels as a
Lamina bundle and COCO, and perturbed predictions as COCO results and as the app's stored predictions.

Usage: python3 bench/metrics_data.py [--images 1000] [--per-image 30] [--out target/bench-metrics]
"""
import argparse
import hashlib
import json
import os

import numpy as np
from pycocotools import mask as mask_utils

SIZE = 256


def ellipse(rng):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    cx, cy = rng.uniform(8, SIZE - 8, 2)
    a, b = rng.uniform(3, 9, 2)
    t = rng.uniform(0, np.pi)
    x, y = xx - cx, yy - cy
    u, v = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1


def rle(m):
    r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--per-image", type=int, default=30)
    ap.add_argument("--out", default="target/bench-metrics")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(0)
    classes = [{"id": f"c{i}", "name": n, "color": c} for i, (n, c) in enumerate(
        [("Neoplastic", "#e6194b"), ("Inflammatory", "#3cb44b"), ("Connective", "#ffe119")])]
    bundle = {"format": "lamina.bundle", "version": 1, "project": {"id": "bench", "name": "bench"},
              "ontology": {"classes": classes}, "assets": [], "instances": []}
    coco = {"info": {"description": "bench", "version": "1"}, "images": [], "annotations": [],
            "categories": [{"id": i + 1, "name": c["name"], "supercategory": "nucleus"} for i, c in enumerate(classes)]}
    results, stored = [], []
    for i in range(args.images):
        asset_id = f"img{i:05d}"
        bundle["assets"].append({"id": asset_id, "name": f"{asset_id}.png", "sha256": hashlib.sha256(asset_id.encode()).hexdigest(),
                                 "width": SIZE, "height": SIZE, "metadata": {}, "status": "submitted"})
        coco["images"].append({"id": i + 1, "file_name": f"{asset_id}.png", "width": SIZE, "height": SIZE})
        taken = np.zeros((SIZE, SIZE), bool)
        for k in range(args.per_image):
            m = ellipse(rng) & ~taken
            if m.sum() < 10:
                continue
            taken |= m
            c = int(rng.integers(0, 3))
            r = rle(m)
            bbox = [int(v) for v in mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m.astype(np.uint8))))]
            bundle["instances"].append({"id": f"{asset_id}/{k}", "asset_id": asset_id, "class_id": classes[c]["id"], "mask": r,
                                        "bbox": bbox, "area": int(m.sum()),
                                        "provenance": {"tool": "import", "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z"}})
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": i + 1, "category_id": c + 1,
                                        "segmentation": r, "area": float(m.sum()), "bbox": bbox, "iscrowd": 0})
            if rng.random() < 0.1:
                continue
            p = np.roll(m, int(rng.integers(-2, 3)), axis=int(rng.integers(0, 2)))
            pc = c if rng.random() < 0.9 else int(rng.integers(0, 3))
            score = round(float(rng.uniform(0.05, 1)), 3)
            pr = rle(p)
            results.append({"image_id": i + 1, "category_id": pc + 1, "segmentation": pr, "score": score})
            stored.append({"asset_id": asset_id, "class_id": classes[pc]["id"], "score": score, "mask": pr})
    for name, value in [("bundle.json", bundle), ("coco.json", coco), ("results.json", results), ("predictions.json", stored)]:
        with open(os.path.join(args.out, name), "w") as f:
            json.dump(value, f)
    print(json.dumps({"images": args.images, "truth": len(bundle["instances"]), "predictions": len(results), "out": args.out}))


if __name__ == "__main__":
    main()
