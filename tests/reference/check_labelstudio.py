#!/usr/bin/env python3
"""An independent reader of Lamina's Label Studio export, and the round trip back into a bundle.

Usage:
    python3 -m pip install --no-deps label-studio-converter==0.0.59
    python3 tests/reference/check_labelstudio.py --bundle target/reference-bundle.json \
        --lamina target/debug/lamina --work /tmp/ls-check

 1. `lamina export labelstudio BUNDLE --out WORK/ls.json`; every brush region is decoded with
    label-studio-converter's `decode_rle` (Label Studio's own Python code, sharing nothing with Lamina),
    reshaped to (height, width, RGBA), and its alpha > 0 must equal, pixel for pixel, the instance mask
    pycocotools decodes from the bundle. Every instance must be there exactly once, with its class's name.
 2. `lamina import WORK/ls.json --format labelstudio --onto BUNDLE --existing replace --out
    WORK/back.json`: each image of back.json must hold the same masks with the same classes (compared as
    multisets of (mask, class) per image; ids and provenance change on import).
Prints one summary line; exits non-zero on any mismatch.
"""

import argparse
import collections
import hashlib
import importlib.metadata as md
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
from pycocotools import mask as mask_utils


def load_converter_brush():
    """label-studio-converter's brush.py alone: the package's __init__ imports nltk and more."""
    try:
        files = md.files("label-studio-converter") or []
    except md.PackageNotFoundError:
        sys.exit("label-studio-converter is missing: python3 -m pip install --no-deps label-studio-converter==0.0.59")
    path = [p for p in files if p.name == "brush.py"][0].locate()
    spec = importlib.util.spec_from_file_location("ls_brush", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}{out.stdout}")


def coco_mask(instance):
    m = instance["mask"]
    return mask_utils.decode({"size": m["size"], "counts": m["counts"].encode()}).astype(bool)


def key(mask):
    """A mask as a hashable value (its shape and packed bits)."""
    return hashlib.sha256(repr(mask.shape).encode() + np.packbits(mask).tobytes()).hexdigest()


def check_export(bundle, tasks, brush, problems):
    assets = {a["id"]: a for a in bundle["assets"]}
    class_names = {c["id"]: c["name"] for c in bundle["ontology"]["classes"]}
    instances = {i["id"]: i for i in bundle["instances"]}
    by_image = {a.get("uri") or a["name"]: a for a in bundle["assets"]}
    seen = collections.Counter()
    if len(tasks) != len(bundle["assets"]):
        problems.append(f"{len(tasks)} tasks for {len(bundle['assets'])} images")
    for task in tasks:
        image = task["data"]["image"]
        asset = by_image.get(image)
        if asset is None:
            problems.append(f"task for {image!r}: no such image in the bundle")
            continue
        for annotation in task.get("annotations", []):
            for region in annotation["result"]:
                where = f"{image}, region {region.get('id')!r}"
                instance = instances.get(region.get("id"))
                if instance is None or instance["asset_id"] != asset["id"]:
                    problems.append(f"{where}: not an instance of this image in the bundle")
                    continue
                seen[instance["id"]] += 1
                if region["type"] != "brushlabels" or region["value"].get("format") != "rle":
                    problems.append(f"{where}: type {region['type']}, format {region['value'].get('format')}")
                    continue
                w, h = region["original_width"], region["original_height"]
                if (w, h) != (asset["width"], asset["height"]):
                    problems.append(f"{where}: original size {w}x{h}, image is {asset['width']}x{asset['height']}")
                    continue
                values = brush.decode_rle(region["value"]["rle"])
                if values.size != h * w * 4:
                    problems.append(f"{where}: {values.size} RGBA values for {w}x{h}")
                    continue
                alpha = values.reshape(h, w, 4)[:, :, 3] > 0
                expected = coco_mask(instance)
                if not np.array_equal(alpha, expected):
                    diff = int((alpha != expected).sum())
                    problems.append(f"{where}: {diff} pixels differ from the bundle's mask")
                labels = region["value"].get("brushlabels", [])
                want = class_names.get(instance["class_id"], instance["class_id"])
                if labels != [want]:
                    problems.append(f"{where}: labels {labels}, class is {want!r}")
    for instance_id in instances:
        if seen[instance_id] != 1:
            problems.append(f"instance {instance_id!r} is in the export {seen[instance_id]} times")
    return sum(seen.values())


def masks_by_image(bundle):
    out = collections.defaultdict(collections.Counter)
    for instance in bundle["instances"]:
        mask = coco_mask(instance)
        # An empty label cannot be placed in Label Studio's file and back (the import skips it).
        if mask.any():
            out[instance["asset_id"]][(key(mask), instance["class_id"])] += 1
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True, help="a Lamina bundle JSON")
    parser.add_argument("--lamina", required=True, help="the lamina binary")
    parser.add_argument("--work", required=True, help="a folder for ls.json and back.json")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    brush = load_converter_brush()
    with open(args.bundle) as f:
        bundle = json.load(f)

    exported = os.path.join(args.work, "ls.json")
    run([args.lamina, "export", "labelstudio", args.bundle, "--out", exported])
    with open(exported) as f:
        tasks = json.load(f)
    problems = []
    regions = check_export(bundle, tasks, brush, problems)

    back_path = os.path.join(args.work, "back.json")
    run([args.lamina, "import", exported, "--format", "labelstudio", "--onto", args.bundle,
         "--out", back_path, "--existing", "replace"])
    with open(back_path) as f:
        back = json.load(f)
    before, after = masks_by_image(bundle), masks_by_image(back)
    names = {a["id"]: a["name"] for a in bundle["assets"]}
    for asset_id in sorted(set(before) | set(after)):
        if before[asset_id] != after[asset_id]:
            lost = sum((before[asset_id] - after[asset_id]).values())
            gained = sum((after[asset_id] - before[asset_id]).values())
            problems.append(f"{names.get(asset_id, asset_id)}: after the round trip {lost} labels lost, {gained} new")
    empty = sum(1 for i in bundle["instances"] if not coco_mask(i).any())

    for p in problems[:20]:
        print(p, file=sys.stderr)
    if len(problems) > 20:
        print(f"... and {len(problems) - 20} more", file=sys.stderr)
    status = "OK" if not problems else f"FAILED ({len(problems)} problems)"
    note = f", {empty} empty labels not compared" if empty else ""
    print(f"Label Studio: {status}: {len(tasks)} tasks, {regions} brush regions decoded by label-studio-converter "
          f"and compared with pycocotools, {sum(sum(c.values()) for c in after.values())} labels re-imported "
          f"and compared per image{note}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
