#!/usr/bin/env python3
"""Independent check of the run zip written by `lamina run export`: the split, the COCO per-split files
and the YOLO segmentation dataset, read as ultralytics documents it (docs.ultralytics.com/datasets/segment:
one line per object `class x1 y1 ... xn yn`, coordinates normalised to 0..1 by the image width / height;
data.yaml with path / train / val / test / names). Written from docs/model-runs.md ("The split", "The run
zip"), not from Lamina's Rust; ultralytics is not needed.

Usage:
    python3 tests/reference/check_yolo.py --data ../shared/data/nuinsseg-dev --lamina target/debug/lamina [--keep DIR]
    python3 tests/reference/check_yolo.py --self-test      # the split and data.yaml readers on small cases

Steps:
 1. `lamina import-masks` on the set; the truth gets three PanNuke classes at random (as check_metrics.py)
    -> gt.json.
 2. `lamina run export gt.json --images DATA/images --out run.zip --seed 7 --split 80,10,10 --stratify organ`.
 3. The zip: every member path relative and inside the archive; run.json, bundle.json, coco/{train,val,
    test}.json and yolo/data.yaml present. bundle.json is gt.json plus metadata "split".
 4. The split, recomputed here from the documented algorithm (key sha256("<seed>:<image sha256>") sorted
    within each organ stratum, place (2·rank+1)/(2·size), all sorted by place then key, cut by the counts
    of the whole set by largest remainders with ties to train, val, test),
    equals Lamina's assignment exactly and covers every image once; run.json agrees.
 5. YOLO: data.yaml names = ontology names in order; every image under yolo/images/<split>/ with the
    source's bytes; each label file one line per instance in bundle order, class index = ontology index,
    coordinates in [0, 1]; each polygon rasterised by pycocotools matches the instance's mask (its
    largest 4-connected piece, holes filled): IoU >= 0.9 for each single-piece instance, mean >= 0.97.
 6. COCO: pycocotools loads each split file; it holds exactly its split's images and their annotations,
    with the full bundle's ids (images, categories, annotations from 1 in bundle order, not renumbered)
    and the bundle's RLE unchanged.
Exits non-zero on any failure, listing them.
"""

import argparse
import hashlib
import json
import os
import posixpath
import sys
import zipfile
from fractions import Fraction

import numpy as np
from pycocotools import mask as mask_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runs_common as rc  # noqa: E402

SEED = 7
SPLIT = (80, 10, 10)
STRATIFY = "organ"
SPLITS = ("train", "val", "test")
MIN_IOU = 0.9         # each single-piece instance
MIN_IOU_PIECES = 0.5  # instances in several pieces (compared with their largest piece)
MIN_MEAN_IOU = 0.97
SEED_CLASSES = 20240611


# =========================================================================== the split

def quotas(n, fractions):
    """Counts per split for n images: largest remainders of n * f / sum(f), computed exactly; ties go to
    the earlier split (train, then val, then test)."""
    fr = [Fraction(str(f)) for f in fractions]
    total = sum(fr)
    exact = [n * f / total for f in fr]
    counts = [int(e) for e in exact]  # floor (all non-negative)
    order = sorted(range(len(fr)), key=lambda k: (-(exact[k] - counts[k]), k))
    for k in order[: n - sum(counts)]:
        counts[k] += 1
    return counts


def split_key(seed, sha256):
    return hashlib.sha256(f"{seed}:{sha256}".encode("utf-8")).hexdigest()


