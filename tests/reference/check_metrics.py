#!/usr/bin/env python3
"""Independent check of `lamina metrics` against pycocotools and a numpy reimplementation of the
definitions in docs/model-runs.md (written from the doc and the papers, not from Lamina's Rust).

Usage:
    python3 tests/reference/check_metrics.py --data ../shared/data/nuinsseg-dev --lamina target/debug/lamina [--keep DIR]
    python3 tests/reference/check_metrics.py --self-test      # the reference functions on hand-made cases

Steps:
 1. `lamina import-masks` on the set; the truth is given three PanNuke classes at random (fixed seed,
    probabilities 0.6 / 0.3 / 0.1) and the last two images lose their truth (images with predictions
    only) -> gt.json.
 2. `lamina export coco gt.json` (RLE): its image / category / annotation ids are checked against
    gt.json's order (docs/model-runs.md, "COCO ids") before they are used.
 3. Predictions made from the truth with a fixed seed: missed nuclei, shifted / dilated / eroded masks,
    a few badly placed ones (IoU < 0.5), wrong classes (including a class without truth), false
    positive discs, duplicates of a nucleus (some identical, to exercise the tie rule), scores with
    ties, a few with IoU exactly 0.5 or 0.6 (the thresholds: not a match), all in a shuffled file order
    -> results.json (COCO results, RLE).
 4. `lamina metrics --json` at (IoU 0.5, score 0.0) and (IoU 0.6, score 0.3).
 5. `map` / `ap50` (overall and per class) against pycocotools' COCOeval (segm), to 1e-6; every other
    figure, n_gt / n_pred and the confusion matrix against the numpy reference here, to 1e-9 / exactly.
    The predictions must not be trivial (0.3 < f1 < 0.98, map < 0.95), so the check can fail.
 6. Bad predictions (unknown image, malformed RLE, score outside [0, 1], unknown category, a mask of the
    wrong size, several problems at once): `lamina metrics` must exit non-zero, say what is wrong on
    stderr and not panic.
Exits non-zero on any mismatch.

Reference definitions (docs/model-runs.md, "Metrics"): per image, truth (bundle instance order) and
predictions (results file order, after dropping scores below the threshold) are matched one to one,
highest IoU first, among pairs with IoU strictly greater than the threshold, ties to the lower truth
index then the lower prediction index. Overall figures match regardless of class; each class's figures
use only that class's truth and predictions. PQ / DQ / SQ after Kirillov et al. 2019 pooled over images;
bPQ / mPQ as the doc defines them (PanNuke); AJI after Kumar et al. 2017 with HoVer-Net's
get_fast_aji convention (a truth nucleus that no prediction overlaps does not consume a prediction).
"""

import argparse
import json
import os
import sys

import numpy as np
from pycocotools.cocoeval import COCOeval

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runs_common as rc  # noqa: E402

TOL = 1e-9          # figures from the numpy reference (relative or absolute)
TOL_COCO = 1e-6     # map / ap50 against pycocotools
SEED_CLASSES = 20240611
SEED_PREDS = 7331
N_EMPTY_IMAGES = 2  # the last images of the bundle lose their truth
CONFIGS = [(0.5, 0.0), (0.6, 0.3)]
TOP_KEYS = ["precision", "recall", "f1", "mean_iou", "dice", "aji", "pq", "dq", "sq", "bpq", "mpq",
            "map", "ap50", "n_gt", "n_pred"]
CLASS_KEYS = ["precision", "recall", "f1", "mean_iou", "dice", "pq", "dq", "sq", "aji", "map", "ap50",
              "n_gt", "n_pred"]
COCO_KEYS = {"map", "ap50"}
INT_KEYS = {"n_gt", "n_pred"}
# Means over the matched pairs: the doc does not say what they are when there is no pair; the reference
# says 0 and accepts null from Lamina in that case.
PAIR_MEANS = {"mean_iou", "dice", "sq"}


# =========================================================================== the numpy reference

def overlaps(truth, preds):
    """Pixel counts: inter[i, j] = |T_i & P_j|, and the areas of the truth and prediction masks."""
    at = np.array([int(t.sum()) for t in truth], dtype=np.int64)
    ap = np.array([int(p.sum()) for p in preds], dtype=np.int64)
    inter = np.zeros((len(truth), len(preds)), dtype=np.int64)
    if len(truth) and len(preds):
        flat = np.stack([p.ravel() for p in preds])
        for i, t in enumerate(truth):
            inter[i] = flat[:, np.flatnonzero(t.ravel())].sum(axis=1)
    return inter, at, ap


def ious(inter, at, ap):
    union = at[:, None] + ap[None, :] - inter
    return inter / np.maximum(union, 1)


