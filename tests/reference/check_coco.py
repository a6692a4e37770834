#!/usr/bin/env python3
"""Independent check of Lamina's COCO RLE and COCO export against pycocotools (the reference reader).

Usage:
    python3 tests/reference/check_coco.py --data ../shared/data/nuinsseg-dev --lamina target/debug/lamina

Steps, over every instance of every tile in the set:
 1. `lamina import-masks` on the whole set.
 2. Bundle RLE vs pycocotools: `mask.encode` of the source mask's id gives the identical counts string;
    `mask.decode` of the bundle's RLE equals the source mask; area and toBbox equal the bundle's.
 3. `lamina export coco` (RLE): loaded with pycocotools.coco.COCO, annToMask equals the source masks.
 4. `lamina export coco --polygons` (tolerance 0.5): annToMask IoU against the source masks
    (mean >= 0.9, each >= 0.5).
 5. Polygon raster check, `--polygons --tolerance 0`: Lamina's exact pixel-edge rings, rasterized by
    pycocotools, equal every source mask exactly (with holes filled, as COCO polygons have none).
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
from pycocotools.coco import COCO

MIN_MEAN_IOU = 0.9
MIN_IOU = 0.5
# Polygon vertices are exported on pixel corners with no half-pixel shift: pycocotools' rleFrPoly fills
# column x iff the polygon covers x + 0.5 (probe: a right edge at 1.45 keeps one column, at 1.5 two), the
# same convention as Lamina. A -0.5 shift (the "pixel centres at integers" reading of COCO) measured
# worse here: mean IoU 0.9913 vs 0.9999 at tolerance 0.5. Unsimplified rings (tolerance 0) must therefore
# decode exactly, except that COCO polygons cannot hold holes: they are compared with the source mask
# with its holes filled.

def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{proc.stderr}")
    return proc.stdout


def load_label_mask(path):
    im = Image.open(path)
    return np.array(im).astype(np.int32)


def check_bundle(bundle, data_dir, labels_by_asset, failures):
    """Step 2: every instance's RLE against pycocotools encode/decode/area/toBbox."""
    checked = 0
    by_asset = {}
    for inst in bundle["instances"]:
        by_asset.setdefault(inst["asset_id"], []).append(inst)
    for asset_id, labels in labels_by_asset.items():
        insts = {int(i["id"].rsplit("/", 1)[1]): i for i in by_asset.get(asset_id, [])}
        ids = sorted(int(v) for v in np.unique(labels) if v != 0)
        if sorted(insts) != ids:
            failures.append(f"{asset_id}: bundle has ids {sorted(insts)}, mask has {ids}")
            continue
        for n in ids:
            inst = insts[n]
            m = (labels == n).astype(np.uint8)
            ref = mask_utils.encode(np.asfortranarray(m))
            ours = {"size": inst["mask"]["size"], "counts": inst["mask"]["counts"].encode("ascii")}
            where = f"{asset_id}/{n}"
            if ref["counts"] != ours["counts"] or list(ref["size"]) != ours["size"]:
                failures.append(f"{where}: counts differ: pycocotools {ref['counts'][:40]!r}..., lamina {ours['counts'][:40]!r}...")
            if not np.array_equal(mask_utils.decode(ours), m):
                failures.append(f"{where}: pycocotools decode of the bundle RLE differs from the mask")
            if int(mask_utils.area(ref)) != inst["area"]:
                failures.append(f"{where}: area {inst['area']} vs pycocotools {int(mask_utils.area(ref))}")
            ref_bbox = [int(v) for v in mask_utils.toBbox(ref)]
            if ref_bbox != inst["bbox"]:
                failures.append(f"{where}: bbox {inst['bbox']} vs pycocotools {ref_bbox}")
            checked += 1
    return checked


def source_masks(coco, labels_by_name):
    """(annotation, source mask) pairs; annotations are in bundle order: instance ids ascending per tile."""
    for img in coco.dataset["images"]:
        labels = labels_by_name[img["file_name"]]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
        ids = sorted(int(v) for v in np.unique(labels) if v != 0)
        if len(anns) != len(ids):
            yield img["file_name"], None, None
            continue
        for ann, n in zip(anns, ids):
            yield img["file_name"], ann, (labels == n).astype(np.uint8)


def load_coco(path):
    with open(os.devnull, "w") as devnull:  # COCO() prints progress; keep the summary readable
        old, sys.stdout = sys.stdout, devnull
        try:
            return COCO(path)
        finally:
            sys.stdout = old


def check_rle_export(path, labels_by_name, failures):
    coco = load_coco(path)
    n = 0
    for name, ann, src in source_masks(coco, labels_by_name):
        if ann is None:
            failures.append(f"RLE export: {name}: annotation count differs from the mask's ids")
            continue
        if not np.array_equal(coco.annToMask(ann), src):
            failures.append(f"RLE export: {name} annotation {ann['id']}: annToMask differs from the source mask")
        if ann["area"] != int(src.sum()) or ann["iscrowd"] != 0:
            failures.append(f"RLE export: {name} annotation {ann['id']}: area/iscrowd wrong")
        n += 1
    return n


