#!/usr/bin/env python3
"""Writes a label fragment as a hostile or careless teammate could put it on the shared bucket: well-formed
and self-consistent (its revision and its key's hash match its content, so only the checks under test can
refuse it), written here from docs/sync.md, independently of Lamina's code.

Usage: hostile_fragment.py KIND BATCH LABELER IMAGE_ID SHA256 WIDTH HEIGHT
KIND: huge-mask   a label whose mask claims 65535x65535 (decoding it would take ~4 GB)
      wrong-image labels drawn on another image (another sha256)
      payloads    markup in a class id and in a review comment, which must reach the screen as text
Prints {"key": ..., "body": ...} as JSON."""
import hashlib
import json
import sys

import numpy as np
from pycocotools import mask as mask_utils

kind, batch, labeler, image_id, sha, width, height = sys.argv[1:8]
width, height = int(width), int(height)
created = "2026-12-02T12:00:00.000Z"
XSS_CLASS = '<img src=x onerror="window.__xss=1">'
XSS_COMMENT = "<script>window.__xss=2</script> look here"


def disc(iid, class_id):
    yy, xx = np.mgrid[0:height, 0:width]
    m = (((xx - 60) ** 2 + (yy - 60) ** 2) <= 100).astype(np.uint8)
    rle = mask_utils.encode(np.asfortranarray(m))
    x, y, w, h = (int(v) for v in mask_utils.toBbox(rle))
    return {"id": iid, "asset_id": image_id, "class_id": class_id,
            "mask": {"size": [height, width], "counts": rle["counts"].decode()},
            "bbox": [x, y, w, h], "area": int(mask_utils.area(rle)),
            "provenance": {"tool": "brush", "author": labeler, "created": created, "updated": created},
            "status": "draft"}


image = {"sha256": sha, "width": width, "height": height}
review = []
if kind == "huge-mask":
    inst = disc("huge-1", "neoplastic")
    inst["mask"] = {"size": [65535, 65535], "counts": "0" + "1" * 8}
    inst["bbox"], inst["area"] = [0, 0, 65535, 65535], 5
    instances = [inst]
elif kind == "wrong-image":
    instances = [disc("other-1", "neoplastic")]
    image = {**image, "sha256": "00" * 32}
elif kind == "payloads":
    instances = [disc("xss-1", XSS_CLASS)]
    review = [{"id": "xss-issue", "asset_id": image_id, "author": labeler, "at": created, "kind": "issue",
               "point_image": [60.0, 60.0], "category": "other", "comment": XSS_COMMENT}]
else:
    sys.exit(f"unknown kind {kind}")

status = "in_progress"
canonical = json.dumps([status, sorted(instances, key=lambda i: i["id"])], separators=(",", ":"), ensure_ascii=False)
revision = hashlib.sha256(canonical.encode()).hexdigest()
fragment = {"format": "lamina-labels-fragment", "version": 2, "batch": batch, "labeler": labeler,
            "created": created,
            "assets": [{"asset_id": image_id, "revision": revision, "parents": [], "status": status,
                        "instances": instances, "image": image}]}
if review:
    fragment["review"] = review
body = json.dumps(fragment, separators=(",", ":"), ensure_ascii=False)
digest = hashlib.sha256(body.encode()).hexdigest()
time = "".join(c for c in created if c.isdigit())[:17]
print(json.dumps({"key": f"batches/{batch}/labels/{labeler}/{time}-{digest[:16]}.json", "body": body,
                  "xss_class": XSS_CLASS, "xss_comment": XSS_COMMENT}))