def reference_split(assets, seed, fractions, field):
    """{asset id: split name} from the documented algorithm. Stratum = metadata[field], or one stratum
    for the images without it (absent or null). Within a stratum images are ranked by key; each gets the
    place (2*rank + 1) / (2*stratum size); all images are sorted by place (exact fractions), then key, and
    cut by the counts of the whole set."""
    strata = {}
    for a in assets:
        value = (a.get("metadata") or {}).get(field) if field else None
        strata.setdefault(("value", value) if value is not None else ("missing",), []).append(a)
    placed = []
    for members in strata.values():
        members = sorted(members, key=lambda a: split_key(seed, a["sha256"]))
        n = len(members)
        for rank, a in enumerate(members):
            placed.append((Fraction(2 * rank + 1, 2 * n), split_key(seed, a["sha256"]), a))
    placed.sort(key=lambda p: (p[0], p[1]))
    counts = quotas(len(placed), fractions)
    out = {}
    k = 0
    for name, c in zip(SPLITS, counts):
        for _, _, a in placed[k:k + c]:
            out[a["id"]] = name
        k += c
    return out, strata


# =========================================================================== data.yaml

def _strip_comment(line):
    quote = None
    for k, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1] in " \t"):
            return line[:k]
    return line


def _scalar(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] == "'":
        return s[1:-1].replace("''", "'")
    if len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    if s.lstrip("-").isdigit():
        return int(s)
    return s


def _split_flow(s):
    """Split the inside of [...] or {...} at top-level commas, respecting quotes."""
    parts, cur, quote = [], "", None
    for ch in s:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            cur += ch
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _key_value(s):
    """'key: value' -> (key, value) at the first ': ' (or a trailing ':') outside quotes."""
    quote = None
    for k, ch in enumerate(s):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == ":" and (k + 1 == len(s) or s[k + 1] in " \t"):
            return s[:k].strip(), s[k + 1:].strip()
    return None


def _value(s):
    s = s.strip()
    if s.startswith("[") and s.endswith("]"):
        return [_scalar(p) for p in _split_flow(s[1:-1])]
    if s.startswith("{") and s.endswith("}"):
        return {_scalar(kv[0]): _scalar(kv[1]) for kv in map(_key_value, _split_flow(s[1:-1])) if kv}
    return _scalar(s)


def parse_data_yaml_by_hand(text):
    """The subset of YAML an ultralytics data.yaml uses: top-level `key: scalar`, flow [..] / {..} values,
    and block values (`- item` lists or `0: name` mappings) under a bare `key:`."""
    out, key, block = {}, None, None
    for raw in text.splitlines():
        line = _strip_comment(raw).rstrip()
        if not line.strip() or line.strip() in ("---", "..."):
            continue
        indented = line[0] in " \t"
        body = line.strip()
        if key is not None and (indented or body.startswith("- ")):
            if body.startswith("-"):
                block = block if isinstance(block, list) else []
                block.append(_scalar(body[1:]))
            else:
                kv = _key_value(body)
                if kv:
                    block = block if isinstance(block, dict) else {}
                    block[_scalar(kv[0])] = _scalar(kv[1])
            out[key] = block
            continue
        kv = _key_value(body)
        if kv is None:
            raise ValueError(f"data.yaml: cannot read line {raw!r}")
        k, v = kv
        if v == "":
            key, block = _scalar(k), None
            out[key] = None
        else:
            key, block = None, None
            out[_scalar(k)] = _value(v)
    return out


def parse_data_yaml(text):
    try:
        import yaml  # noqa: F401  (used when present; the hand reader otherwise)
    except ImportError:
        return parse_data_yaml_by_hand(text), "hand reader"
    return yaml.safe_load(text), "PyYAML"


def names_list(names):
    """data.yaml names (a list, or a mapping index -> name) as a list in index order."""
    if isinstance(names, list):
        return [str(n) for n in names]
    if isinstance(names, dict):
        keys = sorted(int(k) for k in names)
        if keys != list(range(len(keys))):
            raise ValueError(f"names keys are {keys}, not 0..{len(keys) - 1}")
        return [str(names[k] if k in names else names[str(k)]) for k in keys]
    raise ValueError(f"names is neither a list nor a mapping: {names!r}")


# =========================================================================== zip

def safe_member(name):
    """A member path is relative, uses '/', and stays inside the archive root."""
    if not name or name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return False
    norm = posixpath.normpath(name)
    return norm != ".." and not norm.startswith("../") and ".." not in name.split("/")


