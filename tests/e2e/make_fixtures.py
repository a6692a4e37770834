#!/usr/bin/env python3
"""Writes the end-to-end test fixtures.

Local files (picked with the file chooser) go to target/e2e/fixtures/; files the app must fetch over HTTP
go to dist/e2e-fixtures/ (served by the test server next to the app).

Usage: python3 tests/e2e/make_fixtures.py [--data ../shared/data/nuinsseg-dev] [--root .]
Prints one JSON object describing what it wrote (paths, sha256s, counts).
"""

import argparse
import hashlib
import io
import json
import math
import pathlib
import shutil
import struct
import zlib

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width, height):
    """A valid-looking PNG whose IHDR claims width x height (8-bit RGB); only a tiny IDAT follows."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # One scanline's worth of zeros, compressed: real decoders would need ~2.7 GB to finish it.
    idat = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/nuinsseg-dev")
    parser.add_argument("--root", default=".")
    args = parser.parse_args()
    root = pathlib.Path(args.root).resolve()
    data = (root / args.data).resolve() if not pathlib.Path(args.data).is_absolute() else pathlib.Path(args.data)
    manifest = json.loads((data / "manifest.json").read_text())
    items = manifest["items"]
    # Tiles not used by the demo (which takes every 8th), so a test never collides with it by accident.
    pick = [it for i, it in enumerate(items) if i % 8 != 0]
    tile = lambda k: data / pick[k]["image"]  # noqa: E731

    out = root / "target/e2e/fixtures"
    served = root / "dist/e2e-fixtures"
    for d in (out, served):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    # Three images, three formats.
    Image.open(tile(0)).convert("RGB").save(out / "tile_a.jpg", quality=92, subsampling=0)
    Image.open(tile(1)).convert("RGB").save(out / "tile_b.tif")
    shutil.copyfile(tile(2), out / "tile_c.png")

    # Bad inputs.
    good = tile(3).read_bytes()
    (out / "corrupt.png").write_bytes(good[: len(good) // 3])
    (out / "notes.png").write_text("These are my notes, not an image.\nMeeting on Tuesday.\n")
    (out / "bomb.png").write_bytes(bomb_png(30000, 30000))
    # A CSV manifest that cannot be used: no url column, ragged rows, an unterminated quote.
    (out / "bad_manifest.csv").write_text('path;organ\n"images/a.png;bladder\nfoo,bar,baz,qux\n')
    # A bundle cut off mid-way (invalid JSON).
    (out / "bad_bundle.json").write_text('{"format": "lamina.bundle", "version": 1, "project": {"id": "x", "na')

    # A folder to import: two images (one nested) and a file that is not an image.
    folder = out / "folder"
    (folder / "sub").mkdir(parents=True)
    shutil.copyfile(tile(4), folder / "first.png")
    Image.open(tile(5)).convert("RGB").save(folder / "sub" / "second.jpg", quality=90)
    (folder / "readme.txt").write_text("slides from the March batch\n")

    # Served: a CSV manifest (url, organ) listing two real tiles and one missing URL.
    tiles = served / "tiles"
    tiles.mkdir()
    manifest_rows = []
    for k in (6, 7):
        name = pick[k]["id"] + ".png"
        shutil.copyfile(tile(k), tiles / name)
        manifest_rows.append((f"tiles/{name}", pick[k]["organ"] or "unknown"))
    manifest_rows.append(("tiles/missing_tile.png", "liver"))
    (served / "manifest.csv").write_text(
        "url,organ\n" + "".join(f"{u},{o}\n" for u, o in manifest_rows)
    )

    # Served: the tile the 500-instance bundle labels (fetched by its uri, relative to the app page).
    big_tile = tiles / (pick[8]["id"] + ".png")
    shutil.copyfile(tile(8), big_tile)
    w = h = 256
    instances = []
    n_cols, n_rows, cell_w, cell_h = 25, 20, 10, 12
    for k in range(n_cols * n_rows):
        cx, cy = (k % n_cols) * cell_w + 5, (k // n_cols) * cell_h + 6
        yy, xx = np.mgrid[0:h, 0:w]
        m = ((xx + 0.5 - cx) ** 2 / 16 + (yy + 0.5 - cy) ** 2 / 20 <= 1).astype(np.uint8)
        rle = mask_utils.encode(np.asfortranarray(m))
        bbox = [int(v) for v in mask_utils.toBbox(rle)]
        instances.append({
            "id": f"cell-{k:03d}",
            "asset_id": "big",
            "class_id": "connective" if k % 2 else "neoplastic",
            "mask": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
            "bbox": bbox,
            "area": int(mask_utils.area(rle)),
            "provenance": {"tool": "import", "created": "2024-01-01T00:00:00Z", "updated": "2024-01-01T00:00:00Z"},
            "status": "draft",
        })
    bundle = {
        "format": "lamina.bundle",
        "version": 1,
        "project": {"id": "e2e-500", "name": "500 nuclei"},
        "ontology": {"classes": [
            {"id": "neoplastic", "name": "Neoplastic", "color": "#ff0000"},
            {"id": "inflammatory", "name": "Inflammatory", "color": "#00ff00"},
            {"id": "connective", "name": "Connective", "color": "#0000ff"},
            {"id": "dead", "name": "Dead", "color": "#ffff00"},
            {"id": "epithelial", "name": "Epithelial", "color": "#ff8000"},
        ]},
        "assets": [{
            "id": "big",
            "name": big_tile.name,
            "sha256": sha256(big_tile),
            "width": w,
            "height": h,
            "metadata": {"organ": pick[8]["organ"]},
            "uri": f"e2e-fixtures/tiles/{big_tile.name}",
            "status": "unlabeled",
        }],
        "instances": instances,
    }
    (out / "bundle500.json").write_text(json.dumps(bundle))

    # Two nuclei of tile_c for the suggestion tests: whole (not cut by the border), mid-sized, far apart.
    # The test clicks the first and boxes the second; check_suggestions.py scores the labels against them.
    tile_c = pick[2]
    whole = [i for i in tile_c["instances"] if not i["touches_tile_border"] and 150 <= i["area"] <= 900]
    whole.sort(key=lambda i: -i["area"])
    first = whole[0]
    second = next(i for i in whole[1:] if math.dist(i["centroid_xy"], first["centroid_xy"]) > 60)
    labels = np.array(Image.open(data / tile_c["mask"])).astype(np.int32)

    def inside_point(label):
        # A pixel deep inside the nucleus: the last survivor of repeated 4-neighbour erosions (the centroid
        # of a curved nucleus can lie outside it). Returned as the pixel's centre in image pixels.
        m = labels == label
        while True:
            e = m.copy()
            e[1:, :] &= m[:-1, :]
            e[:-1, :] &= m[1:, :]
            e[:, 1:] &= m[:, :-1]
            e[:, :-1] &= m[:, 1:]
            if not e.any():
                y, x = np.argwhere(m)[0]
                return [float(x) + 0.5, float(y) + 0.5]
            m = e

    suggest_nuclei = {
        "mask": str(data / tile_c["mask"]),
        "nuclei": [
            {**{k: i[k] for k in ("id", "area", "bbox_xyxy")}, "inside_xy": inside_point(i["id"])}
            for i in (first, second)
        ],
    }

    catalog = catalog_fixtures(data, items, served / "catalog")

    summary = {
        "catalog": catalog,
        "suggest_nuclei": suggest_nuclei,
        "images": [str(out / n) for n in ("tile_a.jpg", "tile_b.tif", "tile_c.png")],
        "sha256": {n: sha256(out / n) for n in ("tile_a.jpg", "tile_b.tif", "tile_c.png")},
        "manifest_ok": [u for u, _ in manifest_rows[:2]],
        "manifest_organs": [o for _, o in manifest_rows[:2]],
        "bundle500_instances": len(instances),
        "bomb_bytes": (out / "bomb.png").stat().st_size,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


def catalog_fixtures(data, items, served):
    """The catalog test's project: every tile of six organs (four each) in a CSV manifest (url, organ,
    n_nuclei), and a later manifest adding one liver tile, one brain tile and a mirrored copy of the first
    liver tile (the prepared find-similar case: its colours are the anchor's, so it must rank first)."""
    served.mkdir(parents=True)
    organs = ["liver", "kidney", "brain", "spleen", "lung", "tongue"]
    chosen = [it for it in items if it["organ"] in organs]
    rows = []
    for it in chosen:
        name = it["id"] + ".png"
        shutil.copyfile(data / it["image"], served / name)
        rows.append((name, it["organ"], it["n_nuclei"]))
    # Held back for the later import: the last liver and the last brain tile.
    later = [r for r in rows if r[1] == "liver"][-1:] + [r for r in rows if r[1] == "brain"][-1:]
    first = [r for r in rows if r not in later]
    anchor = next(r for r in first if r[1] == "liver")
    mirrored = "mirrored_" + anchor[0]
    Image.open(served / anchor[0]).convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(served / mirrored)
    later.append((mirrored, "liver", anchor[2]))

    def write(name, rows):
        (served / name).write_text("url,organ,n_nuclei\n" + "".join(f"{u},{o},{n}\n" for u, o, n in rows))

    write("catalog.csv", first)
    write("catalog_more.csv", later)
    counts = {}
    for _, organ, _ in first:
        counts[organ] = counts.get(organ, 0) + 1
    return {
        "first": len(first),
        "later": len(later),
        "organ_counts": counts,
        "anchor": anchor[0],
        "mirrored": mirrored,
        "n_nuclei": {u: n for u, _, n in first + later},
    }


if __name__ == "__main__":
    main()
