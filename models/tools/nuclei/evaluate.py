"""A Python evaluator following shared/docs/interactive-eval.md (for model selection; the official figures
come from `lamina eval noc`). Clicks are given at pixel centres: image pixel (row r, col c) -> (c + 0.5, r + 0.5).
One click (+ SAM's padding point) -> the multimask output (1..3) with the best predicted IoU; afterwards
output 0, with the previous chosen low-res logits as mask_input. Masks: low-res logits upsampled bilinearly
(half-pixel) to the model input, cropped, resized to the image, > mask_threshold."""
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from .clicks import first_click, next_click
from .model import has_box

MAX_CLICKS = 20
BOX_DECODER = "decoder_box_low_res.onnx"


def upsample(low, s, h, w):
    """low [B,L,L] numpy -> image logits [B,h,w] (as crates/lamina-sam/src/postprocess.rs)."""
    t = torch.from_numpy(np.ascontiguousarray(low))[:, None]
    t = F.interpolate(t, size=(s, s), mode="bilinear", align_corners=False)
    rh, rw = int(h * s / max(h, w) + 0.5), int(w * s / max(h, w) + 0.5)
    t = t[:, :, :rh, :rw]
    if (rh, rw) != (h, w):
        t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
    return t[:, 0].numpy()


class TorchPredictor:
    def __init__(self, model):
        self.m = model

    @torch.no_grad()
    def encode(self, x):
        return self.m.encoder(torch.from_numpy(x))

    @torch.no_grad()
    def decode(self, emb, coords, labels, mask_in, has):
        b = coords.shape[0]
        iou, low = self.m.decoder_for(labels)(emb.expand(b, -1, -1, -1), torch.from_numpy(coords), torch.from_numpy(labels),
                                  torch.from_numpy(mask_in), torch.from_numpy(has))
        return iou.numpy(), low.numpy()


class OrtPredictor:
    """The ONNX files through onnxruntime; prompts with a box go to box_dec_path when the model has one."""

    def __init__(self, enc_path, dec_path, threads=1, box_dec_path=None):
        import onnxruntime as ort
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        self.enc = ort.InferenceSession(enc_path, o, providers=["CPUExecutionProvider"])
        self.dec = ort.InferenceSession(dec_path, o, providers=["CPUExecutionProvider"])
        self.box_dec = (ort.InferenceSession(box_dec_path, o, providers=["CPUExecutionProvider"])
                        if box_dec_path else self.dec)
        self.decode_ms = []

    @classmethod
    def of_folder(cls, folder, threads=1):
        box = os.path.join(folder, BOX_DECODER)
        return cls(os.path.join(folder, "encoder.onnx"), os.path.join(folder, "decoder_low_res.onnx"), threads,
                   box if os.path.exists(box) else None)

    def encode(self, x):
        return self.enc.run(["image_embeddings"], {"image": x})[0]

    def decode(self, emb, coords, labels, mask_in, has):
        ious, lows = [], []
        dec = self.box_dec if has_box(labels) else self.dec
        for i in range(coords.shape[0]):
            t = time.perf_counter()
            iou, low = dec.run(["iou_predictions", "low_res_masks"], {
                "image_embeddings": emb, "point_coords": coords[i:i + 1], "point_labels": labels[i:i + 1],
                "mask_input": mask_in[i:i + 1], "has_mask_input": has[i:i + 1]})
            self.decode_ms.append(1000 * (time.perf_counter() - t))
            ious.append(iou)
            lows.append(low)
        return np.concatenate(ious), np.concatenate(lows)


def embed(pred, img, normalise):
    """The embedding of one uint8 [H,W,3] tile."""
    return pred.encode(normalise(torch.from_numpy(img).permute(2, 0, 1)[None].float()).numpy().astype(np.float32))


def instance_ids(mk):
    return [i for i in range(1, int(mk.max()) + 1) if (mk == i).any()]


def first_choice(iou):
    """After one click, the multimask output (1..3) with the best predicted IoU (SAM's rule, as the engine)."""
    return 1 + np.argmax(iou[:, 1:], axis=1)


def _iou(a, b):
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 1.0