def yolo_polygon_mask(values, h, w):
    """Denormalise one ultralytics polygon and rasterise it with pycocotools (pixel-corner convention,
    see check_coco.py)."""
    poly = []
    for k in range(0, len(values), 2):
        poly += [values[k] * w, values[k + 1] * h]
    rles = mask_utils.frPyObjects([poly], h, w)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def expected_outline(mask):
    """The region a one-polygon YOLO label can hold: the largest 4-connected piece, holes filled. Returns
    (candidates, n_pieces): several candidates when pieces tie for largest."""
    pieces = rc.components4(mask)
    best = [p for p in pieces if p.sum() == pieces[0].sum()]
    return [rc.crop_apply(p, rc.fill_holes) for p in best], len(pieces)


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def check_run_json(run, counts, failures):
    def find(part):
        keys = [k for k in run if part in k.lower()]
        if not keys:
            failures.append(f"run.json has no key containing '{part}' (keys: {sorted(run)})")
            return None
        return run[keys[0]]

    seed = find("seed")
    if seed is not None and str(seed) != str(SEED):
        failures.append(f"run.json seed {seed!r}, expected {SEED}")
    fr = find("fraction")
    if fr is not None:
        vals = list(fr.values()) if isinstance(fr, dict) else fr
        try:
            ok = len(vals) == 3 and all(Fraction(str(v)) * SPLIT[0] == Fraction(str(vals[0])) * s
                                        for v, s in zip(vals, SPLIT)) and Fraction(str(vals[0])) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            failures.append(f"run.json fractions {fr!r}, expected proportional to {list(SPLIT)}")
    st = find("stratif")
    if st is not None and STRATIFY not in json.dumps(st):
        failures.append(f"run.json stratify {st!r}, expected '{STRATIFY}'")
    got = find("count")
    if got is not None:
        if isinstance(got, dict):
            got = {k: got.get(k) for k in SPLITS}
        elif isinstance(got, list) and len(got) == 3:
            got = dict(zip(SPLITS, got))
        if got != counts:
            failures.append(f"run.json counts {got!r}, expected {counts}")


def check_bundle_copy(gt, bundle, failures):
    """bundle.json is the run's frozen copy of gt.json, each asset with metadata 'split'."""
    strip = lambda a: {k: v for k, v in (a.get("metadata") or {}).items() if k != "split"}  # noqa: E731
    ga = [(a["id"], a["name"], a["sha256"], a["width"], a["height"], strip(a)) for a in gt["assets"]]
    ba = [(a["id"], a["name"], a["sha256"], a["width"], a["height"], strip(a)) for a in bundle["assets"]]
    if ga != ba:
        failures.append("bundle.json: assets (id, name, sha256, size, metadata without 'split') differ from gt.json's"
                        + (" (same set, other order)" if sorted(map(repr, ga)) == sorted(map(repr, ba)) else ""))
    gi = [(i["id"], i["asset_id"], i["class_id"], i["mask"]["counts"]) for i in gt["instances"]]
    bi = [(i["id"], i["asset_id"], i["class_id"], i["mask"]["counts"]) for i in bundle["instances"]]
    if gi != bi:
        failures.append("bundle.json: instances (id, asset, class, mask) differ from gt.json's"
                        + (" (same set, other order)" if sorted(gi) == sorted(bi) else ""))
    if [c["name"] for c in gt["ontology"]["classes"]] != [c["name"] for c in bundle["ontology"]["classes"]]:
        failures.append("bundle.json: ontology differs from gt.json's")


