#!/usr/bin/env python3
"""Writes label bundles of crowded images (N small instances each), for the browser benchmarks.

Usage:
  crowd_bundle.py TILE.png OUT_DIR N
      one tile with N instances (OUT_DIR/bundle.json, OUT_DIR/tile.png), for bench/browser_suggest.mjs:
      suggestion latency must not grow with the labels already on an image;
  crowd_bundle.py --onto DEMO_BUNDLE.json OUT.json N
      the demo bundle with N more instances on every image (served in its place, so its image URLs still
      resolve), for bench/browser_review.mjs: approve → next image with N labels on it.
Masks are encoded by pycocotools, independently of Lamina's own RLE code.
"""
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils


def discs(w, h, n, asset_id):
    """N discs of radius 2 on a grid over a w x h image, as bundle instances of `asset_id`."""
    step = max(6, int((w * h / max(n, 1)) ** 0.5))
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for k in range(n):
        cx, cy = 4 + (k * step) % (w - 8), 4 + ((k * step) // (w - 8)) * step % (h - 8)
        m = ((xx - cx) ** 2 + (yy - cy) ** 2 <= 4).astype(np.uint8)
        rle = mask_utils.encode(np.asfortranarray(m))
        x, y, bw, bh = (int(v) for v in mask_utils.toBbox(rle))
        out.append({
            "id": f"crowd-{asset_id}-{k}", "asset_id": asset_id, "class_id": "neoplastic",
            "mask": {"size": [h, w], "counts": rle["counts"].decode()},
            "bbox": [x, y, bw, bh], "area": int(mask_utils.area(rle)),
            "provenance": {"tool": "import", "created": "2026-11-27T00:00:00.000Z", "updated": "2026-11-27T00:00:00.000Z"},
            "status": "draft",
        })
    return out


def bundle_of(assets, instances):
    return {
        "format": "lamina.bundle", "version": 1,
        "project": {"id": "crowd", "name": "crowd"},
        "exported": "2026-11-27T00:00:00.000Z",
        "ontology": {"classes": [{"id": "neoplastic", "name": "Neoplastic", "color": "#ff0000"}]},
        "assets": assets, "instances": instances,
    }


def one_tile(tile, out, n):
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(tile, out / "tile.png")
    w, h = Image.open(tile).size
    sha = hashlib.sha256((out / "tile.png").read_bytes()).hexdigest()
    asset = {"id": "crowd-tile", "name": "tile.png", "sha256": sha, "width": w, "height": h,
             "metadata": {}, "uri": "tile.png", "status": "in_progress"}
    instances = discs(w, h, n, "crowd-tile")
    (out / "bundle.json").write_text(json.dumps(bundle_of([asset], instances)))
    print(f"{out / 'bundle.json'}: {len(instances)} instances on {w}x{h}")


def onto(demo, out, n):
    """The demo bundle (its images, by their URLs next to it, and its labels) with N more on each image."""
    bundle = json.loads(demo.read_text())
    for a in bundle["assets"]:
        bundle["instances"] += discs(a["width"], a["height"], n, a["id"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(bundle))
    print(f"{out}: {n} more instances on each of {len(bundle['assets'])} images")


if __name__ == "__main__":
    if sys.argv[1] == "--onto":
        onto(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
    else:
        one_tile(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
