#!/usr/bin/env python3
"""Convert a Segment-Anything-family checkpoint that you downloaded into Lamina's ONNX contract
(encoder.onnx, decoder_low_res.onnx, decoder_orig_size.onnx, manifest.json). Run by hand.

  python models/tools/export_sam.py --checkpoint sam_vit_b_01ec64.pth --family sam_vit_b --out DIR
  python models/tools/export_sam.py --checkpoint mobile_sam.pt --family mobile_sam --out DIR

Checkpoints: the official SAM ones (sam_vit_b_01ec64.pth, sam_vit_l_0b3195.pth, sam_vit_h_4b8939.pth)
and MobileSAM's mobile_sam.pt are plain state_dicts; a dict with a "model" or "state_dict" entry is
unwrapped too. Loading uses torch.load(weights_only=True) and load_state_dict(strict=True).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sam_onnx  # noqa: E402

FAMILIES = {
    # family arg: (registry module, registry key, manifest family, default id, upstream)
    "sam_vit_b": ("segment_anything", "vit_b", "sam", "sam-vit-b", "Segment Anything (Meta AI) ViT-B"),
    "sam_vit_l": ("segment_anything", "vit_l", "sam", "sam-vit-l", "Segment Anything (Meta AI) ViT-L"),
    "sam_vit_h": ("segment_anything", "vit_h", "sam", "sam-vit-h", "Segment Anything (Meta AI) ViT-H"),
    "mobile_sam": ("mobile_sam", "vit_t", "mobile_sam", "mobile-sam", "MobileSAM (TinyViT encoder + SAM decoder)"),
}


def build(family: str) -> torch.nn.Module:
    module, key = FAMILIES[family][:2]
    if module == "segment_anything":
        from segment_anything import sam_model_registry
    else:
        from mobile_sam import sam_model_registry
    return sam_model_registry[key](checkpoint=None)


def load_checkpoint(family: str, path: str) -> torch.nn.Module:
    sam = build(family)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    for k in ("model", "state_dict"):
        if isinstance(sd, dict) and k in sd and isinstance(sd[k], dict):
            sd = sd[k]
    sam.load_state_dict(sd, strict=True)
    return sam.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="the .pth/.pt state_dict file")
    ap.add_argument("--family", required=True, choices=sorted(FAMILIES))
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--id", help="manifest id (default: from the family)")
    ap.add_argument("--source", help="manifest 'source' text (default: describes the checkpoint)")
    ap.add_argument("--license", default="Apache-2.0", help="manifest 'license' (default Apache-2.0, as SAM and MobileSAM)")
    ap.add_argument("--no-smoke", action="store_true", help="skip the onnxruntime smoke test")
    ap.add_argument("--tract", action="store_true", help="also check loading/running with tract's Python bindings")
    args = ap.parse_args()

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    _, _, fam, default_id, upstream = FAMILIES[args.family]
    sam = load_checkpoint(args.family, args.checkpoint)
    ckpt_sha = sam_onnx.sha256_file(args.checkpoint)
    source = args.source or (
        f"{upstream} weights from {os.path.basename(args.checkpoint)} (sha256 {ckpt_sha}), exported with "
        f"models/tools/export_sam.py --family {args.family} (torch {torch.__version__.split('+')[0]}, TorchScript "
        f"ONNX exporter, opset {sam_onnx.OPSET}); decoders return all 4 mask tokens without selection.")
    man = sam_onnx.export_all(sam, 1024, args.out, args.id or default_id, fam, source, args.license)
    print(f"wrote {args.out}/manifest.json (embedding_shape {man['embedding_shape']})")
    if not args.no_smoke:
        print("timings (1 thread):", sam_onnx.smoke_test(args.out, sam))
    if args.tract:
        for k, v in sam_onnx.tract_check(args.out).items():
            print(f"tract {k}: {v}")
    for fn in sorted(os.listdir(args.out)):
        p = os.path.join(args.out, fn)
        if os.path.isfile(p):
            print(f"  {fn}: {os.path.getsize(p)} bytes")


if __name__ == "__main__":
    main()