def match(inter, at, ap, thr):
    """One-to-one matching: highest IoU first among pairs with IoU > thr, ties to the lower truth index,
    then the lower prediction index. Returns [(i, j)]. IoUs are compared as f64 quotients of pixel
    counts (distinct fractions of counts < 2^26 give distinct doubles, so ties are exact)."""
    iou = ious(inter, at, ap)
    cand = [(float(iou[i, j]), int(i), int(j)) for i, j in np.argwhere(iou > thr)]
    cand.sort(key=lambda c: (-c[0], c[1], c[2]))
    used_t, used_p, pairs = set(), set(), []
    for _, i, j in cand:
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
            pairs.append((i, j))
    return pairs


class Counts:
    """TP / FP / FN and the sums over matched pairs, poolable over images."""

    def __init__(self):
        self.tp = self.fp = self.fn = 0
        self.iou_sum = self.dice_sum = 0.0

    def add(self, inter, at, ap, pairs):
        self.tp += len(pairs)
        self.fp += len(ap) - len(pairs)
        self.fn += len(at) - len(pairs)
        for i, j in pairs:
            self.iou_sum += float(inter[i, j]) / float(at[i] + ap[j] - inter[i, j])
            self.dice_sum += 2.0 * float(inter[i, j]) / float(at[i] + ap[j])
        return self

    def figures(self):
        tp, fp, fn = self.tp, self.fp, self.fn
        div = lambda a, b: a / b if b else 0.0  # noqa: E731
        sq = div(self.iou_sum, tp)
        dq = div(tp, tp + fp / 2 + fn / 2)
        return {
            "precision": div(tp, tp + fp), "recall": div(tp, tp + fn), "f1": div(2 * tp, 2 * tp + fp + fn),
            "mean_iou": sq, "dice": div(self.dice_sum, tp), "dq": dq, "sq": sq, "pq": dq * sq,
        }


def aji_image(inter, at, ap):
    """Kumar et al. 2017 AJI of one image, HoVer-Net get_fast_aji convention; None without truth and
    predictions."""
    nt, npred = inter.shape
    if nt == 0 and npred == 0:
        return None
    c = u = 0
    used = set()
    for i in range(nt):
        if npred == 0 or inter[i].max() == 0:
            u += at[i]  # no prediction overlaps: nothing consumed
            continue
        iou = inter[i] / (at[i] + ap - inter[i])
        j = int(np.argmax(iou))  # first on ties; may already be used by another truth nucleus
        c += inter[i, j]
        u += at[i] + ap[j] - inter[i, j]
        used.add(j)
    u += sum(int(ap[j]) for j in range(npred) if j not in used)
    return float(c) / float(u)


def sub(inter, at, ap, ti, pi):
    return inter[np.ix_(ti, pi)], at[ti], ap[pi]


def reference_metrics(images, class_names, thr):
    """The figures of docs/model-runs.md over `images`: dicts with 'truth', 'tcls', 'preds', 'pcls'
    (predictions already filtered by score, in file order). Returns the same shape as Lamina's JSON,
    without map / ap50."""
    n_cls = len(class_names)
    overall = Counts()
    per_class = [Counts() for _ in range(n_cls)]
    n_gt_c, n_pred_c = np.zeros(n_cls, int), np.zeros(n_cls, int)
    bpq, mpq, aji = [], [], []
    aji_c = [[] for _ in range(n_cls)]
    confusion = {}
    n_boundary = 0
    for img in images:
        if "inter" not in img:
            img["inter"], img["at"], img["ap"] = overlaps(img["truth"], img["preds"])
        inter, at, ap = img["inter"], img["at"], img["ap"]
        tcls, pcls = np.array(img["tcls"], int), np.array(img["pcls"], int)
        n_boundary += int((ious(inter, at, ap) == thr).sum()) if inter.size else 0
        pairs = match(inter, at, ap, thr)
        img_counts = Counts().add(inter, at, ap, pairs)
        overall.add(inter, at, ap, pairs)
        for i, j in pairs:
            key = (class_names[tcls[i]], class_names[pcls[j]])
            confusion[key] = confusion.get(key, 0) + 1
        if len(at) or len(ap):
            bpq.append(img_counts.figures()["pq"])
            aji.append(aji_image(inter, at, ap))
        img_mpq = []
        for k in range(n_cls):
            ti, pi = np.flatnonzero(tcls == k), np.flatnonzero(pcls == k)
            n_gt_c[k] += len(ti)
            n_pred_c[k] += len(pi)
            if len(ti) == 0 and len(pi) == 0:
                continue
            s_inter, s_at, s_ap = sub(inter, at, ap, ti, pi)
            c_pairs = match(s_inter, s_at, s_ap, thr)
            c_counts = Counts().add(s_inter, s_at, s_ap, c_pairs)
            per_class[k].add(s_inter, s_at, s_ap, c_pairs)
            aji_c[k].append(aji_image(s_inter, s_at, s_ap))
            if len(ti):
                img_mpq.append(c_counts.figures()["pq"])
        if len(at):
            mpq.append(float(np.mean(img_mpq)))
    mean = lambda v: float(np.mean(v)) if v else 0.0  # noqa: E731
    out = overall.figures()
    out.update(bpq=mean(bpq), mpq=mean(mpq), aji=mean(aji),
               n_gt=int(sum(len(i["truth"]) for i in images)), n_pred=int(sum(len(i["preds"]) for i in images)))
    out["classes"] = {}
    for k, name in enumerate(class_names):
        if n_gt_c[k] == 0 and n_pred_c[k] == 0:
            continue
        figs = per_class[k].figures()
        figs.update(aji=mean(aji_c[k]), n_gt=int(n_gt_c[k]), n_pred=int(n_pred_c[k]))
        figs["_no_pairs"] = per_class[k].tp == 0
        out["classes"][name] = figs
    out["_no_pairs"] = overall.tp == 0
    out["confusion"] = confusion
    out["_boundary_pairs"] = n_boundary
    return out


