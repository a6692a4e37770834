#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/seeds/<target>/ (seed-* files), built from real
nuclei masks of ../shared/data/nuinsseg-dev and from the formats as docs/ describe them, independently of
Lamina's code. The fuzzer grows fuzz/corpus/<target>/ from these (and `cargo fuzz cmin` minimises only the
corpus, so the seeds keep their names); `cargo test -p lamina-fuzz` replays seeds, corpus and regressions.

Usage: python3 fuzz/seed.py [--data ../shared/data/nuinsseg-dev]"""
import argparse
import hashlib
import io
import json
import pathlib
import struct

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

ROOT = pathlib.Path(__file__).resolve().parent
CREATED = "2026-12-02T12:00:00.000Z"
CLASSES = [("neoplastic", "Neoplastic", "#e6194b"), ("inflammatory", "Inflammatory", "#3cb44b"),
           ("connective", "Connective", "#4363d8"), ("dead", "Dead", "#f58231"),
           ("epithelial", "Epithelial", "#911eb4")]


def write(target, name, data):
    folder = ROOT / "seeds" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed-{name}").write_bytes(data if isinstance(data, bytes) else data.encode())


def nuclei(data, side=64, limit=4):
    """Real nuclei: the first instance masks of the first dev image, cropped to side x side."""
    masks = sorted((pathlib.Path(data) / "masks").rglob("*.png"))
    label = np.array(Image.open(masks[0]))
    if label.ndim == 3:
        label = label[..., 0]
    crop = label[:side, :side]
    out = []
    for value in [v for v in np.unique(crop) if v != 0][:limit]:
        m = np.asfortranarray((crop == value).astype(np.uint8))
        out.append(m)
    if not out:  # a background-only corner: one square stands in
        m = np.zeros((side, side), np.uint8, order="F")
        m[8:20, 8:20] = 1
        out.append(m)
    return out


def instance(iid, asset_id, class_id, m):
    rle = mask_utils.encode(m)
    x, y, w, h = (int(v) for v in mask_utils.toBbox(rle))
    return {"id": iid, "asset_id": asset_id, "class_id": class_id,
            "mask": {"size": [int(m.shape[0]), int(m.shape[1])], "counts": rle["counts"].decode()},
            "bbox": [x, y, w, h], "area": int(mask_utils.area(rle)),
            "provenance": {"tool": "brush", "author": "alice", "created": CREATED, "updated": CREATED},
            "status": "draft"}


def fragments(masks):
    """Label fragments as docs/sync.md describes them; revisions and key hashes as a reader checks them."""
    side = masks[0].shape[0]
    insts = [instance(f"n{k}", "img-0", CLASSES[k % 5][0], m) for k, m in enumerate(masks)]

    def fragment(labeler, assets, review=(), version=2):
        out = []
        for asset_id, status, instances, parents in assets:
            canonical = json.dumps([status, sorted(instances, key=lambda i: i["id"])],
                                   separators=(",", ":"), ensure_ascii=False)
            out.append({"asset_id": asset_id, "revision": hashlib.sha256(canonical.encode()).hexdigest(),
                        "parents": parents, "status": status, "instances": instances,
                        "image": {"sha256": "ab" * 32, "width": side, "height": side}})
        body = {"format": "lamina-labels-fragment", "version": version, "batch": "fuzz", "labeler": labeler,
                "created": CREATED, "assets": out}
        if review:
            body["review"] = list(review)
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)

    issue = {"id": "ev-1", "asset_id": "img-0", "author": "bob", "at": CREATED, "kind": "issue",
             "point_image": [10.0, 12.0], "category": "bad_boundary", "comment": "check <b>this</b>"}
    write("fragment", "labels.json", fragment("alice", [("img-0", "in_progress", insts, [])]))
    write("fragment", "two-images.json", fragment("bob", [("img-0", "submitted", insts[:1], ["0" * 64]),
                                                         ("img-1", "unlabeled", [], [])], [issue]))
    write("fragment", "v1.json", fragment("carol", [("img-0", "in_progress", insts[1:], [])], version=1))
    return insts


def bundles(insts, side):
    asset = {"id": "img-0", "name": "tile <0>.png", "sha256": "ab" * 32, "width": side, "height": side,
             "metadata": {"organ": "kidney", "magnification": 40, "stain": None}, "status": "in_progress"}
    onto = {"classes": [{"id": i, "name": n, "color": c} for i, n, c in CLASSES]}
    v1 = {"format": "lamina.bundle", "version": 1, "project": {"id": "p1", "name": "Fuzz"},
          "ontology": onto, "assets": [asset], "instances": insts}
    write("bundle", "v1.json", json.dumps(v1))
    v2 = dict(v1, version=2, assets=[dict(asset, stage="to_label")])
    write("bundle", "v2.json", json.dumps(v2, indent=1))
    empty = dict(v1, assets=[], instances=[])
    write("bundle", "empty.json", json.dumps(empty))


def manifests():
    write("manifest", "urls.csv", "url,name,organ,sha256\nhttps://example.org/a.png,a,kidney,\n"
                                  "images/b.png,b,\"colon, distal\"," + "cd" * 32 + "\n")
    write("manifest", "items.json", json.dumps({"items": [{"url": "a.png", "metadata": {"organ": "liver"}},
                                                          {"image_url": "https://x.test/b.tif"}]}))
    write("manifest", "list.json", json.dumps([{"uri": "s3://bucket/c.jpg", "name": "c"}]))
    batch = {"format": "lamina-batch", "version": 1, "batch": "fuzz", "created": CREATED,
             "assets": [{"id": "img-0", "name": "a.png", "key": "batches/fuzz/images/a.png",
                         "sha256": "ab" * 32, "width": 64, "height": 64}]}
    write("manifest", "batch.json", json.dumps(batch))


def model_manifests():
    for path in sorted((ROOT.parent / "models").rglob("manifest.json")):
        write("model_manifest", f"{path.parent.name}.json", path.read_bytes())
    write("model_manifest", "broken.json", '{"format":"lamina.model","embedding_shape":[1,8,0,0]}')


def listings():
    s3 = """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>lamina</Name><Prefix>team/batches/fuzz/labels/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>team/batches/fuzz/labels/alice/20261202120000000-0123456789abcdef.json</Key><LastModified>2026-12-02T12:00:00.000Z</LastModified><ETag>"x"</ETag><Size>120</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>other/key.json</Key><LastModified>2026-12-02T12:00:00.000Z</LastModified><ETag>"y"</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>
