#!/usr/bin/env python3
"""Make a YOLO-seg-shaped test model with seeded random weights (run by hand, never by CI).

It follows the ultralytics YOLOv8/YOLO11-seg ONNX export contract that Lamina's pre-labeling reads
(crates/lamina-sam/src/yolo.rs):

  input   images   [1, 3, S, S]        RGB in 0..1, letterboxed
  output  output0  [1, 4 + nc + 32, N] per anchor: box cx, cy, w, h (input pixels), nc class scores
                                       (probabilities), 32 mask coefficients; N anchors over strides 8, 16, 32
  output  output1  [1, 32, S/4, S/4]   mask prototypes
  metadata names "{0: 'nucleus', 1: 'debris'}", imgsz "[S, S]", task "segment", stride "32"

It is our own small network (strided convolutions, a head per stride, a prototype branch), not
ultralytics' weights: a fixture for the decoder's parity tests, not a model. Its random head is only
scaled on 16 nuinsseg-train tiles so that scores and mask logits have a realistic spread.

  python3 models/tools/yolo_seg_fixture.py [--size 256] [--out models/fixtures/yolo-seg-tiny]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
from PIL import Image

NAMES = ["nucleus", "debris"]
COEFFICIENTS = 32


def conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.SiLU())


class TinyYoloSeg(nn.Module):
    def __init__(self, classes: int, size: int):
        super().__init__()
        self.classes = classes
        self.size = size
        self.p2 = nn.Sequential(conv(3, 16, 2), conv(16, 32, 2))  # stride 4
        self.p3 = conv(32, 48, 2)  # 8
        self.p4 = conv(48, 64, 2)  # 16
        self.p5 = conv(64, 64, 2)  # 32
        out = 4 + classes + COEFFICIENTS
        self.heads = nn.ModuleList([nn.Conv2d(c, out, 1) for c in (48, 64, 64)])
        self.proto = nn.Sequential(conv(32, 32, 1), nn.Conv2d(32, COEFFICIENTS, 1))
        # Per level and output row: an offset and a scale, set by `calibrate` so that on real tiles the
        # class logits spread over a few units (scores from near 0 to about 0.95, none saturated at 1, so no ties) and the mask
        # logits are well away from 0 (masks that do not hinge on rounding).
        self.register_buffer("shift", torch.zeros(3, 4 + classes + COEFFICIENTS, 1, 1))
        self.register_buffer("scale", torch.ones(3, 4 + classes + COEFFICIENTS, 1, 1))
        self.register_buffer("proto_scale", torch.ones(1))

    def forward(self, images: torch.Tensor):
        p2 = self.p2(images)
        p3 = self.p3(p2)
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        rows = []
        for level, (feat, head, stride) in enumerate(zip((p3, p4, p5), self.heads, (8, 16, 32))):
            raw = (head(feat) - self.shift[level]) * self.scale[level]
            _, _, h, w = raw.shape
            gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                    indexing="ij")
            grid = torch.stack((gx, gy)).unsqueeze(0)
            xy = (grid + 0.5 + torch.tanh(raw[:, 0:2])) * stride
            wh = torch.exp(torch.clamp(raw[:, 2:4], -2.0, 2.0)) * stride * 1.5
            cls = torch.sigmoid(raw[:, 4:4 + self.classes])
            coef = raw[:, 4 + self.classes:]
            rows.append(torch.cat((xy, wh, cls, coef), 1).flatten(2))
        return torch.cat(rows, 2), self.proto(p2) * self.proto_scale

    @torch.no_grad()
    def calibrate(self, images: torch.Tensor) -> None:
        """Centres and scales each head row on real tiles (see `shift`); box rows get a small spread."""
        p2 = self.p2(images)
        p3 = self.p3(p2)
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        proto = self.proto(p2)
        self.proto_scale.fill_(1.0 / float(proto.std()))
        spread = torch.ones(4 + self.classes + COEFFICIENTS)
        spread[:4] = 0.7
        spread[4:4 + self.classes] = 1.0
        for level, (feat, head) in enumerate(zip((p3, p4, p5), self.heads)):
            raw = head(feat).transpose(0, 1).flatten(1)
            self.shift[level, :, 0, 0] = raw.mean(1)
            self.shift[level, 4:4 + self.classes, 0, 0] += raw[4:4 + self.classes].std(1) * 0.8
            self.scale[level, :, 0, 0] = spread / raw.std(1).clamp_min(1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../fixtures/yolo-seg-tiny"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = TinyYoloSeg(len(NAMES), args.size).eval()
    tiles = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "../../../shared/data/nuinsseg-train/images/*.jpg")))[:16]
    batch = torch.stack([torch.from_numpy(np.asarray(Image.open(t).convert("RGB"), np.float32) / 255.0).permute(2, 0, 1)
                         for t in tiles])
    model.calibrate(batch)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "model.onnx")
    example = torch.rand(1, 3, args.size, args.size)
    torch.onnx.export(model, (example,), path, input_names=["images"], output_names=["output0", "output1"],
                      opset_version=17, dynamo=False, do_constant_folding=True)
    m = onnx.load(path)
    meta = {
        "names": "{" + ", ".join(f"{k}: '{n}'" for k, n in enumerate(NAMES)) + "}",
        "imgsz": f"[{args.size}, {args.size}]",
        "task": "segment",
        "stride": "32",
        "description": "Lamina test fixture in the ultralytics YOLO-seg export contract; random weights",
    }
    for key, value in meta.items():
        entry = m.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(m)
    onnx.save(m, path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with torch.no_grad():
        out0, out1 = model(example)
    info = {"file": "model.onnx", "sha256": digest, "seed": args.seed, "input": [1, 3, args.size, args.size],
            "output0": list(out0.shape), "output1": list(out1.shape), "names": NAMES}
    with open(os.path.join(args.out, "fixture.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