def coco_ap(coco_gt, results, class_names):
    """pycocotools' segm AP@[.5:.95] and AP@.5, overall and per category name (None = no truth)."""
    if not results:
        return None
    with rc.quiet_stdout():
        coco_dt = coco_gt.loadRes(json.loads(json.dumps(results)))  # loadRes adds keys: give it a copy
        ev = COCOeval(coco_gt, coco_dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]  # [T, R, K, A, M]
    area_all = list(ev.params.areaRngLbl).index("all")
    mdet = list(ev.params.maxDets).index(100)
    cats = {c["id"]: c["name"] for c in coco_gt.dataset["categories"]}

    def mean_valid(a):
        a = a[a > -1]
        return float(a.mean()) if a.size else None

    out = {"map": None if ev.stats[0] == -1 else float(ev.stats[0]),
           "ap50": None if ev.stats[1] == -1 else float(ev.stats[1]), "classes": {}}
    t50 = int(np.flatnonzero(np.isclose(ev.params.iouThrs, 0.5))[0])
    for k, cat_id in enumerate(ev.params.catIds):
        out["classes"][cats[cat_id]] = {"map": mean_valid(prec[:, :, k, area_all, mdet]),
                                        "ap50": mean_valid(prec[t50, :, k, area_all, mdet])}
    return out


# =========================================================================== the inputs

def check_coco_ids(bundle, coco, failures):
    """docs/model-runs.md: images 1.. in asset order, categories 1.. in ontology order, annotations 1..
    in instance order. Returns (image id -> asset index, category id -> class index)."""
    assets, classes = bundle["assets"], bundle["ontology"]["classes"]
    img_of = {}
    for k, im in enumerate(coco["images"]):
        if k < len(assets) and im["id"] == k + 1 and im["file_name"] == assets[k]["name"]:
            img_of[im["id"]] = k
        else:
            failures.append(f"COCO export: image #{k} is {im.get('id')}/{im.get('file_name')}, expected "
                            f"{k + 1}/{assets[k]['name'] if k < len(assets) else '(none)'}")
            names = [a["name"] for a in assets]
            if im.get("file_name") in names:
                img_of[im["id"]] = names.index(im["file_name"])
    if len(coco["images"]) != len(assets):
        failures.append(f"COCO export: {len(coco['images'])} images, bundle has {len(assets)} assets")
    cat_of = {}
    for k, cat in enumerate(coco["categories"]):
        if k < len(classes) and cat["id"] == k + 1 and cat["name"] == classes[k]["name"]:
            cat_of[cat["id"]] = k
        else:
            failures.append(f"COCO export: category #{k} is {cat}, expected id {k + 1} "
                            f"'{classes[k]['name'] if k < len(classes) else '(none)'}'")
            names = [c["name"] for c in classes]
            if cat.get("name") in names:
                cat_of[cat["id"]] = names.index(cat["name"])
    if len(coco["categories"]) != len(classes):
        failures.append(f"COCO export: {len(coco['categories'])} categories, ontology has {len(classes)}")
    asset_index = {a["id"]: k for k, a in enumerate(assets)}
    class_index = {c["id"]: k for k, c in enumerate(classes)}
    anns = coco["annotations"]
    if len(anns) != len(bundle["instances"]):
        failures.append(f"COCO export: {len(anns)} annotations, bundle has {len(bundle['instances'])} instances")
    for k, (ann, inst) in enumerate(zip(anns, bundle["instances"])):
        want = (k + 1, asset_index[inst["asset_id"]] + 1, class_index[inst["class_id"]] + 1, inst["mask"]["counts"])
        got = (ann["id"], ann["image_id"], ann["category_id"], ann["segmentation"].get("counts"))
        if got != want:
            failures.append(f"COCO export: annotation #{k} (id, image, category, counts) = {got[:3]}, "
                            f"expected {want[:3]} (counts equal: {got[3] == want[3]})")
            break
    return img_of, cat_of