<NextContinuationToken>token-1</NextContinuationToken></ListBucketResult>"""
    write("listing", "s3.xml", b"\x00" + s3.encode())
    dav = [{"name": "alice", "type": "directory", "mtime": "Wed, 02 Dec 2026 12:00:00 GMT"},
           {"name": "index.json", "type": "file", "mtime": "Wed, 02 Dec 2026 12:00:00 GMT", "size": 10},
           {"name": "..", "type": "directory"}, {"name": "a/b", "type": "file"}]
    write("listing", "webdav.json", b"\x01" + json.dumps(dav).encode())
    write("listing", "webdav-empty.json", b"\x01[]")


def rles(masks):
    for k, m in enumerate(masks[:3]):
        rle = mask_utils.encode(m)
        h, w = m.shape
        write("rle", f"nucleus-{k}", struct.pack("<HH", h, w) + rle["counts"])
    write("rle", "empty", struct.pack("<HH", 0, 0))
    ring = np.zeros((16, 16), np.uint8, order="F")
    ring[2:14, 2:14] = 1
    ring[5:11, 5:11] = 0
    write("rle", "ring", struct.pack("<HH", 16, 16) + mask_utils.encode(ring)["counts"])
    write("rle", "full", struct.pack("<HH", 3, 5) + mask_utils.encode(np.ones((3, 5), np.uint8, order="F"))["counts"])


def images():
    rng = np.random.default_rng(7)
    pixels = (rng.random((12, 9, 3)) * 255).astype(np.uint8)
    for fmt, ext in [("PNG", "png"), ("JPEG", "jpg"), ("TIFF", "tif")]:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, fmt)
        write("image_header", ext, buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(pixels[..., 0]).save(buf, "PNG")
    write("image_header", "gray.png", buf.getvalue())


def interop():
    """The hand-written fixtures of each format, behind the byte that picks it (the order of
    lamina_interop::detect::Format::ALL: qupath, labelbox, cvat, coco, labelstudio)."""
    fixtures = ROOT.parent / "crates/lamina-interop/tests/fixtures"
    for pick, path in [(0, "qupath/tile_b.geojson"), (1, "labelbox/prelabels.ndjson"),
                       (1, "labelbox/export_v2.ndjson"), (2, "cvat/annotations.xml"),
                       (3, "coco/instances.json"), (4, "labelstudio/export.json")]:
        write("interop", path.replace("/", "-"), bytes([pick]) + (fixtures / path).read_bytes())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent.parent / "shared/data/nuinsseg-dev"))
    args = parser.parse_args()
    masks = nuclei(args.data)
    insts = fragments(masks)
    bundles(insts, masks[0].shape[0])
    manifests()
    model_manifests()
    listings()
    rles(masks)
    images()
    interop()
    # Ledger inputs are 4-byte pushes: labeler, image, two parent picks, content.
    write("ledger", "linear", bytes([0, 0, 0xff, 1, 0, 0, 0x0f, 2, 1, 0, 0x1f, 3]))
    write("ledger", "fork", bytes([0, 0, 0xff, 1, 1, 0, 0x0f, 2, 2, 0, 0x0f, 6, 0, 0, 0x12, 7]))
    write("ledger", "two-images", bytes([0, 0, 0xff, 1, 1, 1, 0xff, 2, 2, 1, 0x0f, 0x83, 0, 0, 0xff, 1]))


if __name__ == "__main__":
    main()