def check_coco_split(coco, split, bundle, splits, failures):
    """One split's COCO file: exactly its images and annotations, with the full bundle's ids."""
    assets, classes = bundle["assets"], bundle["ontology"]["classes"]
    asset_index = {a["id"]: k for k, a in enumerate(assets)}
    class_index = {c["id"]: k for k, c in enumerate(classes)}
    want_imgs = [(k + 1, a["name"], a["width"], a["height"]) for k, a in enumerate(assets)
                 if splits.get(a["id"]) == split]
    got_imgs = [(i["id"], i["file_name"], i["width"], i["height"]) for i in coco.dataset["images"]]
    if sorted(got_imgs) != want_imgs:
        failures.append(f"coco/{split}.json: images {sorted(got_imgs)[:3]}... differ from the split's "
                        f"{want_imgs[:3]}... ({len(got_imgs)} vs {len(want_imgs)})")
    cats = [(c["id"], c["name"]) for c in coco.dataset["categories"]]
    if cats != [(k + 1, c["name"]) for k, c in enumerate(classes)]:
        failures.append(f"coco/{split}.json: categories {cats} are not the ontology's, numbered from 1")
    want_anns = {}
    for k, inst in enumerate(bundle["instances"]):
        if splits.get(inst["asset_id"]) == split:
            want_anns[k + 1] = (asset_index[inst["asset_id"]] + 1, class_index[inst["class_id"]] + 1,
                                inst["mask"]["counts"], inst["area"])
    got_anns = {}
    for ann in coco.dataset["annotations"]:
        seg = ann.get("segmentation")
        got_anns[ann["id"]] = (ann["image_id"], ann["category_id"],
                               seg.get("counts") if isinstance(seg, dict) else None, ann.get("area"))
        if ann.get("iscrowd") != 0:
            failures.append(f"coco/{split}.json: annotation {ann['id']} iscrowd {ann.get('iscrowd')!r}")
    if set(got_anns) != set(want_anns):
        failures.append(f"coco/{split}.json: annotation ids differ from the split's instances' bundle "
                        f"positions ({len(got_anns)} vs {len(want_anns)}; e.g. "
                        f"{sorted(set(got_anns) ^ set(want_anns))[:5]})")
    bad = [a for a in want_anns if a in got_anns and got_anns[a] != want_anns[a]]
    if bad:
        failures.append(f"coco/{split}.json: {len(bad)} annotations differ in image / category / RLE / area "
                        f"(first: id {bad[0]}: {got_anns[bad[0]][:2]} vs {want_anns[bad[0]][:2]})")
    for ann in coco.dataset["annotations"][:1000]:
        inst = bundle["instances"][ann["id"] - 1] if 0 < ann["id"] <= len(bundle["instances"]) else None
        if inst is not None and not np.array_equal(coco.annToMask(ann), rc.decode(inst["mask"])):
            failures.append(f"coco/{split}.json: annotation {ann['id']}: annToMask differs from the bundle's mask")
            break
    return len(got_imgs), len(got_anns)