def truth_images(bundle):
    """Per asset (bundle order): decoded truth masks and class indices, in bundle instance order."""
    class_index = {c["id"]: k for k, c in enumerate(bundle["ontology"]["classes"])}
    images = [{"h": a["height"], "w": a["width"], "truth": [], "tcls": []} for a in bundle["assets"]]
    asset_index = {a["id"]: k for k, a in enumerate(bundle["assets"])}
    for inst in bundle["instances"]:
        img = images[asset_index[inst["asset_id"]]]
        img["truth"].append(rc.decode(inst["mask"]).astype(bool))
        img["tcls"].append(class_index[inst["class_id"]])
    return images


def disc(h, w, cy, cx, r):
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def at_threshold(m, rng):
    """A prediction inside truth m with IoU exactly 0.5 or 0.6 (the first pixels of m in column-major
    order), to test "strictly greater"; None when m's area does not allow it."""
    area = int(m.sum())
    fractions = [f for f in (0.5, 0.6) if (area * round(f * 10)) % 10 == 0]
    if not fractions:
        return None
    keep = area * round(float(rng.choice(fractions)) * 10) // 10
    flat = m.T.ravel()
    idx = np.flatnonzero(flat)[:keep]
    out = np.zeros_like(flat)
    out[idx] = True
    return out.reshape(m.T.shape).T


def perturb(m, rng, big_p=0.06):
    """A plausible prediction of truth mask m: small shift and/or 1-px dilation / erosion; sometimes a
    big displacement (IoU mostly < 0.5)."""
    if rng.random() < big_p:
        d = rng.integers(4, 8, size=2) * rng.choice([-1, 1], size=2)
        return rc.erode(rc.shift(m, int(d[0]), int(d[1])))
    dy, dx = (int(v) for v in rng.integers(-2, 3, size=2))
    out = rc.shift(m, dy, dx)
    op = rng.random()
    if op < 0.25:
        out = rc.dilate(out)
    elif op < 0.5:
        out = rc.erode(out)
    return out.astype(bool)


def score(rng, lo=0.05, hi=1.0):
    s = float(rng.uniform(lo, hi))
    if rng.random() < 0.3:
        s = round(s, 1)  # ties (and exact values such as 0.3, the second configuration's threshold)
    return min(max(s, lo), 1.0)


def make_predictions(images, image_ids, cat_ids, used_classes, spare_classes, seed):
    """COCO results from the truth (see the module docstring). image_ids[k] / cat_ids[c] are the COCO
    ids of asset k / class c."""
    rng = np.random.default_rng(seed)
    out = []

    def emit(k, m, cls, s):
        if m.any():
            out.append({"image_id": image_ids[k], "category_id": cat_ids[cls],
                        "segmentation": rc.encode(m), "score": s})

    def other_class(cls):
        if spare_classes and rng.random() < 0.25:
            return int(rng.choice(spare_classes))  # a class without truth
        return int(rng.choice([c for c in used_classes if c != cls]))

    for k, img in enumerate(images):
        h, w = img["h"], img["w"]
        for m, cls in zip(img["truth"], img["tcls"]):
            if rng.random() < 0.12:
                continue  # missed
            cat = cls if rng.random() >= 0.1 else other_class(cls)
            p = at_threshold(m, rng) if rng.random() < 0.04 else None
            p = perturb(m, rng) if p is None else p
            s = score(rng)
            emit(k, p, cat, s)
            r = rng.random()
            if r < 0.03:
                emit(k, p.copy(), other_class(cat) if rng.random() < 0.5 else cat, score(rng))  # identical
            elif r < 0.07:
                emit(k, perturb(m, rng, big_p=0.0), cat, score(rng))  # a near duplicate
        for _ in range(int(rng.integers(1, 4))):  # false positives
            d = disc(h, w, int(rng.integers(0, h)), int(rng.integers(0, w)), int(rng.integers(3, 10)))
            emit(k, d, int(rng.choice(used_classes)), score(rng, 0.05, 0.6))
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def prediction_images(images, results, img_of, cat_of, score_thr):
    """`images` with their predictions (score >= threshold, file order within each image)."""
    out = [dict(h=i["h"], w=i["w"], truth=i["truth"], tcls=i["tcls"], preds=[], pcls=[]) for i in images]
    for r in results:
        if r["score"] < score_thr:
            continue
        img = out[img_of[r["image_id"]]]
        img["preds"].append(rc.decode(r["segmentation"]).astype(bool))
        img["pcls"].append(cat_of[r["category_id"]])
    return out


# =========================================================================== comparison

def close(got, want, tol):
    return abs(got - want) <= tol or abs(got - want) <= tol * abs(want)


