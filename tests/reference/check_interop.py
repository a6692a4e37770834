#!/usr/bin/env python3
"""Independent readers of Lamina's QuPath GeoJSON and Labelbox NDJSON exports.

Usage:
    python3 tests/reference/check_interop.py --bundle target/reference-bundle.json --lamina target/debug/lamina

The masks of the bundle are decoded with pycocotools (the reference for COCO RLE); the exports are read
with shapely (geometry) and Pillow (PNG), none of which share code with Lamina.
 1. `lamina export geojson`: every feature is a valid shapely (Multi)Polygon; its area equals the mask's
    pixel count, and the pixels whose centre shapely puts inside it are exactly the mask's (pixel-edge
    rings, holes kept); each image's file holds exactly its labels, with their class names.
 2. `lamina export ndjson`: every line's colour in its composite PNG marks exactly the label's pixels.
 3. `lamina export ndjson --polygons` (tolerance 0.5): valid polygons, mean IoU >= 0.9 with the masks
    (holes filled: Labelbox polygons are single rings).
Exits non-zero on any mismatch.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from shapely import contains_xy
from shapely.geometry import shape
from shapely.ops import unary_union
from shapely.validation import explain_validity

MIN_POLYGON_MEAN_IOU = 0.9


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")


def decode(instance):
    return mask_utils.decode({"size": instance["mask"]["size"], "counts": instance["mask"]["counts"].encode()})


def raster(geometry, height, width):
    """Pixels whose centre shapely finds inside the geometry (centres are never on integer edges); only
    the geometry's bounding box is tested."""
    out = np.zeros((height, width), bool)
    if geometry.is_empty:
        return out
    x0, y0, x1, y1 = (int(v) for v in np.floor(geometry.bounds))
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1 + 1, width), min(y1 + 1, height)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    out[y0:y1, x0:x1] = contains_xy(geometry, xs.ravel() + 0.5, ys.ravel() + 0.5).reshape(y1 - y0, x1 - x0)
    return out


def filled(whole):
    """The mask with its holes filled (background not reachable from the border of its box)."""
    from collections import deque
    ys, xs = np.nonzero(whole)
    out = np.zeros(whole.shape, bool)
    if len(ys) == 0:
        return out
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    mask = whole[y0:y1, x0:x1]
    h, w = mask.shape
    outside = np.zeros((h + 2, w + 2), bool)
    padded = np.zeros((h + 2, w + 2), bool)
    padded[1:-1, 1:-1] = mask > 0
    queue = deque([(0, 0)])
    outside[0, 0] = True
    while queue:
        y, x = queue.popleft()
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            ny, nx = y + dy, x + dx
            if 0 <= ny < h + 2 and 0 <= nx < w + 2 and not outside[ny, nx] and not padded[ny, nx]:
                outside[ny, nx] = True
                queue.append((ny, nx))
    out[y0:y1, x0:x1] = ~outside[1:-1, 1:-1]
    return out


def iou(a, b):
    union = np.logical_or(a, b).sum()
    return np.logical_and(a, b).sum() / union if union else 1.0


def check_geojson(bundle, lamina, bundle_path, work):
    out_dir = os.path.join(work, "qupath")
    run([lamina, "export", "geojson", bundle_path, "--out", out_dir])
    classes = {c["id"]: c["name"] for c in bundle["ontology"]["classes"]}
    checked = 0
    for asset in bundle["assets"]:
        labels = [i for i in bundle["instances"] if i["asset_id"] == asset["id"]]
        if not labels:
            continue
        stem = asset["name"].rsplit(".", 1)[0]
        with open(os.path.join(out_dir, stem + ".geojson")) as f:
            collection = json.load(f)
        features = collection["features"]
        assert collection["type"] == "FeatureCollection"
        assert len(features) == len(labels), f"{stem}: {len(features)} features for {len(labels)} labels"
        by_id = {f["id"]: f for f in features}
        for label in labels:
            feature = by_id[label["id"]]
            geometry = shape(feature["geometry"])
            assert geometry.is_valid, f"{label['id']}: {explain_validity(geometry)}"
            assert feature["properties"]["classification"]["name"] == classes[label["class_id"]]
            mask = decode(label) > 0
            assert geometry.area == mask.sum() == label["area"], f"{label['id']}: area {geometry.area} vs {mask.sum()}"
            assert np.array_equal(raster(geometry, *mask.shape), mask), f"{label['id']}: pixels differ"
            checked += 1
    return checked


def check_labelbox(bundle, lamina, bundle_path, work):
    out = os.path.join(work, "labelbox", "labels.ndjson")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    run([lamina, "export", "ndjson", bundle_path, "--out", out])
    names = {a["id"]: a["name"] for a in bundle["assets"]}
    labels = {}
    for i in bundle["instances"]:
        labels.setdefault(names[i["asset_id"]], []).append(i)
    lines = [json.loads(line) for line in open(out) if line.strip()]
    assert len(lines) == len(bundle["instances"]), f"{len(lines)} lines for {len(bundle['instances'])} labels"
    pictures = {}
    remaining = {name: [decode(i) for i in group] for name, group in labels.items()}
    for line in lines:
        uri = line["mask"]["instanceURI"]
        if uri not in pictures:
            pictures[uri] = np.asarray(Image.open(os.path.join(os.path.dirname(out), uri)).convert("RGB"))
        colour = np.array(line["mask"]["colorRGB"], np.uint8)
        painted = np.all(pictures[uri] == colour, axis=2)
        image = line["dataRow"]["globalKey"]
        match = [k for k, m in enumerate(remaining[image]) if np.array_equal(m > 0, painted)]
        assert match, f"{image}: the pixels of colour {colour.tolist()} are no label's mask"
        remaining[image].pop(match[0])
    assert all(not v for v in remaining.values()), "labels without a line"

    polygons = os.path.join(work, "labelbox", "polygons.ndjson")
    run([lamina, "export", "ndjson", bundle_path, "--out", polygons, "--polygons"])
    ious = []
    parts = {}
    for line in (json.loads(l) for l in open(polygons) if l.strip()):
        ring = shape({"type": "Polygon", "coordinates": [[(p["x"], p["y"]) for p in line["polygon"]]]})
        assert ring.is_valid, explain_validity(ring)
        parts.setdefault((line["dataRow"]["globalKey"], line["name"]), []).append(ring)
    for name, group in labels.items():
        whole = np.any([filled(decode(i)) for i in group], axis=0)
        outline = unary_union([r for (image, _), rings in parts.items() if image == name for r in rings])
        ious.append(iou(whole, raster(outline, *whole.shape)))
    mean = float(np.mean(ious))
    assert mean >= MIN_POLYGON_MEAN_IOU, f"polygon mean IoU {mean:.4f}"
    return len(lines), mean


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--lamina", required=True)
    args = parser.parse_args()
    with open(args.bundle) as f:
        bundle = json.load(f)
    with tempfile.TemporaryDirectory() as work:
        features = check_geojson(bundle, args.lamina, args.bundle, work)
        lines, polygon_iou = check_labelbox(bundle, args.lamina, args.bundle, work)
    print(
        f"interop OK: {features} GeoJSON features exact (shapely area and pixels against pycocotools masks); "
        f"{lines} Labelbox composite masks exact; Labelbox polygons per image mean IoU {polygon_iou:.4f}"
    )


if __name__ == "__main__":
    main()
