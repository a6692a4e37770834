#!/usr/bin/env python3
"""Checks a "Done only" export of the review end-to-end test, independently of Lamina's code: the COCO file
loads with pycocotools and holds exactly the approved image, every annotation's mask decodes to the area
the bundle states, and the bundle is valid against docs/bundle.schema.json (jsonschema).

Usage: check_done_export.py --coco X.coco.json --bundle X.bundle.json --image NAME --instances N
Prints a JSON summary; exits 1 with the reasons on any failure."""
import argparse
import json
import pathlib
import sys

import jsonschema
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

ap = argparse.ArgumentParser()
ap.add_argument("--coco", required=True)
ap.add_argument("--bundle", required=True)
ap.add_argument("--image", required=True)
ap.add_argument("--instances", type=int, required=True)
a = ap.parse_args()

problems = []
coco = COCO(a.coco)
names = [img["file_name"] for img in coco.dataset["images"]]
if names != [a.image]:
    problems.append(f"COCO images {names}, expected exactly [{a.image!r}]")
anns = coco.loadAnns(coco.getAnnIds())
if len(anns) != a.instances:
    problems.append(f"{len(anns)} annotations, expected {a.instances}")
bundle = json.loads(pathlib.Path(a.bundle).read_text())
schema = json.loads((pathlib.Path(__file__).parents[2] / "docs" / "bundle.schema.json").read_text())
for e in list(jsonschema.Draft202012Validator(schema).iter_errors(bundle))[:5]:
    problems.append(f"bundle schema: {'/'.join(map(str, e.absolute_path))}: {e.message}")
stages = [x.get("stage") for x in bundle["assets"]]
if stages != ["done"] or [x["name"] for x in bundle["assets"]] != [a.image]:
    problems.append(f"bundle assets {[x['name'] for x in bundle['assets']]} at stages {stages}")
areas = sorted(int(i["area"]) for i in bundle["instances"])
decoded = sorted(int(mask_utils.area(coco.annToRLE(ann))) for ann in anns)
if areas != decoded:
    problems.append(f"mask areas decoded by pycocotools {decoded} != the bundle's {areas}")
kinds = sorted({e["kind"] for e in bundle.get("review", [])})
print(json.dumps({"images": names, "annotations": len(anns), "areas": decoded, "review_kinds": kinds}))
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
