#!/usr/bin/env python3
"""onnxruntime (native, Python) on the same workload as `lamina bench sam`, as the native reference for tract.

Same ONNX files, same tile, same preprocessing (resize longest side to input_size, bilinear; normalise;
pad bottom/right), same prompts (single clicks over a 6x6 grid, plus SAM's padding point), low_res
decoder. ONE thread (intra_op=1, inter_op=1), because tract is single-threaded and the browser build is
too. Prints figures; asserts nothing.

Usage: python3 bench/ort_native.py --model DIR [--runs N] [--decodes M] [--image PNG] [--json]
"""
import argparse
import json
import math
import os
import resource
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

DEFAULT_TILE = "../shared/data/nuinsseg-dev/images/nuinsseg_human_bladder_01_x0y0.png"


def percentile(sorted_ms, p):
    # Nearest rank, rounded half up, as crates/lamina-cli/src/bench.rs does, so the two are comparable.
    if not sorted_ms:
        return math.nan
    return sorted_ms[min(int(p / 100 * (len(sorted_ms) - 1) + 0.5), len(sorted_ms) - 1)]


def model_input(image, manifest):
    """[1, 3, S, S] float32, as crates/lamina-sam/src/preprocess.rs (SAM's ResizeLongestSide + preprocess)."""
    s = manifest["input_size"]
    scale = s / max(image.size)
    w, h = (max(1, int(v * scale + 0.5)) for v in image.size)
    if (w, h) != image.size:
        image = image.resize((w, h), Image.BILINEAR)  # on 8-bit pixels, as the engine's Triangle filter
    pixels = np.asarray(image, dtype=np.float32)
    pixels = (pixels - np.array(manifest["pixel_mean"], np.float32)) / np.array(manifest["pixel_std"], np.float32)
    out = np.zeros((1, 3, s, s), np.float32)
    out[0, :, :h, :w] = pixels.transpose(2, 0, 1)
    return out, (w, h)


def resize_bilinear(src, dst_h, dst_w):
    """Half-pixel-centre bilinear (torch's interpolate, align_corners=False), as postprocess.rs."""
    def axis(dst, n):
        s = np.maximum((np.arange(dst, dtype=np.float32) + 0.5) * (n / dst) - 0.5, 0)
        i0 = np.minimum(np.floor(s).astype(np.int64), n - 1)
        return i0, np.minimum(i0 + 1, n - 1), (s - i0).astype(np.float32)
    (y0, y1, fy), (x0, x1, fx) = axis(dst_h, src.shape[0]), axis(dst_w, src.shape[1])
    rows = src[y0] + (src[y1] - src[y0]) * fy[:, None]
    return rows[:, x0] + (rows[:, x1] - rows[:, x0]) * fx


def mask(low_res_logits, s, resized_wh, image_wh, threshold):
    """The engine's `mask()`: low-res logits -> input size -> crop -> image size -> threshold."""
    (rw, rh), (iw, ih) = resized_wh, image_wh
    return resize_bilinear(resize_bilinear(low_res_logits, s, s)[:rh, :rw], ih, iw) > threshold


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="folder with manifest.json and the ONNX files")
    ap.add_argument("--runs", type=int, default=3, help="encodes (lamina bench sam: --encodes 3)")
    ap.add_argument("--decodes", type=int, default=30, help="single clicks; the first is reported apart")
    ap.add_argument("--image", default=DEFAULT_TILE)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    manifest = json.load(open(os.path.join(args.model, "manifest.json")))
    decoder_file = next(d["file"] for d in manifest["decoders"] if d["variant"] == "low_res")
    image = Image.open(args.image).convert("RGB")
    iw, ih = image.size

    t = time.perf_counter()
    encoder = session(os.path.join(args.model, manifest["encoder"]["file"]))
    decoder = session(os.path.join(args.model, decoder_file))
    load_ms = (time.perf_counter() - t) * 1000

    # The engine's encode includes preprocessing, so this does too.
    encode_ms = []
    for _ in range(max(1, args.runs)):
        t = time.perf_counter()
        x, (rw, rh) = model_input(image, manifest)
        (embedding,) = encoder.run(["image_embeddings"], {"image": x})
        encode_ms.append((time.perf_counter() - t) * 1000)

    low = manifest["low_res_mask_size"]
    fixed = {
        "image_embeddings": embedding,
        "mask_input": np.zeros((1, 1, low, low), np.float32),
        "has_mask_input": np.zeros((1,), np.float32),
    }
    decode_ms, mask_ms, first_decode_ms = [], [], None
    for i in range(max(1, args.decodes)):
        gx, gy = i % 6 + 0.5, (i // 6) % 6 + 0.5
        x_img, y_img = gx * iw / 6, gy * ih / 6
        # Image -> model pixels, then SAM's padding point (0, 0) with label -1 since there is no box.
        coords = np.array([[[x_img * rw / iw, y_img * rh / ih], [0.0, 0.0]]], np.float32)
        labels = np.array([[1.0, -1.0]], np.float32)
        t = time.perf_counter()
        ious, masks = decoder.run(
            ["iou_predictions", "low_res_masks"], {**fixed, "point_coords": coords, "point_labels": labels})
        ms = (time.perf_counter() - t) * 1000
        # lamina's decode also turns the chosen candidate into an image-size mask; time that apart so the
        # decoder figures compare like for like.
        t = time.perf_counter()
        best = 1 + int(np.argmax(ious[0, 1:]))
        mask(masks[0, best], manifest["input_size"], (rw, rh), (iw, ih), manifest["mask_threshold"])
        if first_decode_ms is None:
            first_decode_ms = ms
        else:
            decode_ms.append(ms)
            mask_ms.append((time.perf_counter() - t) * 1000)
    decode_ms.sort()
    p50, p95 = percentile(decode_ms, 50), percentile(decode_ms, 95)
    encode_p50 = percentile(sorted(encode_ms), 50)
    mask_p50 = percentile(sorted(mask_ms), 50)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    report = {
        "ok": True, "engine": f"onnxruntime {ort.__version__} (CPU EP, Python)", "model": manifest["id"],
        "variant": "low_res", "threads": 1, "image": [iw, ih], "input_size": manifest["input_size"],
        "load_ms": load_ms, "encode_ms": encode_ms, "encode_p50_ms": encode_p50,
        "first_decode_ms": first_decode_ms, "decode_p50_ms": p50, "decode_p95_ms": p95,
        "mask_p50_ms": mask_p50, "decodes": len(decode_ms), "peak_rss_mb": peak_rss_mb,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"model {manifest['id']} (onnxruntime {ort.__version__}, 1 thread, decoder low_res), "
            f"image {iw}x{ih} -> input {manifest['input_size']}\n"
            f"  load   {load_ms:8.1f} ms\n"
            f"  encode {encode_p50:8.1f} ms p50 over {len(encode_ms)} runs (incl. preprocessing)\n"
            f"  decode {p50:8.1f} ms p50, {p95:.1f} ms p95 over {len(decode_ms)} single clicks "
            f"(first: {first_decode_ms:.1f} ms), decoder only\n"
            f"  mask   {mask_p50:8.1f} ms p50 (numpy port of the engine's low-res -> image mask)\n"
            f"  peak RSS {peak_rss_mb:.0f} MB"
        )


if __name__ == "__main__":
    main()