def check_yolo(files, prefix, bundle, splits, images_dir, failures):
    """The YOLO images and labels. Returns the polygon IoUs (single-piece, multi-piece)."""
    classes = bundle["ontology"]["classes"]
    class_index = {c["id"]: k for k, c in enumerate(classes)}
    by_asset = {}
    for inst in bundle["instances"]:
        by_asset.setdefault(inst["asset_id"], []).append(inst)
    seen_images, seen_labels = set(), set()
    single, multi = [], []
    for a in bundle["assets"]:
        split = splits.get(a["id"])
        if split not in SPLITS:
            continue
        img_member = f"{prefix}yolo/images/{split}/{a['name']}"
        seen_images.add(img_member)
        if img_member not in files:
            failures.append(f"yolo: {img_member} missing")
        else:
            with open(os.path.join(images_dir, a["name"]), "rb") as f:
                if files[img_member]() != f.read():
                    failures.append(f"yolo: {img_member} differs from the source image")
        stem = posixpath.splitext(a["name"])[0]
        lbl_member = f"{prefix}yolo/labels/{split}/{stem}.txt"
        seen_labels.add(lbl_member)
        insts = by_asset.get(a["id"], [])
        if lbl_member not in files:
            if insts:
                failures.append(f"yolo: {lbl_member} missing ({len(insts)} instances)")
            continue
        lines = [ln for ln in files[lbl_member]().decode("utf-8").splitlines() if ln.strip()]
        if len(lines) != len(insts):
            failures.append(f"yolo: {lbl_member}: {len(lines)} lines for {len(insts)} instances")
            continue
        h, w = a["height"], a["width"]
        for n, (line, inst) in enumerate(zip(lines, insts)):
            where = f"yolo: {lbl_member} line {n + 1}"
            tok = line.split()
            try:
                cls, vals = int(tok[0]), [float(t) for t in tok[1:]]
            except (ValueError, IndexError):
                failures.append(f"{where}: not '<class> x1 y1 ...': {line[:80]!r}")
                continue
            if cls != class_index[inst["class_id"]]:
                failures.append(f"{where}: class {cls}, instance's class index {class_index[inst['class_id']]}")
            if len(vals) < 6 or len(vals) % 2:
                failures.append(f"{where}: {len(vals)} coordinates (need an even number >= 6)")
                continue
            if not all(0.0 <= v <= 1.0 for v in vals):
                failures.append(f"{where}: coordinates outside [0, 1]: {min(vals)} .. {max(vals)}")
            got = yolo_polygon_mask(vals, h, w)
            cands, n_pieces = expected_outline(rc.decode(inst["mask"]).astype(bool))
            v = max(iou(got, c) for c in cands)
            if n_pieces == 1:
                single.append(v)
                if v < MIN_IOU:
                    failures.append(f"{where}: polygon IoU {v:.3f} with the mask (need >= {MIN_IOU})")
            else:
                multi.append(v)
                if v < MIN_IOU_PIECES:
                    failures.append(f"{where}: {n_pieces}-piece instance, polygon IoU {v:.3f} with the largest "
                                    f"piece (need >= {MIN_IOU_PIECES})")
    stray = sorted(m for m in files if m.startswith(f"{prefix}yolo/images/") and not m.endswith("/")
                   and m not in seen_images)
    stray += sorted(m for m in files if m.startswith(f"{prefix}yolo/labels/") and not m.endswith("/")
                    and m not in seen_labels)
    if stray:
        failures.append(f"yolo: {len(stray)} files that belong to no image of the split, e.g. {stray[:3]}")
    return single, multi


# =========================================================================== self test

