#!/usr/bin/env python3
"""Scores the suggestion labels of an exported bundle against the ground-truth nuclei they were made on,
with pycocotools (independent of Lamina's RLE code).

Usage: check_suggestions.py --bundle B.json --mask GT.png --click-id N --box-id M
Prints {"click_iou": .., "box_iou": ..}: IoU of the `sam_click` label with nucleus N and of the `sam_box`
label with nucleus M of the 16-bit instance mask GT.png.
"""
import argparse
import json

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

ap = argparse.ArgumentParser()
ap.add_argument("--bundle", required=True)
ap.add_argument("--mask", required=True)
ap.add_argument("--click-id", type=int, required=True)
ap.add_argument("--box-id", type=int, required=True)
args = ap.parse_args()

labels = np.array(Image.open(args.mask)).astype(np.int32)
bundle = json.load(open(args.bundle))


def iou(tool, nucleus):
    inst = next(i for i in bundle["instances"] if i["provenance"]["tool"] == tool)
    rle = {"size": inst["mask"]["size"], "counts": inst["mask"]["counts"].encode()}
    gt = mask_utils.encode(np.asfortranarray((labels == nucleus).astype(np.uint8)))
    return float(mask_utils.iou([rle], [gt], [0])[0][0])


print(json.dumps({"click_iou": iou("sam_click", args.click_id), "box_iou": iou("sam_box", args.box_id)}))