def compare_value(where, key, got_obj, want, no_pairs, failures):
    """Compare one figure; returns the table cell for Lamina's value."""
    if key not in got_obj:
        failures.append(f"{where}: Lamina's JSON lacks key '{key}'")
        return "MISSING"
    got = got_obj[key]
    if key in INT_KEYS:
        ok = isinstance(got, int) and not isinstance(got, bool) and got == want
    elif want is None or got is None:
        ok = (got is None and want is None) or (got is None and key in PAIR_MEANS and no_pairs)
    else:
        ok = isinstance(got, (int, float)) and not isinstance(got, bool) and \
            close(float(got), want, TOL_COCO if key in COCO_KEYS else TOL)
    if not ok:
        failures.append(f"{where}: {key} = {got!r}, reference {want!r}")
    return got


def fmt(v, digits=6):
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def compare(label, got, ref, failures):
    """Lamina's metrics JSON `got` against the reference `ref`; prints the tables."""
    print(f"\n== {label}")
    print(f"{'figure':<10} {'lamina':>12} {'reference':>12}")
    for key in TOP_KEYS:
        n0 = len(failures)
        cell = compare_value(label, key, got, ref[key], ref["_no_pairs"], failures)
        print(f"{key:<10} {fmt(cell):>12} {fmt(ref[key]):>12}{'   <-- MISMATCH' if len(failures) > n0 else ''}")

    got_classes = got.get("classes")
    if not isinstance(got_classes, dict):
        failures.append(f"{label}: Lamina's JSON lacks the 'classes' object")
        got_classes = {}
    for name in ref["classes"]:
        if name not in got_classes:
            failures.append(f"{label}: class '{name}' has truth or predictions but is missing from 'classes'")
    extra = sorted(set(got_classes) - set(ref["classes"]))
    if extra:
        print(f"note: Lamina lists classes without truth or predictions here: {extra}")
    names = [n for n in ref["classes"] if n in got_classes]
    if names:
        width = max(16, max(len(n) for n in names) + 2)
        print("per class: lamina/reference ('!' = mismatch)")
        print(f"{'figure':<10}" + "".join(f"{n:>{width}}" for n in names))
        for key in CLASS_KEYS:
            row = f"{key:<10}"
            for n in names:
                n0 = len(failures)
                want = ref["classes"][n][key]
                cell = compare_value(f"{label}, class '{n}'", key, got_classes[n], want,
                                     ref["classes"][n]["_no_pairs"], failures)
                mark = "!" if len(failures) > n0 else " "
                row += f"{fmt(cell, 4) + '/' + fmt(want, 4) + mark:>{width}}"
            print(row)

    conf = got.get("confusion")
    if not isinstance(conf, dict) or "classes" not in conf or "counts" not in conf:
        failures.append(f"{label}: Lamina's JSON lacks 'confusion' {{classes, counts}}")
        return
    cnames, counts = conf["classes"], conf["counts"]
    got_pairs = {}
    if len(counts) != len(cnames) or any(len(row) != len(cnames) for row in counts):
        failures.append(f"{label}: confusion counts are not {len(cnames)} x {len(cnames)}")
        return
    for a, row in zip(cnames, counts):
        for b, v in zip(cnames, row):
            if v:
                got_pairs[(a, b)] = v
    want_pairs = ref["confusion"]
    for key in sorted(set(got_pairs) | set(want_pairs)):
        if got_pairs.get(key, 0) != want_pairs.get(key, 0):
            failures.append(f"{label}: confusion[truth '{key[0]}'][pred '{key[1]}'] = {got_pairs.get(key, 0)}, "
                            f"reference {want_pairs.get(key, 0)}")
    print("confusion (truth -> predicted, nonzero cells, lamina / reference): " + ", ".join(
        f"{a}->{b} {got_pairs.get((a, b), 0)}/{want_pairs.get((a, b), 0)}"
        for a, b in sorted(set(got_pairs) | set(want_pairs))))


# =========================================================================== bad input

def bad_input_cases(valid, img_ids):
    """(name, results, [keyword groups]): stderr must contain, for each group, one of its words."""
    base = valid[:10]
    one = dict(valid[0])
    tiny = rc.encode(np.ones((10, 10), np.uint8))
    cases = [
        ("unknown image_id 99999", [dict(one, image_id=99999)], [["99999"]]),
        ("malformed RLE counts '!!!'", [dict(one, segmentation={"size": one["segmentation"]["size"], "counts": "!!!"})],
         [["rle", "counts", "mask", "segmentation", "decode", "malformed", "invalid"]]),
        ("score 1.5", [dict(one, score=1.5)], [["score", "1.5"]]),
        ("score -0.1", [dict(one, score=-0.1)], [["score", "-0.1"]]),
        ("category_id 999", [dict(one, category_id=999)], [["999", "category", "class"]]),
        ("mask size 10x10 on a larger image", [dict(one, segmentation=tiny)], [["size", "mask", "10"]]),
        ("unknown image and score 1.5 together (every problem listed)",
         [dict(one, image_id=99999), dict(valid[1], score=1.5)], [["99999"], ["score", "1.5"]]),
    ]
    assert 99999 not in img_ids
    return [(name, base[:5] + bad + base[5:], words) for name, bad, words in cases]


