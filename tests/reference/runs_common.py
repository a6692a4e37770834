"""Shared helpers of the model-run reference checks (check_metrics.py, check_yolo.py).

Written from docs/model-runs.md, docs/bundle.md and the published COCO / ultralytics formats, not from
Lamina's Rust. Only numpy, pycocotools and the standard library.
"""

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

# PanNuke's five classes (lower case); import-masks puts them in the ontology with "Nucleus (unclassified)".
PANNUKE_NAMES = ["neoplastic", "inflammatory", "connective", "dead", "epithelial"]
# Classes given to the truth by reclassify(), by probability.
CLASS_PROBS = (0.6, 0.3, 0.1)


def run(cmd):
    """Run a command; exit the check with its stderr when it fails. Returns stdout."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"FAILED (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return proc.stdout


def run_proc(cmd):
    """Run a command and return the CompletedProcess whatever its exit status."""
    return subprocess.run(cmd, capture_output=True, text=True)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f)


@contextlib.contextmanager
def quiet_stdout():
    """pycocotools prints progress and the summarize() table; keep the check's output readable."""
    old, sys.stdout = sys.stdout, io.StringIO()
    try:
        yield
    finally:
        sys.stdout = old


def coco_from_dict(dataset):
    with quiet_stdout():
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
    return coco


def coco_from_file(path):
    with quiet_stdout():
        return COCO(path)


def decode(rle):
    """A COCO RLE {size, counts} (counts as str or bytes) to an (h, w) uint8 array."""
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return mask_utils.decode({"size": list(rle["size"]), "counts": counts})


def encode(mask):
    """An (h, w) 0/1 array to a JSON-ready COCO compressed RLE {size, counts: str}."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def pannuke_class_ids(bundle):
    """Ontology ids of the PanNuke classes, in ontology order (matched by name, case-insensitive)."""
    return [c["id"] for c in bundle["ontology"]["classes"] if c["name"].strip().lower() in PANNUKE_NAMES]


def reclassify(bundle, seed=20240611, empty_assets=0):
    """The bundle with every instance's class_id redrawn (fixed seed) among three PanNuke classes with
    uneven probabilities (CLASS_PROBS), so per-class figures and class indices mean something. The three
    are spread over the ontology (1st, 3rd and 5th PanNuke class when there are five) so that class
    index / category id mapping errors show. `empty_assets` > 0 removes every instance of that many
    assets (the last ones in bundle order), giving images without truth. Everything else is kept.
    Returns (new bundle, [chosen class ids], [emptied asset ids])."""
    pannuke = pannuke_class_ids(bundle)
    if len(pannuke) >= 5:
        chosen = [pannuke[0], pannuke[2], pannuke[4]]
    elif len(pannuke) >= 3:
        chosen = pannuke[:3]
    else:
        sys.exit(f"FAILED: the ontology has {len(pannuke)} PanNuke classes, need 3: {bundle['ontology']}")
    used = {inst["class_id"] for inst in bundle["instances"]}
    if len(used) != 1:
        print(f"note: import-masks gave {len(used)} distinct class ids ({sorted(used)}), expected 1")
    rng = np.random.default_rng(seed)
    out = json.loads(json.dumps(bundle))
    emptied = [a["id"] for a in out["assets"][len(out["assets"]) - empty_assets:]] if empty_assets else []
    out["instances"] = [i for i in out["instances"] if i["asset_id"] not in emptied]
    draws = rng.choice(len(chosen), size=len(out["instances"]), p=CLASS_PROBS)
    for inst, k in zip(out["instances"], draws):
        inst["class_id"] = chosen[int(k)]
    return out, chosen, emptied


# ---------------------------------------------------------------- morphology with numpy shifts only

def shift(m, dy, dx):
    """m shifted by (dy, dx) with zero fill (no wrap-around)."""
    h, w = m.shape
    out = np.zeros_like(m)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    if h - abs(dy) > 0 and w - abs(dx) > 0:
        out[yd, xd] = m[ys, xs]
    return out


CROSS = [(0, 1), (0, -1), (1, 0), (-1, 0)]
SQUARE = CROSS + [(1, 1), (1, -1), (-1, 1), (-1, -1)]


def dilate(m, offsets=CROSS):
    m = m.astype(bool)
    out = m.copy()
    for dy, dx in offsets:
        out |= shift(m, dy, dx)
    return out


def erode(m, offsets=CROSS):
    """Erosion; pixels outside the image count as background."""
    m = m.astype(bool)
    out = m.copy()
    for dy, dx in offsets:
        out &= shift(m, dy, dx)
    return out


def fill_holes(m):
    """Background not 8-connected to the outside becomes foreground (Lamina's foreground is
    4-connected, its background 8-connected; see check_coco.py)."""
    m = m.astype(bool)
    h, w = m.shape
    padded = np.zeros((h + 2, w + 2), bool)
    padded[1:-1, 1:-1] = m
    outside = np.zeros_like(padded)
    outside[0, :] = outside[-1, :] = outside[:, 0] = outside[:, -1] = True
    while True:
        grown = dilate(outside, SQUARE) & ~padded
        if np.array_equal(grown, outside):
            break
        outside = grown
    return ~outside[1:-1, 1:-1]


def components4(m):
    """The 4-connected pieces of m, as boolean masks, largest first (ties: first in raster order of
    their first pixel)."""
    m = m.astype(bool)
    ys, xs = np.nonzero(m)
    if len(ys) == 0:
        return []
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if (y1 - y0, x1 - x0) != m.shape:  # work on the bounding box
        pieces = []
        for p in components4(m[y0:y1, x0:x1]):
            full = np.zeros(m.shape, bool)
            full[y0:y1, x0:x1] = p
            pieces.append(full)
        return pieces
    h, w = m.shape
    todo = set(zip(*(v.tolist() for v in np.nonzero(m))))
    pieces = []
    for start in sorted(todo):  # raster order
        if start not in todo:
            continue
        todo.discard(start)
        stack, piece = [start], [start]
        while stack:
            y, x = stack.pop()
            for dy, dx in CROSS:
                q = (y + dy, x + dx)
                if q in todo:
                    todo.discard(q)
                    stack.append(q)
                    piece.append(q)
        out = np.zeros((h, w), bool)
        out[tuple(np.array(piece).T)] = True
        pieces.append((-len(piece), start, out))
    pieces.sort(key=lambda p: (p[0], p[1]))
    return [p[2] for p in pieces]


def crop_apply(m, fn):
    """Apply fn to the bounding box crop of m (with a 1 px margin) and paste the result back."""
    ys, xs = np.nonzero(m)
    out = np.zeros(m.shape, bool)
    if len(ys) == 0:
        return out
    y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, m.shape[0])
    x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, m.shape[1])
    out[y0:y1, x0:x1] = fn(m[y0:y1, x0:x1])
    return out


def report(failures, summary, limit=60):
    """Print the failures and a one-line status; return the exit code."""
    for f in failures[:limit]:
        print("MISMATCH:", f)
    if len(failures) > limit:
        print(f"... and {len(failures) - limit} more")
    status = "OK" if not failures else f"FAILED ({len(failures)} problems)"
    print(f"{status}: {summary}")
    return 0 if not failures else 1


def workdir(keep):
    """A context manager yielding the working folder: `keep` (created) or a temporary one."""
    import tempfile

    if keep:
        os.makedirs(keep, exist_ok=True)
        return contextlib.nullcontext(os.path.abspath(keep))
    return tempfile.TemporaryDirectory()
