#!/usr/bin/env python3
"""Writes a label bundle with one tile and N small instances on it (a crowded image), for
bench/browser_suggest.mjs: suggestion latency must not grow with the labels already on an image.

Usage: crowd_bundle.py TILE.png OUT_DIR N     (writes OUT_DIR/bundle.json and OUT_DIR/tile.png)
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

tile, out, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
shutil.copy(tile, out / "tile.png")
w, h = Image.open(tile).size
sha = hashlib.sha256((out / "tile.png").read_bytes()).hexdigest()
step = max(6, int((w * h / max(n, 1)) ** 0.5))  # a grid of discs, radius 2, `step` px apart
yy, xx = np.mgrid[0:h, 0:w]
instances = []
for k in range(n):
    cx, cy = 4 + (k * step) % (w - 8), 4 + ((k * step) // (w - 8)) * step % (h - 8)
    m = ((xx - cx) ** 2 + (yy - cy) ** 2 <= 4).astype(np.uint8)
    rle = mask_utils.encode(np.asfortranarray(m))
    x, y, bw, bh = (int(v) for v in mask_utils.toBbox(rle))
    instances.append({
        "id": f"crowd-{k}", "asset_id": "crowd-tile", "class_id": "neoplastic",
        "mask": {"size": [h, w], "counts": rle["counts"].decode()},
        "bbox": [x, y, bw, bh], "area": int(mask_utils.area(rle)),
        "provenance": {"tool": "import", "created": "2026-11-27T00:00:00.000Z", "updated": "2026-11-27T00:00:00.000Z"},
        "status": "draft",
    })
bundle = {
    "format": "lamina.bundle", "version": 1,
    "project": {"id": "crowd", "name": "crowd"},
    "exported": "2026-11-27T00:00:00.000Z",
    "ontology": {"classes": [{"id": "neoplastic", "name": "Neoplastic", "color": "#ff0000"}]},
    "assets": [{"id": "crowd-tile", "name": "tile.png", "sha256": sha, "width": w, "height": h,
                "metadata": {}, "uri": "tile.png", "status": "in_progress"}],
    "instances": instances,
}
(out / "bundle.json").write_text(json.dumps(bundle))
print(f"{out / 'bundle.json'}: {len(instances)} instances on {w}x{h}")