def fill_holes(m):
    """Background not 8-connected to the outside becomes foreground (Lamina's foreground is 4-connected,
    its background 8-connected, so these are exactly the holes its rings describe)."""
    h, w = m.shape
    outside = np.zeros((h + 2, w + 2), bool)
    padded = np.zeros((h + 2, w + 2), bool)
    padded[1:-1, 1:-1] = m.astype(bool)
    stack = [(0, 0)]
    outside[0, 0] = True
    while stack:
        y, x = stack.pop()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ny, nx = y + dy, x + dx
                if 0 <= ny < h + 2 and 0 <= nx < w + 2 and not outside[ny, nx] and not padded[ny, nx]:
                    outside[ny, nx] = True
                    stack.append((ny, nx))
    return (~outside[1:-1, 1:-1]).astype(np.uint8)


def crop_fill_holes(m):
    ys, xs = np.nonzero(m)
    out = np.zeros_like(m)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    out[y0:y1, x0:x1] = fill_holes(m[y0:y1, x0:x1])
    return out


def polygon_ious(path, labels_by_name, failures, exact=False):
    coco = load_coco(path)
    ious = []
    n_holes = 0
    for name, ann, src in source_masks(coco, labels_by_name):
        if ann is None:
            failures.append(f"polygon export: {name}: annotation count differs from the mask's ids")
            continue
        got = coco.annToMask(ann).astype(bool)
        want = src.astype(bool)
        ious.append((got & want).sum() / max((got | want).sum(), 1))
        if exact:
            filled = crop_fill_holes(src).astype(bool)
            n_holes += int(filled.sum() != want.sum())
            if not np.array_equal(got, filled):
                failures.append(
                    f"polygon raster check: {name} annotation {ann['id']}: pycocotools fill of the "
                    f"unsimplified rings differs from the source mask in {(got ^ filled).sum()} px"
                )
    return np.array(ious), n_holes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="tile set folder (manifest.json, images/, masks/)")
    ap.add_argument("--lamina", required=True, help="path to the lamina binary")
    args = ap.parse_args()
    lamina = os.path.abspath(args.lamina)
    failures = []

    with open(os.path.join(args.data, "manifest.json")) as f:
        manifest = json.load(f)
    labels_by_asset, labels_by_name = {}, {}
    for item in manifest["items"]:
        labels = load_label_mask(os.path.join(args.data, item["mask"]))
        labels_by_asset[item["id"]] = labels
        labels_by_name[os.path.basename(item["image"])] = labels

    with tempfile.TemporaryDirectory() as tmp:
        bundle_path = os.path.join(tmp, "bundle.json")
        run([lamina, "import-masks", args.data, "--out", bundle_path])
        with open(bundle_path) as f:
            bundle = json.load(f)
        if len(bundle["assets"]) != len(manifest["items"]):
            failures.append(f"bundle has {len(bundle['assets'])} assets, manifest {len(manifest['items'])} items")
        n_instances = check_bundle(bundle, args.data, labels_by_asset, failures)
        run([lamina, "bundle", "validate", bundle_path])

        rle_path = os.path.join(tmp, "coco_rle.json")
        run([lamina, "export", "coco", bundle_path, "--out", rle_path])
        n_rle = check_rle_export(rle_path, labels_by_name, failures)

        poly_path = os.path.join(tmp, "coco_poly.json")
        run([lamina, "export", "coco", bundle_path, "--out", poly_path, "--polygons"])
        ious, _ = polygon_ious(poly_path, labels_by_name, failures)
        if len(ious) == 0 or ious.mean() < MIN_MEAN_IOU or ious.min() < MIN_IOU:
            failures.append(
                f"polygon export: IoU mean {ious.mean():.4f} (need >= {MIN_MEAN_IOU}), "
                f"min {ious.min():.4f} (need >= {MIN_IOU})"
            )
        exact_path = os.path.join(tmp, "coco_poly_exact.json")
        run([lamina, "export", "coco", bundle_path, "--out", exact_path, "--polygons", "--tolerance", "0"])
        exact_ious, n_holes = polygon_ious(exact_path, labels_by_name, failures, exact=True)

    for f in failures[:50]:
        print("MISMATCH:", f)
    if len(failures) > 50:
        print(f"... and {len(failures) - 50} more")
    status = "OK" if not failures else f"FAILED ({len(failures)} mismatches)"
    print(
        f"{status}: {len(manifest['items'])} tiles, {n_instances} instances: RLE counts/decode/area/bbox "
        f"identical to pycocotools; RLE export annToMask exact for {n_rle}; polygons (tolerance 0.5) "
        f"IoU mean {ious.mean():.4f} min {ious.min():.4f}; unsimplified polygons exact for "
        f"{len(exact_ious)} (holes filled in {n_holes}; IoU vs unfilled mean {exact_ious.mean():.4f} "
        f"min {exact_ious.min():.4f})"
    )
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
