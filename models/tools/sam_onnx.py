"""Shared code for exporting Segment-Anything-family models to Lamina's ONNX contract.

Run by hand (never by CI). See models/tools/README.md for the contract and usage.

The contract (the Rust side preprocesses: resize the longest side to S, normalise with pixel
mean/std, pad bottom/right to SxS):

* encoder.onnx: ``image`` f32 [1,3,S,S] -> ``image_embeddings`` f32 [1,C,E,E]
* decoder_low_res.onnx: ``image_embeddings`` [1,C,E,E], ``point_coords`` [1,N,2] (x, y in
  model-input pixels), ``point_labels`` [1,N] (1 pos, 0 neg, 2 box TL, 3 box BR, -1 padding),
  ``mask_input`` [1,1,4E,4E], ``has_mask_input`` [1] -> ``iou_predictions`` [1,M],
  ``low_res_masks`` [1,M,4E,4E] (logits), M = 4 (index 0 = single-mask output, 1..3 = multimask).
* decoder_orig_size.onnx: same inputs plus ``orig_im_size`` f32 [2] (h, w) -> ``masks``
  [1,M,h,w], ``iou_predictions`` [1,M], ``low_res_masks`` [1,M,4E,4E].

As in SAM's own ONNX export, the decoder does not add SAM's padding point: when there is no box,
the caller appends a point (0, 0) with label -1 (SamPredictor does the same).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PIXEL_MEAN = [123.675, 116.28, 103.53]
PIXEL_STD = [58.395, 57.12, 57.375]
OPSET = 17

DECODER_INPUTS = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"]
LOW_RES_OUTPUTS = ["iou_predictions", "low_res_masks"]
ORIG_SIZE_OUTPUTS = ["masks", "iou_predictions", "low_res_masks"]


# --------------------------------------------------------------------------------------------
# Wrappers
# --------------------------------------------------------------------------------------------


class EncoderWrapper(nn.Module):
    """image [1,3,S,S] (normalised, padded) -> image_embeddings [1,C,E,E]."""

    def __init__(self, sam: nn.Module):
        super().__init__()
        self.image_encoder = sam.image_encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(image)


class _DecoderBase(nn.Module):
    """Prompt embedding + mask decoder, as segment_anything.utils.onnx.SamOnnxModel does it,
    returning all of SAM's mask tokens (no mask selection)."""

    def __init__(self, sam: nn.Module, img_size: int):
        super().__init__()
        self.model = sam
        self.img_size = int(img_size)

    def _embed_points(self, point_coords: torch.Tensor, point_labels: torch.Tensor) -> torch.Tensor:
        pe = self.model.prompt_encoder
        point_coords = point_coords + 0.5
        point_coords = point_coords / self.img_size
        point_embedding = pe.pe_layer._pe_encoding(point_coords)
        point_labels = point_labels.unsqueeze(-1).expand_as(point_embedding)
        point_embedding = point_embedding * (point_labels != -1)
        point_embedding = point_embedding + pe.not_a_point_embed.weight * (point_labels == -1)
        for i in range(pe.num_point_embeddings):
            point_embedding = point_embedding + pe.point_embeddings[i].weight * (point_labels == i)
        return point_embedding

    def _embed_masks(self, input_mask: torch.Tensor, has_mask_input: torch.Tensor) -> torch.Tensor:
        pe = self.model.prompt_encoder
        mask_embedding = has_mask_input * pe.mask_downscaling(input_mask)
        mask_embedding = mask_embedding + (1 - has_mask_input) * pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        return mask_embedding

    def _decode(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        sparse_embedding = self._embed_points(point_coords, point_labels)
        dense_embedding = self._embed_masks(mask_input, has_mask_input)
        masks, scores = self.model.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse_embedding,
            dense_prompt_embeddings=dense_embedding,
        )
        return masks, scores

    def mask_postprocessing(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        """SamOnnxModel.mask_postprocessing, but slicing with tensors (not int()), so that the
        crop follows orig_im_size at run time instead of being frozen at export time."""
        masks = F.interpolate(masks, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        size_f = orig_im_size.to(torch.float32)
        scale = self.img_size / torch.max(size_f)
        prepadded = torch.floor(scale * size_f + 0.5).to(torch.int64)
        masks = masks[..., : prepadded[0], : prepadded[1]]
        orig = orig_im_size.to(torch.int64)
        h, w = orig[0], orig[1]
        masks = F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)
        return masks


class LowResDecoder(_DecoderBase):
    """Variant ``low_res``: -> (iou_predictions [1,M], low_res_masks [1,M,4E,4E])."""

    @torch.no_grad()
    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        masks, scores = self._decode(image_embeddings, point_coords, point_labels, mask_input, has_mask_input)
        return scores, masks


class OrigSizeDecoder(_DecoderBase):
    """Variant ``orig_size``: -> (masks [1,M,h,w], iou_predictions [1,M], low_res_masks)."""

    @torch.no_grad()
    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size):
        masks, scores = self._decode(image_embeddings, point_coords, point_labels, mask_input, has_mask_input)
        upscaled = self.mask_postprocessing(masks, orig_im_size)
        return upscaled, scores, masks


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# Above this many bytes of weights, a model is saved with one external data file (ONNX protobufs
# cannot exceed 2 GB; only SAM ViT-H gets there).
EXTERNAL_DATA_THRESHOLD = 2**31 - 2**24


