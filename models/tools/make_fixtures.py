#!/usr/bin/env python3
"""Make SAM-family test/benchmark models with seeded random weights (run by hand, never by CI).

  --tiny                 a reduced SAM (ViT encoder, windowed + one global attention block, E=64,
                         transformer_dim 32) plus golden onnxruntime outputs, written to
                         models/fixtures/sam-tiny/ (committed; see its README.md)
  --mobile-sam-random    the full MobileSAM architecture (TinyViT + SAM decoder) with random
                         weights, for benchmarks; default out models/generated/mobile-sam-random/
                         (git-ignored, NOT committed)

Weights are random: these are test fixtures, not models.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from functools import partial

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sam_onnx  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
TILE = "/work/shared/data/nuinsseg-dev/images/nuinsseg_human_bladder_01_x0y0.png"

# The tiny model's architecture (segment_anything building blocks).
TINY = dict(img_size=1024, patch_size=16, enc_embed_dim=32, enc_depth=2, enc_heads=2, global_attn_indexes=(1,),
            window_size=14, transformer_dim=32, transformer_depth=2, transformer_heads=2, transformer_mlp_dim=64,
            mask_in_chans=8, iou_head_hidden_dim=32)


def build_tiny_sam() -> nn.Module:
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    t = TINY
    torch.manual_seed(0)
    e = t["img_size"] // t["patch_size"]
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=t["enc_depth"], embed_dim=t["enc_embed_dim"], img_size=t["img_size"], mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=t["enc_heads"],
            patch_size=t["patch_size"], qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=t["global_attn_indexes"], window_size=t["window_size"],
            out_chans=t["transformer_dim"]),
        prompt_encoder=PromptEncoder(
            embed_dim=t["transformer_dim"], image_embedding_size=(e, e),
            input_image_size=(t["img_size"], t["img_size"]), mask_in_chans=t["mask_in_chans"]),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=t["transformer_depth"], embedding_dim=t["transformer_dim"],
                                          mlp_dim=t["transformer_mlp_dim"], num_heads=t["transformer_heads"]),
            transformer_dim=t["transformer_dim"], iou_head_depth=3,
            iou_head_hidden_dim=t["iou_head_hidden_dim"]),
        pixel_mean=sam_onnx.PIXEL_MEAN, pixel_std=sam_onnx.PIXEL_STD,
    )
    randomize_defaults(sam)
    return sam.eval()


def randomize_defaults(model: nn.Module) -> None:
    """Parameters that PyTorch initialises to constants (positional embeddings, relative position
    tables, norm scales/biases, zero biases) get seeded random values so that a parity test
    exercises them too."""
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "rel_pos" in name or name.endswith("pos_embed"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif ("norm" in name or "neck.1" in name or "neck.3" in name or "output_upscaling.1" in name
                  or "mask_downscaling.1" in name or "mask_downscaling.4" in name):
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias") and torch.all(p == 0):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def build_mobile_sam_random() -> nn.Module:
    from mobile_sam import sam_model_registry

    torch.manual_seed(0)
    return sam_model_registry["vit_t"](checkpoint=None).eval()


# --------------------------------------------------------------------------------------------
# Preprocessing (the contract's; Rust must match it)
# --------------------------------------------------------------------------------------------


def preprocess(path: str, size: int) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    from PIL import Image

    im = Image.open(path).convert("RGB")
    w, h = im.size
    scale = size / max(h, w)
    nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)  # SAM's ResizeLongestSide.get_preprocess_shape
    im = im.resize((nw, nh), Image.BILINEAR)
    x = np.asarray(im).astype(np.float32)
    x = (x - np.asarray(sam_onnx.PIXEL_MEAN, np.float32)) / np.asarray(sam_onnx.PIXEL_STD, np.float32)
    out = np.zeros((size, size, 3), np.float32)
    out[:nh, :nw] = x
    return out.transpose(2, 0, 1)[None].copy(), (h, w), (nh, nw)


# --------------------------------------------------------------------------------------------
# Golden outputs
# --------------------------------------------------------------------------------------------


def save_tensor(path: str, name: str, arr: np.ndarray) -> None:
    from onnx import numpy_helper

    t = numpy_helper.from_array(np.ascontiguousarray(arr), name=name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def make_golden(model_dir: str) -> None:
    import onnxruntime

    gdir = os.path.join(model_dir, "golden")
    if os.path.isdir(gdir):
        shutil.rmtree(gdir)
    os.makedirs(gdir)
    with open(os.path.join(model_dir, "manifest.json")) as f:
        man = json.load(f)
    S = man["input_size"]
    shutil.copy(TILE, os.path.join(gdir, "source_tile.png"))
    image, (h, w), (nh, nw) = preprocess(TILE, S)
    enc = sam_onnx.ort_session(os.path.join(model_dir, "encoder.onnx"), 1)
    low = sam_onnx.ort_session(os.path.join(model_dir, "decoder_low_res.onnx"), 1)
    orig = sam_onnx.ort_session(os.path.join(model_dir, "decoder_orig_size.onnx"), 1)
    cases = []

    def write_case(name, model_file, inputs, outputs, description, shared_inputs=None, shared_outputs=None):
        cdir = os.path.join(gdir, name)
        os.makedirs(cdir, exist_ok=True)
        entry = {"name": name, "model": model_file, "description": description, "inputs": [], "outputs": []}
        for kind, tensors, shared in (("input", inputs, shared_inputs or {}), ("output", outputs, shared_outputs or {})):
            for tname, arr in tensors.items():
                if tname in shared:
                    rel = shared[tname]
                else:
                    rel = f"{name}/{kind}_{tname}.pb"
                    save_tensor(os.path.join(gdir, rel), tname, arr)
                entry[kind + "s"].append({"name": tname, "file": rel, "shape": list(arr.shape), "dtype": "float32"})
        cases.append(entry)

    (emb,) = enc.run(["image_embeddings"], {"image": image})
    write_case("encoder", "encoder.onnx", {"image": image}, {"image_embeddings": emb},
               "Encoder on source_tile.png preprocessed as in 'preprocessing' (input_image.pb is that "
               "preprocessed image, for testing the Rust preprocessing with a tolerance).")
    emb_file = {"image_embeddings": "encoder/output_image_embeddings.pb"}

    f = S / max(h, w)  # image pixels -> model-input pixels
    pt = [52 * f, 92 * f]  # on a nucleus of the tile (image pixel x=52, y=92)
    box = [[35 * f, 75 * f], [70 * f, 110 * f]]
    pad = [[0.0, 0.0]]
    prompts = [
        ("one_point", [pt] + pad, [1, -1], "one positive point + SAM's padding point (0,0,-1)"),
        ("two_pos_one_neg", [pt, [50 * f, 25 * f], [150 * f, 125 * f]] + pad, [1, 1, 0, -1],
         "two positive points, one negative, + padding point"),
        ("box", box, [2, 3], "a box (top-left label 2, bottom-right label 3), no padding point"),
        ("box_point", [pt] + box, [1, 2, 3], "a positive point then a box (SAM order: points, then box), no padding point"),
    ]
    best_one_point = None
    low_files = {}
    for name, coords, labels, desc in prompts:
        feeds = sam_onnx.decoder_feeds(emb, coords, labels)
        iou, lowm = low.run(sam_onnx.LOW_RES_OUTPUTS, feeds)
        if name == "one_point":
            k = 1 + int(np.argmax(iou[0, 1:]))  # single click: best of the multimask outputs 1..3
            best_one_point = (k, lowm[:, k : k + 1].copy())
        write_case(f"low_res_{name}", "decoder_low_res.onnx", feeds,
                   {"iou_predictions": iou, "low_res_masks": lowm}, desc, shared_inputs=emb_file)
        low_files[name] = (feeds, iou, lowm)
    k, mask_in = best_one_point
    feeds = sam_onnx.decoder_feeds(emb, [pt] + pad, [1, -1], mask_in)
    iou, lowm = low.run(sam_onnx.LOW_RES_OUTPUTS, feeds)
    write_case("low_res_point_mask", "decoder_low_res.onnx", feeds, {"iou_predictions": iou, "low_res_masks": lowm},
               f"one positive point + padding point, mask_input = low_res_masks[:, {k}] of case low_res_one_point "
               f"(the best of outputs 1..3 by predicted IoU), has_mask_input = 1", shared_inputs=emb_file)
    low_files["point_mask"] = (feeds, iou, lowm)
    mask_file = {"mask_input": "low_res_point_mask/input_mask_input.pb"}

    orig_hw = np.asarray([h, w], np.float32)
    for name, (feeds, iou, lowm) in low_files.items():
        of = dict(feeds, orig_im_size=orig_hw)
        masks, iou2, low2 = orig.run(sam_onnx.ORIG_SIZE_OUTPUTS, of)
        np.testing.assert_allclose(iou2, iou, atol=1e-5)
        np.testing.assert_allclose(low2, lowm, atol=1e-4)
        shared_in = dict(emb_file)
        shared_in.update({k2: f"low_res_{name}/input_{k2}.pb" for k2 in ("point_coords", "point_labels", "has_mask_input")})
        shared_in["mask_input"] = mask_file["mask_input"] if name == "point_mask" else f"low_res_{name}/input_mask_input.pb"
        # low_res_masks / iou_predictions of the orig_size variant are stored once when they are
        # bitwise identical to the low_res variant's (they are, in onnxruntime) to keep the fixture small
        shared_out = {}
        if np.array_equal(low2, lowm):
            shared_out["low_res_masks"] = f"low_res_{name}/output_low_res_masks.pb"
        if np.array_equal(iou2, iou):
            shared_out["iou_predictions"] = f"low_res_{name}/output_iou_predictions.pb"
        write_case(f"orig_size_{name}", "decoder_orig_size.onnx", of,
                   {"masks": masks, "iou_predictions": iou2, "low_res_masks": low2},
                   f"same prompts as low_res_{name}, orig_im_size = ({h}, {w})", shared_inputs=shared_in,
                   shared_outputs=shared_out)

    index = {
        "format": "lamina.golden",
        "version": 1,
        "model_dir": "..",
        "runtime": f"onnxruntime {onnxruntime.__version__}, CPUExecutionProvider, intra_op_num_threads=1",
        "tensor_format": "each .pb is an onnx TensorProto (onnx.numpy_helper.from_array) whose name is the "
                         "model I/O name; file paths are relative to this directory; inputs shared between "
                         "cases (embeddings, prompts) are stored once and referenced",
        "preprocessing": {
            "source_image": "source_tile.png",
            "source_image_origin": TILE.replace("/work/", "") + " (NuInsSeg, CC BY 4.0)",
            "source_size_hw": [h, w],
            "resized_hw": [nh, nw],
            "resize": f"longest side to {S}: new (h, w) = (int(h*s+0.5), int(w*s+0.5)), s = {S}/max(h,w) = "
                      f"({nh}, {nw}); PIL Image.resize((w, h), Image.BILINEAR) on the uint8 RGB image",
            "normalise": "float32 (x - pixel_mean) / pixel_std per RGB channel, after resizing",
            "pixel_mean": sam_onnx.PIXEL_MEAN,
            "pixel_std": sam_onnx.PIXEL_STD,
            "pad": f"zeros (after normalisation) on the bottom/right to {S}x{S}; layout NCHW",
            "point_coords": f"model-input pixels = image pixels * {S}/max(h,w) = image pixels * {f:g}",
        },
        "mask_selection": "M = 4 outputs: index 0 single-mask, 1..3 multimask; SAM's convention: one click "
                          "(+ padding point) -> best of 1..3 by iou_predictions, otherwise 0",
        "cases": cases,
    }
    with open(os.path.join(gdir, "index.json"), "w") as f_:
        json.dump(index, f_, indent=2)
        f_.write("\n")
    print(f"golden: {len(cases)} cases in {gdir}")


# --------------------------------------------------------------------------------------------


def compact_golden(gdir: str) -> None:
    """Keeps the committed fixture small (~9 MB instead of 25): the encoder's 12.6 MB float input is
    stored as the 8-bit PIL-resized image it was computed from (exact: normalisation is recomputed by the
    reader), and the image-size `masks` output is kept for one orig_size case only (the others share
    their iou_predictions/low_res_masks with the low_res cases, which are all checked)."""
    import onnx
    from onnx import numpy_helper
    from PIL import Image

    with open(os.path.join(gdir, "index.json")) as f:
        idx = json.load(f)
    mean = np.asarray(idx["preprocessing"]["pixel_mean"], np.float32).reshape(3, 1, 1)
    std = np.asarray(idx["preprocessing"]["pixel_std"], np.float32).reshape(3, 1, 1)
    nh, nw = idx["preprocessing"].get("resized_hw", [None, None])
    for c in idx["cases"]:
        if c["name"] == "encoder":
            entry = c["inputs"][0]
            t = onnx.TensorProto()
            with open(os.path.join(gdir, entry["file"]), "rb") as f:
                t.ParseFromString(f.read())
            x = numpy_helper.to_array(t)[0]
            u8 = np.clip(np.round(x * std + mean), 0, 255).astype(np.uint8)
            assert np.array_equal(((u8.astype(np.float32) - mean) / std).astype(np.float32)[:, :nh, :nw], x[:, :nh, :nw])
            os.remove(os.path.join(gdir, entry["file"]))
            entry["file"] = "encoder/input_image_resized.png"
            entry["encoding"] = ("8-bit RGB PNG of the resized, unpadded image; the input tensor is (pixel - "
                                 "pixel_mean) / pixel_std in float32, NCHW, zero-padded to the input size")
            Image.fromarray(u8[:, :nh, :nw].transpose(1, 2, 0)).save(os.path.join(gdir, entry["file"]), optimize=True)
        elif c["name"].startswith("orig_size_") and c["name"] != "orig_size_one_point":
            for o in [o for o in c["outputs"] if o["name"] == "masks"]:
                os.remove(os.path.join(gdir, o["file"]))
                c["outputs"].remove(o)
            c["note"] = "masks not stored (size); checked in orig_size_one_point"
    with open(os.path.join(gdir, "index.json"), "w") as f:
        json.dump(idx, f, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="make models/fixtures/sam-tiny (+ golden outputs)")
    ap.add_argument("--mobile-sam-random", action="store_true", help="make a random-weight full MobileSAM")
    ap.add_argument("--out", help="output dir (default: models/fixtures/sam-tiny or models/generated/mobile-sam-random)")
    ap.add_argument("--no-golden", action="store_true", help="with --tiny: skip the golden outputs")
    ap.add_argument("--tract", action="store_true", help="also check the files with tract's Python bindings")
    args = ap.parse_args()
    if args.tiny == args.mobile_sam_random:
        ap.error("give exactly one of --tiny, --mobile-sam-random")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if args.tiny:
        out = args.out or os.path.join(MODELS, "fixtures", "sam-tiny")
        sam = build_tiny_sam()
        t = TINY
        source = ("Random weights (torch.manual_seed(0); constant-initialised parameters re-drawn with seed 1234): "
                  f"a reduced SAM built from segment_anything building blocks: ImageEncoderViT(img_size={t['img_size']}, "
                  f"patch_size={t['patch_size']}, embed_dim={t['enc_embed_dim']}, depth={t['enc_depth']}, "
                  f"num_heads={t['enc_heads']}, window_size={t['window_size']}, global_attn_indexes="
                  f"{list(t['global_attn_indexes'])}, use_rel_pos=True, out_chans={t['transformer_dim']}), "
                  f"PromptEncoder(embed_dim={t['transformer_dim']}, mask_in_chans={t['mask_in_chans']}), "
                  f"MaskDecoder(transformer_dim={t['transformer_dim']}, TwoWayTransformer(depth="
                  f"{t['transformer_depth']}, heads={t['transformer_heads']}, mlp_dim={t['transformer_mlp_dim']})). "
                  "A test fixture, not a model: its masks are meaningless. Made by models/tools/make_fixtures.py --tiny.")
        sam_onnx.export_all(sam, t["img_size"], out, "sam-tiny-random", "sam", source,
                            "Apache-2.0 (architecture code from segment-anything); random weights")
        print("timings (1 thread):", sam_onnx.smoke_test(out, sam))
        if not args.no_golden:
            make_golden(out)
            compact_golden(os.path.join(out, "golden"))
    else:
        out = args.out or os.path.join(MODELS, "generated", "mobile-sam-random")
        sam = build_mobile_sam_random()
        source = ("Random weights (torch.manual_seed(0)) in the full MobileSAM architecture (mobile_sam "
                  "sam_model_registry['vit_t']: TinyViT encoder + SAM prompt encoder/mask decoder). For "
                  "benchmarks only, not a model. Made by models/tools/make_fixtures.py --mobile-sam-random.")
        sam_onnx.export_all(sam, 1024, out, "mobile-sam-random", "mobile_sam", source,
                            "Apache-2.0 (architecture code from MobileSAM); random weights")
        print("timings (1 thread):", sam_onnx.smoke_test(out, sam))
    if args.tract:
        for k, v in sam_onnx.tract_check(out).items():
            print(f"tract {k}: {v}")
    for fn in sorted(os.listdir(out)):
        p = os.path.join(out, fn)
        if os.path.isfile(p):
            print(f"  {fn}: {os.path.getsize(p)} bytes")


if __name__ == "__main__":
    main()