def check_bad_input(lamina, gt_path, tmp, valid, img_ids, failures):
    n = 0
    for k, (name, results, words) in enumerate(bad_input_cases(valid, img_ids)):
        path = os.path.join(tmp, f"bad_{k}.json")
        rc.write_json(path, results)
        proc = rc.run_proc([lamina, "metrics", "--gt", gt_path, "--pred", path, "--json", "--iou", "0.5",
                            "--score", "0.0"])
        err = proc.stderr.lower()
        if proc.returncode == 0:
            failures.append(f"bad input ({name}): lamina metrics exited 0")
        if "panicked" in err:
            failures.append(f"bad input ({name}): lamina panicked: {proc.stderr.strip()[:300]}")
        elif not err.strip():
            failures.append(f"bad input ({name}): nothing on stderr")
        else:
            for group in words:
                if not any(w.lower() in err for w in group):
                    failures.append(f"bad input ({name}): stderr mentions none of {group}: {proc.stderr.strip()[:300]}")
        print(f"bad input: {name}: exit {proc.returncode}: {proc.stderr.strip().splitlines()[0][:110] if proc.stderr.strip() else ''}")
        n += 1
    return n


# =========================================================================== self test

def self_test():
    """The reference functions on small hand-made cases with known answers."""
    problems = []

    def same(got, want):
        if isinstance(want, float):
            return isinstance(got, (int, float)) and close(got, want, 1e-12)
        if isinstance(want, tuple):
            return isinstance(got, tuple) and len(got) == len(want) and all(map(same, got, want))
        return got == want

    def expect(name, got, want):
        ok = same(got, want)
        if not ok:
            problems.append(f"{name}: got {got!r}, expected {want!r}")

    def box(y0, y1, x0, x1, h=12, w=12):
        m = np.zeros((h, w), bool)
        m[y0:y1, x0:x1] = True
        return m

    names = ["A", "B", "C"]
    a, b = box(0, 4, 0, 4), box(6, 9, 6, 9)  # 16 px, 9 px

    # A perfect prediction.
    r = reference_metrics([dict(truth=[a, b], tcls=[0, 1], preds=[a, b], pcls=[0, 1])], names, 0.5)
    for key in ["precision", "recall", "f1", "mean_iou", "dice", "pq", "dq", "sq", "aji", "bpq", "mpq"]:
        expect(f"perfect {key}", r[key], 1.0)
    expect("perfect confusion", r["confusion"], {("A", "A"): 1, ("B", "B"): 1})
    expect("perfect class A pq", r["classes"]["A"]["pq"], 1.0)

    # Two nuclei by hand: P1 = A moved right 1 px (inter 12, union 20: IoU 0.6, Dice 0.75); P2 = 6 px of B
    # (IoU 2/3, Dice 0.8); P3 a 4 px false positive.
    p1, p2, p3 = box(0, 4, 1, 5), box(6, 9, 6, 8), box(10, 12, 0, 2)
    img = dict(truth=[a, b], tcls=[0, 0], preds=[p1, p2, p3], pcls=[0, 0, 0])
    r = reference_metrics([img], names, 0.5)
    expect("hand precision", r["precision"], 2 / 3)
    expect("hand recall", r["recall"], 1.0)
    expect("hand f1", r["f1"], 0.8)
    expect("hand mean_iou", r["mean_iou"], (0.6 + 2 / 3) / 2)
    expect("hand dice", r["dice"], (0.75 + 0.8) / 2)
    expect("hand dq", r["dq"], 2 / 2.5)
    expect("hand sq", r["sq"], (0.6 + 2 / 3) / 2)
    expect("hand pq", r["pq"], 0.8 * (0.6 + 2 / 3) / 2)
    expect("hand aji", r["aji"], (12 + 6) / (20 + 9 + 4))
    expect("hand n", (r["n_gt"], r["n_pred"]), (2, 3))
    r = reference_metrics([dict(img)], names, 0.62)  # only P2 is above 0.62
    expect("hand@0.62 tp", (r["precision"], r["recall"]), (1 / 3, 1 / 2))
    expect("hand@0.62 pq", r["pq"], (1 / (1 + 1 + 0.5)) * (2 / 3))

    # IoU exactly at the threshold is not a match (strictly greater).
    c, d = box(0, 2, 0, 2), box(0, 2, 2, 4)  # 4 px each; the prediction c|d has IoU 0.5 with both
    r = reference_metrics([dict(truth=[c, d], tcls=[0, 0], preds=[c | d], pcls=[0])], names, 0.5)
    expect("strict threshold tp", r["recall"], 0.0)
    # ... and below it both pairs tie at 0.5: the lower truth index wins.
    inter, at, ap = overlaps([c, d], [c | d])
    expect("tie to lower truth index", match(inter, at, ap, 0.4), [(0, 0)])
    # Identical predictions tie: the lower prediction index wins (its class shows in the confusion matrix).
    r = reference_metrics([dict(truth=[a], tcls=[0], preds=[p1, p1.copy()], pcls=[1, 2])], names, 0.5)
    expect("tie to lower prediction index", r["confusion"], {("A", "B"): 1})
    expect("tie precision", r["precision"], 0.5)

    # AJI, HoVer-Net convention: truth C overlaps nothing and adds only |C| to U; the prediction chosen by
    # A is not also charged to C (MoNuSeg's MATLAB code would give 12 / (20 + 4 + 16) = 0.3).
    far = box(10, 12, 10, 12)
    inter, at, ap = overlaps([far, a], [p1])
    expect("aji missed nucleus", aji_image(inter, at, ap), 12 / (20 + 4))
    # A prediction chosen by two truth nuclei counts in both unions, and its area is not added again.
    inter, at, ap = overlaps([c, d], [c | d])
    expect("aji shared prediction", aji_image(inter, at, ap), (4 + 4) / (8 + 8))
    expect("aji no prediction", aji_image(*overlaps([a], [])), 0.0)
    expect("aji empty", aji_image(*overlaps([], [])), None)

    # bPQ / mPQ / class figures over images: image 1 perfect (A, B); image 2 truth A predicted as class B
    # (a class-agnostic match, but PQ 0 for class A); image 3 no truth, one false positive.
    imgs = [dict(truth=[a, b], tcls=[0, 1], preds=[a, b], pcls=[0, 1]),
            dict(truth=[a], tcls=[0], preds=[a], pcls=[1]),
            dict(truth=[], tcls=[], preds=[b], pcls=[2])]
    r = reference_metrics(imgs, names, 0.5)
    expect("bpq", r["bpq"], (1 + 1 + 0) / 3)
    expect("mpq", r["mpq"], (1 + 0) / 2)
    expect("aji over images with truth or predictions", r["aji"], (1 + 1 + 0) / 3)
    expect("overall pq", r["pq"], 3 / 3.5)
    expect("confusion", r["confusion"], {("A", "A"): 1, ("B", "B"): 1, ("A", "B"): 1})
    expect("class A", (r["classes"]["A"]["n_gt"], r["classes"]["A"]["n_pred"], r["classes"]["A"]["recall"]), (2, 1, 0.5))
    expect("class B precision", r["classes"]["B"]["precision"], 0.5)
    expect("class B aji", r["classes"]["B"]["aji"], (1 + 0) / 2)
    expect("class C (predictions only)", (r["classes"]["C"]["n_gt"], r["classes"]["C"]["pq"], r["classes"]["C"]["aji"]), (0, 0.0, 0.0))
    expect("class C no pairs", r["classes"]["C"]["_no_pairs"], True)

    # pycocotools extraction: a perfect prediction gives AP 1; a class without truth is None.
    gt = {"images": [{"id": 1, "file_name": "x.png", "width": 12, "height": 12}],
          "categories": [{"id": 1, "name": "A"}, {"id": 2, "name": "B"}, {"id": 3, "name": "C"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": rc.encode(a),
                           "area": 16, "bbox": [0, 0, 4, 4], "iscrowd": 0},
                          {"id": 2, "image_id": 1, "category_id": 2, "segmentation": rc.encode(b),
                           "area": 9, "bbox": [6, 6, 3, 3], "iscrowd": 0}]}
    res = [{"image_id": 1, "category_id": 1, "segmentation": rc.encode(a), "score": 0.9},
           {"image_id": 1, "category_id": 3, "segmentation": rc.encode(b), "score": 0.8}]
    ap = coco_ap(rc.coco_from_dict(gt), res, names)
    expect("coco A", (ap["classes"]["A"]["map"], ap["classes"]["A"]["ap50"]), (1.0, 1.0))
    expect("coco B (no prediction)", ap["classes"]["B"]["map"], 0.0)
    expect("coco C (no truth)", ap["classes"]["C"]["map"], None)
    expect("coco overall", ap["map"], 0.5)

    # Morphology helpers.
    expect("shift", rc.shift(box(0, 2, 0, 2), 1, 1).tolist(), box(1, 3, 1, 3).tolist())
    expect("erode", rc.erode(box(0, 4, 0, 4)).sum(), 4)  # the image edge counts as background
    expect("dilate", int(rc.dilate(box(5, 6, 5, 6)).sum()), 5)
    ring = box(2, 7, 2, 7) & ~box(3, 6, 3, 6)
    expect("fill_holes", rc.fill_holes(ring).tolist(), box(2, 7, 2, 7).tolist())
    diag = box(0, 2, 0, 2) | box(2, 5, 2, 5)  # touching at a corner only: two 4-connected pieces
    pieces = rc.components4(diag)
    expect("components4", [int(p.sum()) for p in pieces], [9, 4])

    for p in problems:
        print("SELF-TEST FAILED:", p)
    print("self-test OK" if not problems else f"self-test FAILED ({len(problems)})")
    return 0 if not problems else 1