def _torch_export(module, args, path, input_names, output_names, dynamic_axes=None) -> List[str]:
    """Export with the TorchScript exporter into a scratch directory (for models > 2 GB torch writes
    one external file per tensor there), check it, and write `path` (plus `<name>.data` when the
    weights need external data). Returns the names of the extra files written next to `path`."""
    import tempfile

    import onnx

    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as td:
        tmp = os.path.join(td, "model.onnx")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=UserWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(
                module,
                args,
                tmp,
                export_params=True,
                opset_version=OPSET,
                do_constant_folding=True,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                dynamo=False,
            )
        model = onnx.load(tmp, load_external_data=True)
    extra: List[str] = []
    total = sum(t.ByteSize() for t in model.graph.initializer)
    for old in (path, path + ".data"):
        if os.path.exists(old):
            os.remove(old)
    if total >= EXTERNAL_DATA_THRESHOLD:
        data_name = os.path.basename(path) + ".data"
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=1024)
        extra.append(data_name)
        onnx.checker.check_model(path)
    else:
        onnx.checker.check_model(model)
        onnx.save_model(model, path)
    return extra


def _set_output_shapes(path: str, shapes: Dict[str, Sequence]) -> None:
    """The TorchScript exporter leaves the decoder outputs' dims symbolic ('Reshape..._dim_0') because
    they flow from the dynamic point count; declare the real ones (int = fixed, str = symbolic)."""
    import onnx

    m = onnx.load(path)
    for out in m.graph.output:
        if out.name in shapes:
            dims = out.type.tensor_type.shape.dim
            want = shapes[out.name]
            assert len(dims) == len(want), (out.name, len(dims), want)
            for d, w in zip(dims, want):
                d.Clear()
                if isinstance(w, str):
                    d.dim_param = w
                else:
                    d.dim_value = int(w)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def export_encoder(sam: nn.Module, img_size: int, path: str) -> List[str]:
    enc = EncoderWrapper(sam).eval()
    dummy = torch.randn(1, 3, img_size, img_size, dtype=torch.float32)
    with torch.no_grad():
        return _torch_export(enc, (dummy,), path, ["image"], ["image_embeddings"])


def _decoder_dummy(embed_dim: int, emb_hw: int, with_orig: bool):
    g = torch.Generator().manual_seed(1)
    args = [
        torch.randn(1, embed_dim, emb_hw, emb_hw, generator=g),
        torch.randint(0, 1024, (1, 5, 2), generator=g).to(torch.float32),
        torch.randint(0, 4, (1, 5), generator=g).to(torch.float32),
        torch.randn(1, 1, 4 * emb_hw, 4 * emb_hw, generator=g),
        torch.tensor([1.0]),
    ]
    if with_orig:
        # deliberately odd size so that nothing silently freezes on it
        args.append(torch.tensor([1500.0, 2250.0]))
    return tuple(args)


