#!/usr/bin/env python3
"""Files of other tools for the interop e2e test, and an independent reader of what the app exports.

    interop_files.py composite OUT.png W H      a Labelbox composite mask: red 6×5 at (40, 40), green 4×4 at (60, 60)
    interop_files.py qupath-zip ZIP              prints {file: [[class, area], ...]} read with shapely
"""

import json
import sys
import zipfile

import numpy as np
from PIL import Image
from shapely.geometry import shape


def composite(out, width, height):
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[40:45, 40:46] = (255, 0, 0)
    rgb[60:64, 60:64] = (0, 255, 0)
    Image.fromarray(rgb).save(out)


def qupath_zip(path):
    out = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            features = json.loads(z.read(name))["features"]
            rows = []
            for f in features:
                geometry = shape(f["geometry"])
                assert geometry.is_valid, name
                rows.append([f["properties"]["classification"]["name"], geometry.area])
            out[name] = sorted(rows)
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "composite":
        composite(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "qupath-zip":
        qupath_zip(sys.argv[2])
    else:
        sys.exit(__doc__)