# =========================================================================== main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="tile set folder (manifest.json, images/, masks/)")
    ap.add_argument("--lamina", help="path to the lamina binary")
    ap.add_argument("--keep", help="write the intermediate files here instead of a temporary folder")
    ap.add_argument("--self-test", action="store_true", help="only test the reference functions")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not args.data or not args.lamina:
        ap.error("--data and --lamina are required (or --self-test)")
    if self_test() != 0:
        return 1
    lamina = os.path.abspath(args.lamina)
    failures = []

    with rc.workdir(args.keep) as tmp:
        gt0_path, gt_path = os.path.join(tmp, "gt0.json"), os.path.join(tmp, "gt.json")
        rc.run([lamina, "import-masks", args.data, "--out", gt0_path])
        gt, chosen, emptied = rc.reclassify(rc.load_json(gt0_path), SEED_CLASSES, N_EMPTY_IMAGES)
        rc.write_json(gt_path, gt)
        classes = gt["ontology"]["classes"]
        class_names = [c["name"] for c in classes]
        class_index = {c["id"]: k for k, c in enumerate(classes)}
        used = [class_index[c] for c in chosen]
        spare = [class_index[c] for c in rc.pannuke_class_ids(gt) if c not in chosen]
        print(f"truth classes: {[class_names[k] for k in used]} (p = {list(rc.CLASS_PROBS)}); "
              f"{len(emptied)} images without truth; {len(gt['instances'])} instances, {len(gt['assets'])} images")

        coco_path = os.path.join(tmp, "gt_coco.json")
        rc.run([lamina, "export", "coco", gt_path, "--out", coco_path])
        coco = rc.load_json(coco_path)
        img_of, cat_of = check_coco_ids(gt, coco, failures)
        if failures:
            return rc.report(failures, "the COCO export's ids do not follow the bundle; stopping")
        image_ids = {k: i for i, k in img_of.items()}
        cat_ids = {k: c for c, k in cat_of.items()}

        images = truth_images(gt)
        results = make_predictions(images, image_ids, cat_ids, used, spare, SEED_PREDS)
        res_path = os.path.join(tmp, "results.json")
        rc.write_json(res_path, results)
        print(f"predictions: {len(results)} in results.json")
        coco_gt = rc.coco_from_file(coco_path)

        for iou_thr, score_thr in CONFIGS:
            label = f"--iou {iou_thr} --score {score_thr}"
            out = rc.run([lamina, "metrics", "--gt", gt_path, "--pred", res_path, "--json",
                          "--iou", str(iou_thr), "--score", str(score_thr)])
            try:
                got = json.loads(out)
            except json.JSONDecodeError as e:
                failures.append(f"{label}: stdout is not JSON ({e}): {out[:300]!r}")
                continue
            kept = [r for r in results if r["score"] >= score_thr]
            ref = reference_metrics(prediction_images(images, results, img_of, cat_of, score_thr),
                                    class_names, iou_thr)
            cap = coco_ap(coco_gt, kept, class_names)
            ref["map"], ref["ap50"] = cap["map"], cap["ap50"]
            for name, figs in ref["classes"].items():
                figs.update(cap["classes"][name])
            print(f"{ref['_boundary_pairs']} prediction / truth pairs have IoU exactly {iou_thr} (not a match)")
            if not ref["_boundary_pairs"]:
                failures.append(f"{label}: the test data have no pair with IoU exactly at the threshold")
            compare(label, got, ref, failures)
            if not (0.3 < ref["f1"] < 0.98) or ref["map"] is None or not ref["map"] < 0.95:
                failures.append(f"{label}: the predictions are too easy or too hard to test anything: "
                                f"reference f1 {ref['f1']:.4f}, map {ref['map']}")
            if len(ref["classes"]) < 3 or not any(a != b for a, b in ref["confusion"]):
                failures.append(f"{label}: the test data lack classes or class confusions")

        print()
        n_bad = check_bad_input(lamina, gt_path, tmp, results, set(img_of), failures)

    return rc.report(failures, f"{len(CONFIGS)} configurations compared with pycocotools and the numpy "
                               f"reference; {n_bad} bad inputs refused")


if __name__ == "__main__":
    sys.exit(main())