def evaluate(pred, images, masks, normalise, s=256, low_size=128, max_clicks=MAX_CLICKS, box_grow=2,
             stop_iou=0.90, threshold=0.0):
    """images uint8 [n,H,W,3] (H = W = s here), masks int [n,H,W]; a pixel is in the mask where its logit
    > threshold (the manifest's mask_threshold). Returns (summary dict, per-instance rows)."""
    rows = []
    for ti in range(len(images)):
        img, mk = images[ti], masks[ti]
        h, w = mk.shape
        emb = embed(pred, img, normalise)
        ids = instance_ids(mk)
        gts = [mk == i for i in ids]
        n = len(gts)
        zeros = np.zeros((n, 1, low_size, low_size), np.float32)
        rec = [{"tile": ti, "id": i, "area": int(g.sum()),
                "border": bool(g[0].any() or g[-1].any() or g[:, 0].any() or g[:, -1].any())}
               for i, g in zip(ids, gts)]
        # boxes
        for name, grow in (("box_tight", 0), ("box_loose", box_grow)):
            coords = np.zeros((n, 2, 2), np.float32)
            for j, g in enumerate(gts):
                ys, xs = np.nonzero(g)
                coords[j] = [[xs.min() - grow, ys.min() - grow], [xs.max() + 1 + grow, ys.max() + 1 + grow]]
            labels = np.tile(np.array([[2, 3]], np.float32), (n, 1))
            _, low = pred.decode(emb, coords, labels, zeros, np.zeros(n, np.float32))
            logit = upsample(low[:, 0], s, h, w)
            for j in range(n):
                rec[j][name] = _iou(logit[j] > threshold, gts[j])
        # clicks
        clicks = [[] for _ in range(n)]
        preds = [np.zeros_like(g) for g in gts]
        prev = zeros.copy()
        ious = np.full((n, max_clicks + 1), np.nan)
        active = list(range(n))
        for k in range(1, max_clicks + 1):
            for j in active:
                if k == 1:
                    r, c = first_click(gts[j])
                    clicks[j].append((c + 0.5, r + 0.5, 1.0))
                else:
                    nc = next_click(gts[j], preds[j])
                    clicks[j].append((nc[1] + 0.5, nc[0] + 0.5, 1.0 if nc[2] else 0.0) if nc else (0.0, 0.0, -1.0))
            b = len(active)
            coords = np.zeros((b, k + 1, 2), np.float32)
            labels = np.full((b, k + 1), -1.0, np.float32)
            for bi, j in enumerate(active):
                for q, (cx, cy, lab) in enumerate(clicks[j]):
                    coords[bi, q] = [cx, cy]
                    labels[bi, q] = lab
            has = np.full(b, 0.0 if k == 1 else 1.0, np.float32)
            iou, low = pred.decode(emb, coords, labels, prev[active], has)
            sel = first_choice(iou) if k == 1 else np.zeros(b, int)
            chosen = low[np.arange(b), sel]
            logit = upsample(chosen, s, h, w)
            for bi, j in enumerate(active):
                prev[j, 0] = chosen[bi]
                preds[j] = logit[bi] > threshold
                ious[j, k] = _iou(preds[j], gts[j])
            active = [j for j in active if k < 5 or np.nanmax(ious[j, 1:k + 1]) < stop_iou]
            if not active:
                break
        for j in range(n):
            rec[j]["ious"] = ious[j, 1:]
        rows.extend(rec)
    return summarise(rows, max_clicks), rows


def _noc(ious, t, max_clicks):
    hit = np.nonzero(np.nan_to_num(ious, nan=-1) >= t)[0]
    return (int(hit[0]) + 1, False) if len(hit) else (max_clicks, True)


def summarise(rows, max_clicks=MAX_CLICKS):
    if not rows:
        return {}
    out = {"instances": len(rows)}
    for t in (0.85, 0.90):
        r = [_noc(x["ious"], t, max_clicks) for x in rows]
        out[f"NoC@{int(t * 100)}"] = float(np.mean([a for a, _ in r]))
        out[f"NoF@{int(t * 100)}"] = int(sum(f for _, f in r))
    for k in (1, 3, 5):
        out[f"mIoU@{k}"] = float(np.mean([x["ious"][k - 1] for x in rows]))
    out["box_tight"] = float(np.mean([x["box_tight"] for x in rows]))
    out["box_loose"] = float(np.mean([x["box_loose"] for x in rows]))
    return out


def breakdown(rows, max_clicks=MAX_CLICKS):
    groups = {
        "area<200": [x for x in rows if x["area"] < 200],
        "200-600": [x for x in rows if 200 <= x["area"] <= 600],
        "area>600": [x for x in rows if x["area"] > 600],
        "border": [x for x in rows if x["border"]],
        "interior": [x for x in rows if not x["border"]],
    }
    return {k: summarise(v, max_clicks) for k, v in groups.items()}
