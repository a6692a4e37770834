"""Loading the nuclei tile sets (shared/data/FORMAT.md) and augmenting them for training."""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

PIXEL_MEAN = [123.675, 116.28, 103.53]
PIXEL_STD = [58.395, 57.12, 57.375]
# skimage.color.rgb_from_hed (Ruifrok & Johnston), rows H, E, D
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], np.float32)
RGB_FROM_HED = RGB_FROM_HED / np.linalg.norm(RGB_FROM_HED, axis=1, keepdims=True)
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED).astype(np.float32)


def load_set(root):
    """All manifest items of a set: (ids, uint8 images [n,256,256,3], int32 masks [n,256,256])."""
    with open(os.path.join(root, "manifest.json")) as f:
        man = json.load(f)
    ids, imgs, masks = [], [], []
    for it in man["items"]:
        ids.append(it["id"])
        imgs.append(np.asarray(Image.open(os.path.join(root, it["image"])).convert("RGB")))
        masks.append(np.array(Image.open(os.path.join(root, it["mask"]))).astype(np.int32))
    return ids, np.stack(imgs), np.stack(masks)


def normalise(rgb_float_nchw):
    mean = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
    return (rgb_float_nchw - mean) / std


def _colour(t, rng):
    """HED stain jitter + brightness/contrast/saturation on a float RGB [1,3,H,W] 0..255 tensor."""
    rgb = t.clamp(1.0, 255.0) / 255.0
    od = -torch.log(rgb)                                   # 1,3,H,W
    hed = torch.einsum("bchw,cd->bdhw", od, torch.from_numpy(HED_FROM_RGB))
    alpha = torch.from_numpy(rng.uniform(0.9, 1.1, 3).astype(np.float32)).view(1, 3, 1, 1)
    beta = torch.from_numpy(rng.uniform(-0.03, 0.03, 3).astype(np.float32)).view(1, 3, 1, 1)
    hed = hed * alpha + beta
    od = torch.einsum("bchw,cd->bdhw", hed, torch.from_numpy(RGB_FROM_HED))
    t = torch.exp(-od) * 255.0
    grey = t.mean(1, keepdim=True)
    t = grey + (t - grey) * rng.uniform(0.85, 1.15)       # saturation
    m = t.mean()
    t = m + (t - m) * rng.uniform(0.9, 1.1) + rng.uniform(-12, 12)   # contrast, brightness
    return t.clamp(0, 255)


def augment(img, mask, rng, smin=0.6, smax=1.2, size=256):
    """One tile -> (normalised float [3,S,S], int mask [S,S]) with rot90/flip, scale, colour jitter."""
    k = int(rng.integers(4))
    img = np.rot90(img, k)
    mask = np.rot90(mask, k)
    if rng.random() < 0.5:
        img, mask = img[:, ::-1], mask[:, ::-1]
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    mk = torch.from_numpy(np.ascontiguousarray(mask))[None, None].float()
    s = rng.uniform(smin, smax)
    n = int(round(size * s))
    if n != size:
        t = F.interpolate(t, size=(n, n), mode="bilinear", align_corners=False, antialias=n < size)
        mk = F.interpolate(mk, size=(n, n), mode="nearest")
    t = _colour(t, rng)
    t = normalise(t)
    if n >= size:
        y, x = rng.integers(n - size + 1, size=2)
        t = t[:, :, y:y + size, x:x + size]
        mk = mk[:, :, y:y + size, x:x + size]
    else:
        p = size - n
        if rng.random() < 0.5:       # as the engine pads a non-square image: zeros, bottom/right
            t = F.pad(t, (0, p, 0, p))
            mk = F.pad(mk, (0, p, 0, p))
        else:                         # reflect, random placement
            y, x = rng.integers(p + 1, size=2)
            t = F.pad(t, (x, p - x, y, p - y), mode="reflect")
            mk = F.pad(mk, (x, p - x, y, p - y))
    return t[0].contiguous(), mk[0, 0].long()
