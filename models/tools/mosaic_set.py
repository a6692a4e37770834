"""Builds a set of larger images from a tile set in the nuclei format (../shared/data/FORMAT.md): each
image is a GRID x GRID mosaic of tiles of one organ (in manifest order), with the instance masks relabelled.

Why: a model trained on 256 px tiles at one pixel scale must keep that scale on bigger images. This set
lets `lamina eval noc` measure what happens to the same nuclei when the image is 512 px or more, without
any new labels. Seams between tiles are artificial; nuclei cut by a seam stay cut, as at a tile border.

    python3 models/tools/mosaic_set.py --data ../shared/data/nuinsseg-dev --out /tmp/dev-mosaic2 --grid 2

`--gap PX` puts PX pixels of SAM's mean colour (what the model's zero padding is) between the tiles, so a
nucleus cut at a tile's edge has the same surroundings as on its own tile instead of unrelated tissue.
"""

import argparse
import json
import os
from collections import defaultdict

import numpy as np
from PIL import Image


# SAM's pixel mean, rounded: normalised, it is the model's zero padding.
PAD_RGB = np.array([124, 116, 104], np.uint8)


def instances(labels):
    """The manifest's instance list, recomputed from a label image."""
    out = []
    h, w = labels.shape
    for i in range(1, int(labels.max()) + 1):
        ys, xs = np.nonzero(labels == i)
        out.append({
            "id": i,
            "area": int(len(xs)),
            "bbox_xyxy": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
            "centroid_xy": [round(float(xs.mean()), 1), round(float(ys.mean()), 1)],
            "touches_tile_border": bool(xs.min() == 0 or ys.min() == 0 or xs.max() == w - 1
                                        or ys.max() == h - 1),
            "class": None,
        })
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a set in the nuclei format")
    ap.add_argument("--out", required=True, help="folder to write (created)")
    ap.add_argument("--grid", type=int, default=2, help="tiles per side of each image")
    ap.add_argument("--gap", type=int, default=0, help="pixels of padding colour between tiles")
    args = ap.parse_args()

    src = json.load(open(os.path.join(args.data, "manifest.json")))
    by_organ = defaultdict(list)
    for item in src["items"]:
        by_organ[item.get("organ") or "unknown"].append(item)
    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "masks"), exist_ok=True)
    n = args.grid * args.grid
    items = []
    for organ, tiles in by_organ.items():
        for start in range(0, len(tiles) - n + 1, n):
            group = tiles[start:start + n]
            rgb_rows, label_rows, next_id = [], [], 0
            for r in range(args.grid):
                rgbs, labels = [], []
                for c in range(args.grid):
                    if c > 0 and args.gap:
                        rgbs.append(np.broadcast_to(PAD_RGB, (rgbs[0].shape[0], args.gap, 3)))
                        labels.append(np.zeros((labels[0].shape[0], args.gap), np.int32))
                    t = group[r * args.grid + c]
                    rgbs.append(np.array(Image.open(os.path.join(args.data, t["image"])).convert("RGB")))
                    lab = np.array(Image.open(os.path.join(args.data, t["mask"]))).astype(np.int32)
                    lab = np.where(lab > 0, lab + next_id, 0)
                    next_id = max(next_id, int(lab.max()))
                    labels.append(lab)
                if r > 0 and args.gap:
                    width = sum(x.shape[1] for x in rgbs)
                    rgb_rows.append(np.broadcast_to(PAD_RGB, (args.gap, width, 3)))
                    label_rows.append(np.zeros((args.gap, width), np.int32))
                rgb_rows.append(np.concatenate(rgbs, axis=1))
                label_rows.append(np.concatenate(labels, axis=1))
            rgb = np.concatenate(rgb_rows, axis=0)
            labels = np.concatenate(label_rows, axis=0)
            rgb = np.ascontiguousarray(rgb)
            item_id = f"mosaic{args.grid}_{group[0]['id']}"
            image, mask = f"images/{item_id}.png", f"masks/{item_id}.png"
            Image.fromarray(rgb).save(os.path.join(args.out, image))
            Image.fromarray(labels.astype(np.uint16)).save(os.path.join(args.out, mask))
            inst = instances(labels)
            items.append({
                "id": item_id, "image": image, "mask": mask,
                "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                "organ": organ, "n_nuclei": len(inst), "instances": inst,
                "source": {"tiles": [t["id"] for t in group]},
            })
    manifest = {
        "set": os.path.basename(os.path.normpath(args.out)),
        "description": f"{args.grid}x{args.grid} mosaics of {src.get('set', args.data)} tiles, one organ each",
        "license": src.get("license"),
        "tile_size": items[0]["width"] if items else None,
        "counts": {"tiles": len(items), "nuclei": sum(i["n_nuclei"] for i in items)},
        "items": items,
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    lic = os.path.join(args.data, "SOURCE_LICENSE.md")
    if os.path.exists(lic):
        with open(lic) as f, open(os.path.join(args.out, "SOURCE_LICENSE.md"), "w") as g:
            g.write(f"Mosaics ({args.grid}x{args.grid}) of the tiles below; no pixel changed.\n\n" + f.read())
    print(f"{len(items)} images, {manifest['counts']['nuclei']} nuclei -> {args.out}")


if __name__ == "__main__":
    main()