def export_decoders(sam: nn.Module, img_size: int, embed_dim: int, emb_hw: int, out_dir: str) -> Dict[str, str]:
    points_axes = {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}}
    files = {}
    low = LowResDecoder(sam, img_size).eval()
    p = os.path.join(out_dir, "decoder_low_res.onnx")
    _torch_export(low, _decoder_dummy(embed_dim, emb_hw, False), p, DECODER_INPUTS, LOW_RES_OUTPUTS, points_axes)
    M = int(sam.mask_decoder.num_mask_tokens)
    L = 4 * emb_hw
    _set_output_shapes(p, {"iou_predictions": [1, M], "low_res_masks": [1, M, L, L]})
    files["low_res"] = p
    orig = OrigSizeDecoder(sam, img_size).eval()
    p = os.path.join(out_dir, "decoder_orig_size.onnx")
    axes = dict(points_axes)
    axes["masks"] = {2: "orig_height", 3: "orig_width"}
    _torch_export(orig, _decoder_dummy(embed_dim, emb_hw, True), p, DECODER_INPUTS + ["orig_im_size"],
                  ORIG_SIZE_OUTPUTS, axes)
    _set_output_shapes(p, {"masks": [1, M, "orig_height", "orig_width"], "iou_predictions": [1, M],
                           "low_res_masks": [1, M, L, L]})
    files["orig_size"] = p
    return files


def embedding_shape(sam: nn.Module, img_size: int) -> List[int]:
    with torch.no_grad():
        c = sam.prompt_encoder.embed_dim
        e = sam.prompt_encoder.image_embedding_size
    assert e[0] == e[1], e
    return [1, int(c), int(e[0]), int(e[1])]


