"""Give decoder ONNX files exported before model.py's `_one_matmul` existed the same identity Max between each
Concat and the Conv that reads it, so that tract runs each of those convolutions as one MatMul instead of one
per concatenated part (see `_one_matmul` for why that matters). Weights are untouched and onnxruntime's outputs
must stay bit for bit the same, or nothing is written; the manifest's sha256 of each changed file is updated.

    python3 models/tools/nuclei/whole_matmuls.py models/nuclei-v3
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

LOWEST = -3.0e38   # as model._one_matmul: below every finite logit and map, so Max(x, LOWEST) == x


def add_barriers(model):
    """Insert Clip(min=LOWEST) on every Concat output read by a Conv; returns how many were added."""
    g = model.graph
    made_by = {o: n for n in g.node for o in n.output}
    lowest = "whole_matmuls_lowest"
    added = 0
    nodes = []
    for n in g.node:
        src = made_by.get(n.input[0]) if n.op_type == "Conv" else None
        if src is not None and src.op_type == "Concat":
            out = n.input[0] + "_whole"
            nodes.append(helper.make_node("Clip", [n.input[0], lowest, ""], [out], name=n.name + "_whole"))
            n.input[0] = out
            added += 1
        nodes.append(n)
    if added:
        g.initializer.append(numpy_helper.from_array(np.array(LOWEST, np.float32), lowest))
        del g.node[:]
        g.node.extend(nodes)
    return added


def outputs(path, prompts):
    """onnxruntime's outputs of the file at path for each feed dict in prompts (one session)."""
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return [s.run(None, feeds) for feeds in prompts]


def sample_feeds(model, labels, seed=0):
    """Random embedding and previous mask, points over the 256 px input with the given labels."""
    n_points = len(labels)
    rng = np.random.default_rng(seed)
    shapes = {i.name: [d.dim_value or n_points for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    feeds = {k: rng.normal(size=v).astype(np.float32) for k, v in shapes.items()}
    feeds["point_coords"] = rng.uniform(0, 256, size=shapes["point_coords"]).astype(np.float32)
    feeds["point_labels"] = np.array([labels], np.float32)
    feeds["has_mask_input"] = np.ones(shapes["has_mask_input"], np.float32)
    return feeds


def main(folder):
    man_path = os.path.join(folder, "manifest.json")
    with open(man_path) as f:
        man = json.load(f)
    for dec in man["decoders"]:
        path = os.path.join(folder, dec["file"])
        model = onnx.load(path)
        prompts = [sample_feeds(model, [1, 0, -1]), sample_feeds(model, [2, 3, 1], seed=1)]
        before = outputs(path, prompts)
        added = add_barriers(model)
        if not added:
            print(f"{path}: nothing to change")
            continue
        onnx.checker.check_model(model)
        tmp = path + ".tmp"
        onnx.save(model, tmp)
        after = outputs(tmp, prompts)
        if any(not np.array_equal(a, b) for x, y in zip(before, after) for a, b in zip(x, y)):
            os.remove(tmp)
            raise SystemExit(f"{path}: outputs changed; left as it was")
        os.replace(tmp, path)
        with open(path, "rb") as f:
            dec["sha256"] = hashlib.sha256(f.read()).hexdigest()
        print(f"{path}: {added} convolutions kept whole, outputs unchanged")
    with open(man_path, "w") as f:
        json.dump(man, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
