#!/usr/bin/env python3
"""Checks the exports of the end-to-end "main path" test with pycocotools, against masks computed here,
independently of Lamina's Rust geometry code.

Usage:
  check_export.py --coco X.coco.json --bundle X.bundle.json --coco-polygons X.coco-polygons.json \
      --image tile_a.jpg --brush "x0,y0;x1,y1" --radius 4 --polygon "x,y;x,y;..." [--sha256 name=hex ...]

Expected masks (image pixels, pixel (x, y) covers [x, x+1) x [y, y+1), so its centre is (x+.5, y+.5)):
- polygon: pixel centres inside the polygon, even-odd rule;
- brush:   pixel centres within `radius` of the stroke's polyline.
The test drives the mouse at the CSS positions of these image points; the browser reports integer CSS
pixels, so each point the app receives is off by up to ~0.5 CSS px (~0.2 image px at the test's ~2.9x
zoom) in each axis. That shifts the drawn outline by a fraction of a pixel, which flips a thin ring of
boundary pixels: IoU >= 0.9 allows for that and still fails on any real misplacement (a 1-pixel offset
of a radius-4 stroke already costs ~0.2 IoU).
Prints a JSON summary; exits 1 with the reasons on any failure.
"""

import argparse
import json
import re
import sys

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

H = W = 256


def points(text):
    return [tuple(float(v) for v in p.split(",")) for p in text.split(";")]


def polygon_mask(pts):
    yc, xc = np.mgrid[0:H, 0:W] + 0.5
    inside = np.zeros((H, W), bool)
    n = len(pts)
    for i in range(n):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % n]
        crosses = (y0 <= yc) != (y1 <= yc)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (yc - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (xc < x_at)
    return inside


def brush_mask(pts, radius):
    yc, xc = np.mgrid[0:H, 0:W] + 0.5
    out = np.zeros((H, W), bool)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xc - x0) * dx + (yc - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
        out |= (xc - (x0 + t * dx)) ** 2 + (yc - (y0 + t * dy)) ** 2 <= radius * radius
    return out


def iou(a, b):
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--coco", required=True)
    ap.add_argument("--coco-polygons", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--brush", required=True)
    ap.add_argument("--radius", type=float, default=4.0)
    ap.add_argument("--polygon", required=True)
    ap.add_argument("--sha256", action="append", default=[])
    args = ap.parse_args()
    problems = []
    expected = {
        "brush": brush_mask(points(args.brush), args.radius),
        "polygon": polygon_mask(points(args.polygon)),
    }
    summary = {"expected_area": {k: int(v.sum()) for k, v in expected.items()}}

    # COCO (RLE): pycocotools loads it and decodes each annotation to the drawn masks.
    coco = COCO(args.coco)
    imgs = [i for i in coco.dataset["images"] if i["file_name"] == args.image]
    if len(imgs) != 1:
        problems.append(f"COCO: expected one image named {args.image}, found {len(imgs)}")
        print(json.dumps({"problems": problems}))
        return 1
    img = imgs[0]
    if (img["width"], img["height"]) != (W, H):
        problems.append(f"COCO: image size {img['width']}x{img['height']}")
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
    summary["coco_annotations"] = len(anns)
    if len(anns) != 2:
        problems.append(f"COCO: {len(anns)} annotations on {args.image}, expected 2")
    got = []
    for a in anns:
        if not isinstance(a["segmentation"], dict):
            problems.append(f"COCO: annotation {a['id']} is not RLE")
            continue
        m = coco.annToMask(a).astype(bool)
        rle = coco.annToRLE(a)
        if int(mask_utils.area(rle)) != a["area"] or int(m.sum()) != a["area"]:
            problems.append(f"COCO: annotation {a['id']} area {a['area']} != mask area {int(m.sum())}")
        if [round(v) for v in mask_utils.toBbox(rle)] != [round(v) for v in a["bbox"]]:
            problems.append(f"COCO: annotation {a['id']} bbox {a['bbox']} != {list(mask_utils.toBbox(rle))}")
        got.append(m)
    summary["iou"] = {}
    for name, exp in expected.items():
        best = max((iou(exp, m) for m in got), default=0.0)
        summary["iou"][name] = round(best, 4)
        if best < 0.9:
            problems.append(f"COCO: best IoU with the expected {name} mask is {best:.3f} < 0.9")

    # COCO (polygons): pycocotools loads it; the polygons rasterise close to the RLE masks.
    cp = COCO(args.coco_polygons)
    pimg = [i for i in cp.dataset["images"] if i["file_name"] == args.image]
    panns = cp.loadAnns(cp.getAnnIds(imgIds=[pimg[0]["id"]])) if pimg else []
    summary["coco_polygon_annotations"] = len(panns)
    if len(panns) != 2:
        problems.append(f"COCO polygons: {len(panns)} annotations on {args.image}, expected 2")
    summary["polygon_iou"] = []
    for a in panns:
        if not isinstance(a["segmentation"], list):
            problems.append(f"COCO polygons: annotation {a['id']} is not a polygon list")
            continue
        m = cp.annToMask(a).astype(bool)
        best = max((iou(m, g) for g in got), default=0.0)
        summary["polygon_iou"].append(round(best, 4))
        if best < 0.8:
            problems.append(f"COCO polygons: annotation {a['id']} IoU {best:.3f} with its RLE mask < 0.8")

    # The bundle: both instances with their tools, assets with sha256 and size.
    bundle = json.load(open(args.bundle))
    if bundle.get("format") != "lamina.bundle":
        problems.append(f"bundle: format {bundle.get('format')!r}")
    assets = {a["id"]: a for a in bundle["assets"]}
    for a in bundle["assets"]:
        if not re.fullmatch(r"[0-9a-f]{64}", a.get("sha256", "")):
            problems.append(f"bundle: asset {a['name']} sha256 {a.get('sha256')!r}")
        if (a.get("width"), a.get("height")) != (W, H):
            problems.append(f"bundle: asset {a['name']} size {a.get('width')}x{a.get('height')}")
    for spec in args.sha256:
        name, digest = spec.split("=")
        found = [a for a in bundle["assets"] if a["name"] == name]
        if not found or found[0]["sha256"] != digest:
            problems.append(f"bundle: asset {name} sha256 is not the file's {digest[:12]}")
    on_image = [i for i in bundle["instances"] if assets.get(i["asset_id"], {}).get("name") == args.image]
    tools = sorted(i["provenance"]["tool"] for i in on_image)
    summary["bundle_tools"] = tools
    if tools != ["brush", "polygon"]:
        problems.append(f"bundle: tools on {args.image} are {tools}, expected brush and polygon")
    for inst in on_image:
        m = mask_utils.decode({"size": inst["mask"]["size"], "counts": inst["mask"]["counts"].encode()}).astype(bool)
        exp = expected[inst["provenance"]["tool"]]
        if iou(m, exp) < 0.9:
            problems.append(f"bundle: {inst['provenance']['tool']} mask IoU {iou(m, exp):.3f} < 0.9")

    summary["problems"] = problems
    print(json.dumps(summary))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