def write_manifest(out_dir: str, model_id: str, family: str, img_size: int, emb_shape: Sequence[int],
                   source: str, license: str, encoder_extra: Sequence[str] = ()) -> dict:
    enc = {"file": "encoder.onnx", "sha256": sha256_file(os.path.join(out_dir, "encoder.onnx"))}
    if encoder_extra:
        # Deviation only for models > 2 GB (ViT-H): ONNX cannot hold them in one protobuf.
        enc["external_data"] = [{"file": f, "sha256": sha256_file(os.path.join(out_dir, f))} for f in encoder_extra]
    manifest = {
        "format": "lamina.model",
        "version": 1,
        "id": model_id,
        "family": family,
        "input_size": int(img_size),
        "pixel_mean": PIXEL_MEAN,
        "pixel_std": PIXEL_STD,
        "embedding_shape": [int(x) for x in emb_shape],
        "low_res_mask_size": int(4 * emb_shape[2]),
        "mask_threshold": 0.0,
        "encoder": enc,
        "decoders": [
            {"variant": "low_res", "file": "decoder_low_res.onnx",
             "sha256": sha256_file(os.path.join(out_dir, "decoder_low_res.onnx"))},
            {"variant": "orig_size", "file": "decoder_orig_size.onnx",
             "sha256": sha256_file(os.path.join(out_dir, "decoder_orig_size.onnx"))},
        ],
        "source": source,
        "license": license,
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def export_all(sam: nn.Module, img_size: int, out_dir: str, model_id: str, family: str, source: str,
               license: str) -> dict:
    """Export encoder + both decoder variants + manifest.json into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    sam = sam.eval()
    emb = embedding_shape(sam, img_size)
    t = time.time()
    extra = export_encoder(sam, img_size, os.path.join(out_dir, "encoder.onnx"))
    print(f"encoder exported in {time.time() - t:.1f}s")
    t = time.time()
    export_decoders(sam, img_size, emb[1], emb[2], out_dir)
    print(f"decoders exported in {time.time() - t:.1f}s")
    return write_manifest(out_dir, model_id, family, img_size, emb, source, license, extra)


# --------------------------------------------------------------------------------------------
# onnxruntime checks
# --------------------------------------------------------------------------------------------


def ort_session(path: str, threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def describe_io(path: str) -> dict:
    s = ort_session(path)
    return {
        "inputs": [(i.name, i.shape, i.type) for i in s.get_inputs()],
        "outputs": [(o.name, o.shape, o.type) for o in s.get_outputs()],
    }


def decoder_feeds(emb: np.ndarray, coords, labels, mask_input: Optional[np.ndarray] = None,
                  orig_im_size: Optional[Sequence[float]] = None) -> Dict[str, np.ndarray]:
    low = 4 * emb.shape[2]
    feeds = {
        "image_embeddings": emb.astype(np.float32),
        "point_coords": np.asarray(coords, dtype=np.float32).reshape(1, -1, 2),
        "point_labels": np.asarray(labels, dtype=np.float32).reshape(1, -1),
        "mask_input": (mask_input if mask_input is not None else np.zeros((1, 1, low, low))).astype(np.float32),
        "has_mask_input": np.array([1.0 if mask_input is not None else 0.0], dtype=np.float32),
    }
    if orig_im_size is not None:
        feeds["orig_im_size"] = np.asarray(orig_im_size, dtype=np.float32)
    return feeds


def _time(fn, reps: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def smoke_test(out_dir: str, sam: Optional[nn.Module] = None, reps: int = 3, threads: int = 1) -> dict:
    """Run every file of a model directory in onnxruntime (1 thread by default); check shapes,
    that the two decoder variants agree, that the point count is dynamic, and (if the torch
    model is given) that onnxruntime matches torch. Returns timings in seconds."""
    with open(os.path.join(out_dir, "manifest.json")) as f:
        man = json.load(f)
    S = man["input_size"]
    emb_shape = tuple(man["embedding_shape"])
    E = emb_shape[2]
    for entry in [man["encoder"]] + man["decoders"]:
        assert sha256_file(os.path.join(out_dir, entry["file"])) == entry["sha256"], entry["file"]
    enc = ort_session(os.path.join(out_dir, "encoder.onnx"), threads)
    low = ort_session(os.path.join(out_dir, "decoder_low_res.onnx"), threads)
    orig = ort_session(os.path.join(out_dir, "decoder_orig_size.onnx"), threads)
    rng = np.random.default_rng(0)
    image = rng.standard_normal((1, 3, S, S)).astype(np.float32)
    (emb,) = enc.run(["image_embeddings"], {"image": image})
    assert emb.shape == emb_shape, emb.shape
    timings = {"encoder_s": _time(lambda: enc.run(None, {"image": image}), reps)}
    if sam is not None:
        with torch.no_grad():
            ref = sam.image_encoder(torch.from_numpy(image)).numpy()
        err = float(np.abs(ref - emb).max())
        print(f"  encoder ort vs torch max abs diff {err:.2e} (embedding max abs {np.abs(ref).max():.2e})")
    for n, (coords, labels) in enumerate([
        ([[400, 300], [0, 0]], [1, -1]),
        ([[100, 200], [500, 600], [300, 300], [0, 0]], [1, 1, 0, -1]),
        ([[100, 100], [600, 500]], [2, 3]),
    ]):
        feeds = decoder_feeds(emb, coords, labels)
        iou, lowm = low.run(LOW_RES_OUTPUTS, feeds)
        assert iou.shape == (1, 4) and lowm.shape == (1, 4, 4 * E, 4 * E), (iou.shape, lowm.shape)
        for hw in [(256, 256), (600, 900)]:
            masks, iou2, low2 = orig.run(ORIG_SIZE_OUTPUTS, decoder_feeds(emb, coords, labels, None, hw))
            assert masks.shape == (1, 4, hw[0], hw[1]), masks.shape
            assert np.array_equal(iou, iou2) or np.allclose(iou, iou2, atol=1e-5), np.abs(iou - iou2).max()
            assert np.allclose(lowm, low2, atol=1e-4), np.abs(lowm - low2).max()
            if sam is not None:
                ref = OrigSizeDecoder(sam, S).eval()
                tm, ti, tl = ref(*[torch.from_numpy(v) for v in decoder_feeds(emb, coords, labels, None, hw).values()])
                e = max(float(np.abs(tm.numpy() - masks).max()), float(np.abs(ti.numpy() - iou2).max()),
                        float(np.abs(tl.numpy() - low2).max()))
                scale = float(np.abs(tl.numpy()).max())
                print(f"  decoder case {n} orig {hw}: ort vs torch max abs diff {e:.2e} (logit max abs {scale:.2e})")
    feeds = decoder_feeds(emb, [[400, 300], [0, 0]], [1, -1])
    timings["decoder_low_res_s"] = _time(lambda: low.run(None, feeds), max(reps, 5))
    feeds = decoder_feeds(emb, [[400, 300], [0, 0]], [1, -1], None, (1024, 1024))
    timings["decoder_orig_size_1024_s"] = _time(lambda: orig.run(None, feeds), max(reps, 5))
    return timings


def pin_orig_im_size(src: str, dst: str, orig_im_size=(256.0, 256.0)) -> None:
    """Write a copy of an orig_size decoder with orig_im_size replaced by a constant (what the Rust
    loader does at load time, done here on the ONNX graph for checking with tract's Python API)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(src)
    inp = [i for i in m.graph.input if i.name == "orig_im_size"][0]
    m.graph.input.remove(inp)
    m.graph.initializer.append(numpy_helper.from_array(np.asarray(orig_im_size, dtype=np.float32), "orig_im_size"))
    # drop output shape symbols tied to the old input
    onnx.save(m, dst)


def tract_check(out_dir: str, orig_im_size=(256.0, 256.0), atol: float = 1e-3) -> dict:
    """Optional: load, optimise and run each file with tract (the `tract` Python bindings, same
    tract version as the engine) and compare with onnxruntime on one random input. orig_size is
    checked with orig_im_size pinned to a constant, as the Rust side loads it."""
    try:
        import tract  # type: ignore
    except ImportError:
        return {"tract": "not installed (pip install tract==0.23.9)"}
    import tempfile

    with open(os.path.join(out_dir, "manifest.json")) as f:
        man = json.load(f)
    S, emb_shape, low = man["input_size"], man["embedding_shape"], man["low_res_mask_size"]
    C, E = emb_shape[1], emb_shape[2]
    rng = np.random.default_rng(0)
    image = rng.standard_normal((1, 3, S, S)).astype(np.float32)
    emb = ort_session(os.path.join(out_dir, "encoder.onnx")).run(None, {"image": image})[0]
    feeds = decoder_feeds(emb, [[400, 300], [200, 100], [0, 0]], [1, 0, -1])
    res = {}

    def check(name, path, facts, inputs, ort_path, ort_feeds):
        try:
            t = time.time()
            m = tract.onnx().load(path)
            for i, fact in enumerate(facts):
                m.set_input_fact(i, fact)
            r = m.into_model().into_runnable()
            load_s = time.time() - t
            t = time.time()
            outs = [o.to_numpy() for o in r.run(inputs)]
            run_s = time.time() - t
            refs = ort_session(ort_path).run(None, ort_feeds)
            diffs = [float(np.abs(a - b).max()) for a, b in zip(outs, refs)]
            ok = all(a.shape == b.shape for a, b in zip(outs, refs)) and max(diffs) <= atol
            res[name] = (f"{'ok' if ok else 'MISMATCH'}: load+optimise {load_s:.1f}s, run {run_s:.3f}s, "
                         f"max abs diff vs onnxruntime {max(diffs):.2e}")
        except Exception as e:  # noqa: BLE001
            res[name] = "FAILED: " + " | ".join(str(e).splitlines()[:3])[:400]

    enc_path = os.path.join(out_dir, "encoder.onnx")
    check("encoder.onnx", enc_path, [f"{1},3,{S},{S},f32"], [image], enc_path, {"image": image})
    dec_facts = [f"1,{C},{E},{E},f32", "1,N,2,f32", "1,N,f32", f"1,1,{low},{low},f32", "1,f32"]
    low_path = os.path.join(out_dir, "decoder_low_res.onnx")
    check("decoder_low_res.onnx", low_path, dec_facts, [feeds[k] for k in DECODER_INPUTS], low_path, feeds)
    orig_path = os.path.join(out_dir, "decoder_orig_size.onnx")
    with tempfile.TemporaryDirectory() as td:
        pinned = os.path.join(td, "pinned.onnx")
        pin_orig_im_size(orig_path, pinned, orig_im_size)
        of = dict(feeds, orig_im_size=np.asarray(orig_im_size, dtype=np.float32))
        check(f"decoder_orig_size.onnx (orig_im_size pinned to {orig_im_size})", pinned, dec_facts,
              [feeds[k] for k in DECODER_INPUTS], orig_path, of)
    return res
