#!/usr/bin/env python3
"""`lamina predict` with a YOLO-seg ONNX against an independent reference: onnxruntime runs the model and
numpy decodes its outputs (candidates, per-class NMS on boxes, masks from the prototypes sampled at pixel
centres, Lamina's no-shared-pixel rule); tract's boxes, classes, scores and masks must equal them.

The rules are those written in crates/lamina-sam/src/yolo/decode.rs, restated here from the export
contract, not from that code. Real nuclei tiles of ../shared/data/nuinsseg-dev, at the model's input size
(so the letterbox is the identity and no resize enters the comparison).

  python3 tests/reference/check_yolo_seg.py --lamina target/debug/lamina [--model models/fixtures/yolo-seg-tiny/model.onnx]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
from PIL import Image
from pycocotools import mask as mask_utils

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
DEV = os.path.join(ROOT, "../shared/data/nuinsseg-dev")


def detect(out0: np.ndarray, classes: int, coefficients: int, min_score: float, nms_iou: float, max_det=300):
    p = out0[0].T  # (N, 4 + classes + M)
    scores = p[:, 4:4 + classes]
    cls = scores.argmax(1)
    conf = scores.max(1)
    order = [i for i in np.argsort(-conf, kind="stable") if conf[i] >= min_score]
    boxes = np.stack([p[:, 0] - p[:, 2] / 2, p[:, 1] - p[:, 3] / 2, p[:, 0] + p[:, 2] / 2, p[:, 1] + p[:, 3] / 2], 1)
    kept = []
    for i in order:
        if len(kept) == max_det:
            break
        b = boxes[i]
        dup = False
        for k in kept:
            if cls[k] != cls[i]:
                continue
            o = boxes[k]
            iw = max(0.0, min(b[2], o[2]) - max(b[0], o[0]))
            ih = max(0.0, min(b[3], o[3]) - max(b[1], o[1]))
            inter = iw * ih
            union = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) + max(0.0, o[2] - o[0]) * max(0.0, o[3] - o[1]) - inter
            if union > 0 and inter / union > nms_iou:
                dup = True
                break
        if not dup:
            kept.append(i)
    return [(boxes[i], int(cls[i]), float(conf[i]), p[i, 4 + classes:4 + classes + coefficients]) for i in kept]


def mask_of(box, coef, protos: np.ndarray, size: int) -> np.ndarray:
    """Bilinear sample of coef·protos at each pixel centre (image = input here), > 0 and inside the box."""
    m, ph, pw = protos.shape
    logits = np.tensordot(coef.astype(np.float64), protos.astype(np.float64), axes=1)  # (ph, pw)
    centres = np.arange(size) + 0.5

    def axis(n):
        p = np.clip(centres * n / size - 0.5, 0, n - 1)
        p0 = np.floor(p).astype(int)
        return p0, np.minimum(p0 + 1, n - 1), p - p0

    x0, x1, fx = axis(pw)
    y0, y1, fy = axis(ph)
    top = logits[y0][:, x0] * (1 - fx)[None, :] + logits[y0][:, x1] * fx[None, :]
    bottom = logits[y1][:, x0] * (1 - fx)[None, :] + logits[y1][:, x1] * fx[None, :]
    value = top * (1 - fy)[:, None] + bottom * fy[:, None]
    inside_x = (centres >= box[0]) & (centres < box[2])
    inside_y = (centres >= box[1]) & (centres < box[3])
    return (value > 0) & inside_y[:, None] & inside_x[None, :]


def without_overlaps(found, nms_iou: float, min_area: int):
    """Best first: drop a mask overlapping a kept one by IoU > nms_iou, take away pixels already kept,
    drop what is left under min_area or under half its size."""
    found = sorted(found, key=lambda f: -f["score"])  # stable
    owner = None
    kept = []
    for f in found:
        m = f["mask"]
        if owner is None:
            owner = np.zeros(m.shape, np.int32)
        area = int(m.sum())
        ids, counts = np.unique(owner[m], return_counts=True)
        dup = any(
            k > 0 and c / (area + kept[k - 1]["area0"] - c) > nms_iou for k, c in zip(ids, counts)
        )
        if dup:
            continue
        left = m & (owner == 0)
        n = int(left.sum())
        if n < min_area or n * 2 < area:
            continue
        kept.append({**f, "mask": left, "area0": n})
        owner[left] = len(kept)
    return kept


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lamina", required=True)
    ap.add_argument("--model", default=os.path.join(ROOT, "models/fixtures/yolo-seg-tiny/model.onnx"))
    ap.add_argument("--tiles", type=int, default=4)
    # Above the 300-detection cap's reach on these tiles, so a near-tie at the cap cannot decide.
    ap.add_argument("--min-score", type=float, default=0.5)
    ap.add_argument("--nms-iou", type=float, default=0.7)
    ap.add_argument("--min-area", type=int, default=20)
    args = ap.parse_args()

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    names = [n.split(":", 1)[1].strip().strip("'\"") for n in meta["names"].strip("{}").split(",")]
    size = session.get_inputs()[0].shape[2]
    items = json.load(open(os.path.join(DEV, "manifest.json")))["items"][: args.tiles]

    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "tiles")
        os.makedirs(data)
        for it in items:
            img = Image.open(os.path.join(DEV, it["image"])).convert("RGB")
            assert img.size == (size, size), f"{it['image']} is {img.size}, the model takes {size}"
            img.save(os.path.join(data, it["id"] + ".png"))
        out = os.path.join(tmp, "pred.json")
        subprocess.run([args.lamina, "predict", "--model", args.model, "--data", data, "--out", out,
                        "--min-score", str(args.min_score), "--nms-iou", str(args.nms_iou),
                        "--min-area", str(args.min_area)], check=True, stdout=subprocess.DEVNULL)
        bundle = json.load(open(out))

    total = 0
    worst_iou = 1.0
    for it in items:
        rgb = np.asarray(Image.open(os.path.join(DEV, it["image"])).convert("RGB"), np.float32) / 255.0
        out0, out1 = session.run(None, {session.get_inputs()[0].name: rgb.transpose(2, 0, 1)[None]})
        coefficients = out1.shape[1]
        dets = detect(out0, len(names), coefficients, args.min_score, args.nms_iou)
        found = []
        for box, c, score, coef in dets:
            m = mask_of(box, coef, out1[0], size)
            if m.any():
                found.append({"mask": m, "class": names[c], "score": score, "box": box})
        ref = without_overlaps(found, args.nms_iou, args.min_area)
        ours = [i for i in bundle["instances"] if i["asset_id"] == it["id"]]
        assert len(ours) == len(ref), f"{it['id']}: lamina kept {len(ours)} instances, the reference {len(ref)}"
        masks = [mask_utils.decode({"size": o["mask"]["size"], "counts": o["mask"]["counts"].encode()}).astype(bool)
                 for o in ours]
        unmatched = set(range(len(ours)))
        for k, r in enumerate(ref):
            # Scores equal to float rounding may come in either order: match on class, score and pixels.
            near = [j for j in unmatched if ours[j]["class_id"] == r["class"]
                    and abs(ours[j]["provenance"]["score"] - r["score"]) < 1e-4]
            assert near, f"{it['id']} #{k}: no {r['class']} instance with score {r['score']:.6f} in lamina's"
            j = min(near, key=lambda j: (masks[j] ^ r["mask"]).sum())
            unmatched.remove(j)
            diff = int((masks[j] ^ r["mask"]).sum())
            union = int((masks[j] | r["mask"]).sum())
            worst_iou = min(worst_iou, 1 - diff / union if union else 1.0)
            # Float rounding can flip a pixel whose logit sits at 0; nothing more.
            assert diff <= 2, f"{it['id']} #{k}: masks differ in {diff} pixels"
        total += len(ref)
    assert total > 0, "the fixture found nothing: the comparison would prove nothing"
    print(f"yolo-seg: {total} instances on {len(items)} tiles equal onnxruntime + numpy "
          f"(classes, scores within 1e-4, masks within 2 px; worst mask IoU {worst_iou:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
