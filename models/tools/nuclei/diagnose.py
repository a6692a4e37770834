"""Where the first click's mask goes wrong, as shares of each instance's union (prediction ∪ truth):

- fp_other: predicted pixels that belong to another nucleus (touching nuclei merged);
- fp_bg: predicted pixels on background (boundary drawn too far out);
- fn_fg: missed pixels the encoder's foreground head does call nucleus (this nucleus not separated out);
- fn_bg: missed pixels the foreground head calls background (boundary drawn too far in).
1 - IoU is their sum. Also the foreground head's own IoU against the union of all nuclei ("semantic"), and
"oracle": the IoU each nucleus would get from the foreground head cut to the nucleus' Voronoi cell, i.e. with
perfect separation. Run on training tiles too: a model that fits them no better than dev underfits (for
want of capacity, or against the labels' own noise) rather than overfits. And, for scale, what the data itself allows: "grow1" and "shrink1", the IoU of each nucleus with
itself grown or shrunk by one pixel (a boundary drawn one pixel off all round).
"""
import numpy as np
import torch
from scipy.ndimage import binary_dilation, binary_erosion, distance_transform_edt

from .clicks import first_click
from .evaluate import embed, first_choice, instance_ids, upsample
from .model import C_DENSE, C_DET, C_SEM, E, depth_to_space

TERMS = ("iou", "fp_other", "fp_bg", "fn_fg", "fn_bg", "oracle", "grow1", "shrink1")


def _iou(a, b):
    return (a & b).sum() / float((a | b).sum())


def first_click_errors(pred, images, masks, normalise, s=256):
    """pred: an evaluate.*Predictor; images uint8 [n,s,s,3], masks int [n,s,s]. Returns (rows, semantic IoU)."""
    rows, inter, union = [], 0, 0
    for img, mk in zip(images, masks):
        emb = np.asarray(embed(pred, img, normalise))
        dense = depth_to_space(torch.from_numpy(emb[:, C_SEM + 4 * C_DET:]), C_DENSE, E, 4)
        fg = upsample(dense[:, 0].numpy(), s, s, s)[0] > 0
        nuclei = mk > 0
        inter += int((fg & nuclei).sum())
        union += int((fg | nuclei).sum())
        _, (iy, ix) = distance_transform_edt(mk == 0, return_indices=True)
        cell = mk[iy, ix]                                   # each pixel's nearest nucleus
        ids = instance_ids(mk)
        n = len(ids)
        coords = np.zeros((n, 2, 2), np.float32)
        labels = np.tile(np.array([[1.0, -1.0]], np.float32), (n, 1))
        for j, i in enumerate(ids):
            r, c = first_click(mk == i)
            coords[j, 0] = [c + 0.5, r + 0.5]
        iou, low = pred.decode(emb, coords, labels, np.zeros((n, 1, s // 2, s // 2), np.float32),
                               np.zeros(n, np.float32))
        masks_pred = upsample(low[np.arange(n), first_choice(iou)], s, s, s) > 0
        for j, i in enumerate(ids):
            g, p = mk == i, masks_pred[j]
            u = float((g | p).sum())   # 1 - IoU = the four error terms below
            oracle = fg & (cell == i)
            rows.append({"area": int(g.sum()), "iou": (g & p).sum() / u,
                         "fp_other": (p & nuclei & ~g).sum() / u, "fp_bg": (p & ~nuclei).sum() / u,
                         "fn_fg": (g & ~p & fg).sum() / u, "fn_bg": (g & ~p & ~fg).sum() / u,
                         "oracle": _iou(oracle, g), "grow1": _iou(binary_dilation(g), g),
                         "shrink1": _iou(binary_erosion(g), g)})
    return rows, inter / max(union, 1)


def table(rows):
    """Mean of each term, for all nuclei and per size bucket (the evaluator's)."""
    groups = {"all": rows, "area<200": [r for r in rows if r["area"] < 200],
              "200-600": [r for r in rows if 200 <= r["area"] <= 600],
              "area>600": [r for r in rows if r["area"] > 600]}
    return {k: dict(n=len(v), **{t: round(float(np.mean([r[t] for r in v])), 3) for t in TERMS})
            for k, v in groups.items() if v}