def self_test():
    problems = []

    def expect(name, got, want):
        if got != want:
            problems.append(f"{name}: got {got!r}, expected {want!r}")

    expect("quotas 4", quotas(4, SPLIT), [3, 1, 0])     # 3.2 / 0.4 / 0.4: the val / test tie goes to val
    expect("quotas 5", quotas(5, SPLIT), [4, 1, 0])     # 4 / 0.5 / 0.5
    expect("quotas 10", quotas(10, SPLIT), [8, 1, 1])
    expect("quotas 1", quotas(1, SPLIT), [1, 0, 0])
    expect("quotas 0", quotas(0, SPLIT), [0, 0, 0])
    expect("quotas 7", quotas(7, (1, 1, 1)), [3, 2, 2])
    expect("quotas 19", quotas(19, SPLIT), [15, 2, 2])  # 15.2 / 1.9 / 1.9
    expect("quotas 0.8", quotas(4, (0.8, 0.1, 0.1)), [3, 1, 0])
    expect("quotas 6 / 70,20,10", quotas(6, (70, 20, 10)), [4, 1, 1])  # 4.2 / 1.2 / 0.6
    expect("split key", split_key(7, "ab"), hashlib.sha256(b"7:ab").hexdigest())
    # Adding an image never moves another one's order within its stratum; strata are separate.
    assets = [{"id": str(k), "sha256": f"{k:064x}", "metadata": {"organ": "x" if k % 3 else None}}
              for k in range(12)]
    split, strata = reference_split(assets, 7, SPLIT, "organ")
    expect("strata", sorted(len(v) for v in strata.values()), [4, 8])
    expect("split counts", sorted(list(split.values()).count(s) for s in SPLITS), [1, 1, 10])
    for text, want in [
        ("path: .\ntrain: images/train\nval: images/val\ntest: images/test\nnames:\n  0: Neoplastic\n"
         "  1: Nucleus (unclassified)\n", ["Neoplastic", "Nucleus (unclassified)"]),
        ("names: {0: A, 1: 'B: x', 2: \"C # not a comment\"}  # comment\n", ["A", "B: x", "C # not a comment"]),
        ("names: [A, B]\n", ["A", "B"]),
        ("names:\n- A\n- B\npath: .\n", ["A", "B"]),
        ("names:\n  - 'It''s'\n  - B\n", ["It's", "B"]),
    ]:
        parsed = parse_data_yaml_by_hand(text)
        expect(f"data.yaml {text[:20]!r}", names_list(parsed["names"]), want)
        try:
            import yaml
            expect(f"data.yaml vs PyYAML {text[:20]!r}", names_list(yaml.safe_load(text)["names"]), want)
        except ImportError:
            pass
    parsed = parse_data_yaml_by_hand("path: .\ntrain: images/train\nnames:\n  0: A\n")
    expect("data.yaml keys", (parsed["path"], parsed["train"]), (".", "images/train"))
    for name, ok in [("run.json", True), ("yolo/images/train/a.png", True), ("/etc/x", False),
                     ("../x", False), ("a/../../x", False), ("a\\b", False), ("C:/x", False), ("a/..", False)]:
        expect(f"safe_member {name}", safe_member(name), ok)
    # Polygon rasterisation on pixel corners: the square with corners (2,1)-(5,4) covers columns 2..4,
    # rows 1..3.
    m = yolo_polygon_mask([2 / 8, 1 / 8, 5 / 8, 1 / 8, 5 / 8, 4 / 8, 2 / 8, 4 / 8], 8, 8)
    want = np.zeros((8, 8), bool)
    want[1:4, 2:5] = True
    expect("polygon raster", m.tolist(), want.tolist())
    two = np.zeros((8, 8), bool)
    two[0:3, 0:3] = True
    two[5:7, 5:7] = True
    two[1, 1] = False
    cands, n = expected_outline(two)
    expect("outline pieces", (n, len(cands), int(cands[0].sum())), (2, 1, 9))
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
    ap.add_argument("--self-test", action="store_true", help="only test the split and data.yaml readers")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not args.data or not args.lamina:
        ap.error("--data and --lamina are required (or --self-test)")
    if self_test() != 0:
        return 1
    lamina = os.path.abspath(args.lamina)
    images_dir = os.path.join(args.data, "images")
    failures = []

    with rc.workdir(args.keep) as tmp:
        gt0_path, gt_path = os.path.join(tmp, "gt0.json"), os.path.join(tmp, "gt.json")
        rc.run([lamina, "import-masks", args.data, "--out", gt0_path])
        gt, chosen, _ = rc.reclassify(rc.load_json(gt0_path), SEED_CLASSES)
        rc.write_json(gt_path, gt)
        zip_path = os.path.join(tmp, "run.zip")
        rc.run([lamina, "run", "export", gt_path, "--images", images_dir, "--out", zip_path, "--seed", str(SEED),
                "--split", ",".join(map(str, SPLIT)), "--stratify", STRATIFY])

        zf = zipfile.ZipFile(zip_path)
        names = zf.namelist()
        unsafe = [n for n in names if not safe_member(n)]
        if unsafe:
            failures.append(f"zip: member paths not relative / inside the archive: {unsafe[:5]}")
        if len(set(names)) != len(names):
            failures.append("zip: duplicate member names")
        prefix = ""
        if "run.json" not in names:
            roots = [n[: -len("run.json")] for n in names if n.endswith("/run.json") and n.count("/") == 1]
            if len(roots) != 1:
                return rc.report(failures + ["zip: no run.json at the root"], "cannot read the run zip")
            prefix = roots[0]
            print(f"note: the zip's files are under '{prefix}', not at its root")
        files = {n: (lambda n=n: zf.read(n)) for n in names if not n.endswith("/")}
        needed = ["run.json", "bundle.json", "yolo/data.yaml"] + [f"coco/{s}.json" for s in SPLITS]
        missing = [prefix + n for n in needed if prefix + n not in files]
        if missing:
            return rc.report(failures + [f"zip: missing {missing}"], "cannot read the run zip")
        load = lambda n: json.loads(files[prefix + n]().decode("utf-8"))  # noqa: E731
        run_json, bundle = load("run.json"), load("bundle.json")

        # The split.
        check_bundle_copy(gt, bundle, failures)
        for a, path in ((a, os.path.join(images_dir, a["name"])) for a in bundle["assets"]):
            with open(path, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != a["sha256"]:
                    failures.append(f"bundle.json: {a['name']}: sha256 differs from the source image's")
        got_split = {a["id"]: (a.get("metadata") or {}).get("split") for a in bundle["assets"]}
        bad = [i for i, s in got_split.items() if s not in SPLITS]
        if bad:
            failures.append(f"bundle.json: {len(bad)} assets without a split in {SPLITS}, e.g. {bad[:3]}")
        want_split, strata = reference_split(bundle["assets"], SEED, SPLIT, STRATIFY)
        if all(k == ("missing",) for k in strata):
            print(f"note: no asset has metadata '{STRATIFY}'; the split is not stratified")
        differ = [i for i in want_split if got_split.get(i) != want_split[i]]
        if differ:
            failures.append(f"split: {len(differ)} assets differ from the documented algorithm, e.g. "
                            + ", ".join(f"{i}: lamina {got_split.get(i)}, reference {want_split[i]}" for i in differ[:3]))
        counts = {s: list(want_split.values()).count(s) for s in SPLITS}
        check_run_json(run_json, counts, failures)

        # YOLO.
        data_yaml, reader = parse_data_yaml(files[prefix + "yolo/data.yaml"]().decode("utf-8"))
        onto = [c["name"] for c in bundle["ontology"]["classes"]]
        try:
            yolo_names = names_list(data_yaml.get("names"))
            if yolo_names != onto:
                failures.append(f"data.yaml names {yolo_names} differ from the ontology {onto}")
        except (ValueError, AttributeError) as e:
            failures.append(f"data.yaml: {e}")
        for key, want in (("path", "."), ("train", "images/train"), ("val", "images/val"), ("test", "images/test")):
            got = data_yaml.get(key) if isinstance(data_yaml, dict) else None
            if str(got).rstrip("/") not in (want, "./" + want):
                failures.append(f"data.yaml {key}: {got!r}, expected {want!r}")
        single, multi = check_yolo(files, prefix, bundle, got_split, images_dir, failures)
        all_ious = single + multi
        mean_iou = float(np.mean(all_ious)) if all_ious else 0.0
        if not all_ious or mean_iou < MIN_MEAN_IOU:
            failures.append(f"yolo: polygon IoU mean {mean_iou:.4f} (need >= {MIN_MEAN_IOU})")

        # COCO per split.
        coco_counts = {}
        for s in SPLITS:
            coco = rc.coco_from_dict(load(f"coco/{s}.json"))
            coco_counts[s] = check_coco_split(coco, s, bundle, got_split, failures)

    return rc.report(failures, (
        f"{len(bundle['assets'])} images split {counts['train']}/{counts['val']}/{counts['test']} over "
        f"{len(strata)} strata, identical to the documented algorithm; data.yaml read by the {reader}; "
        f"{len(all_ious)} YOLO polygons: IoU single-piece mean {np.mean(single) if single else 0:.4f} "
        f"min {min(single) if single else 0:.4f}, {len(multi)} multi-piece mean "
        f"{np.mean(multi) if multi else 0:.4f}; COCO per split (images, annotations): {coco_counts}"))


if __name__ == "__main__":
    sys.exit(main())
