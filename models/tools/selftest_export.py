#!/usr/bin/env python3
"""Self-test of export_sam.py without real weights: save a seeded random-weight state_dict of the
family's architecture to a .pt, convert it with export_sam.py, and check onnxruntime's outputs
against the original torch model. Run by hand:

  python models/tools/selftest_export.py --family mobile_sam --family sam_vit_b [--tract]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_sam  # noqa: E402
import sam_onnx  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", action="append", choices=sorted(export_sam.FAMILIES), required=True)
    ap.add_argument("--keep", help="keep the exported models under this directory")
    ap.add_argument("--tract", action="store_true")
    args = ap.parse_args()
    for fam in args.family:
        with tempfile.TemporaryDirectory() as td:
            torch.manual_seed(0)
            sam = export_sam.build(fam).eval()
            ckpt = os.path.join(td, f"random_{fam}.pt")
            torch.save(sam.state_dict(), ckpt)
            out = os.path.join(args.keep, fam) if args.keep else os.path.join(td, "out")
            cmd = [sys.executable, os.path.join(HERE, "export_sam.py"), "--checkpoint", ckpt, "--family", fam,
                   "--out", out, "--no-smoke"] + (["--tract"] if args.tract else [])
            print("$", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
            # onnxruntime vs the ORIGINAL (pre-save) torch model: checks loading too
            print(f"[{fam}] smoke test vs the original torch model:")
            print(f"[{fam}] timings (1 thread):", sam_onnx.smoke_test(out, sam, reps=2), flush=True)
            for name, io in ((f, sam_onnx.describe_io(os.path.join(out, f)))
                             for f in ("encoder.onnx", "decoder_low_res.onnx", "decoder_orig_size.onnx")):
                print(f"[{fam}] {name}: {io}")


if __name__ == "__main__":
    main()
