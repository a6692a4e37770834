#!/usr/bin/env python3
"""Metrics of 1,000 images x 30 nuclei: `lamina metrics` (native) beside pycocotools' COCOeval on the same
files. Prints figures and ratios; asserts only that both give the same mAP.

Usage: python3 bench/metrics.py --lamina target/release/lamina [--runs 5] [--data target/bench-metrics]
Data: python3 bench/metrics_data.py first. The worker's figure: node bench/browser_metrics.mjs.
"""
import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import time

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lamina", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--data", default="target/bench-metrics")
    args = ap.parse_args()
    d = lambda n: os.path.join(args.data, n)
    cli_total, cli_metrics, coco_eval, coco_total = [], [], [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        out = subprocess.run([args.lamina, "metrics", "--gt", d("bundle.json"), "--pred", d("results.json"), "--json"],
                             capture_output=True, text=True, check=True).stdout
        cli_total.append(time.perf_counter() - t0)
        report = json.loads(out)
        cli_metrics.append(report["seconds"])
        with contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            gt = COCO(d("coco.json"))
            dt = gt.loadRes(d("results.json"))
            t1 = time.perf_counter()
            e = COCOeval(gt, dt, "segm")
            e.evaluate()
            e.accumulate()
            e.summarize()
            t2 = time.perf_counter()
        coco_eval.append(t2 - t1)
        coco_total.append(t2 - t0)
    p50 = statistics.median
    print(f"{report['n_gt']} truth, {report['n_pred']} predictions on {len(report['images'])} images, {args.runs} runs, p50:")
    print(f"  lamina metrics (every figure: P/R/F1, IoU, Dice, PQ, bPQ/mPQ, AJI, mAP): {p50(cli_metrics)*1000:.0f} ms computing, {p50(cli_total)*1000:.0f} ms with reading the files")
    print(f"  pycocotools COCOeval (mAP only): {p50(coco_eval)*1000:.0f} ms evaluate+accumulate, {p50(coco_total)*1000:.0f} ms with loading")
    print(f"  ratio pycocotools / lamina: {p50(coco_eval)/p50(cli_metrics):.1f}x computing, {p50(coco_total)/p50(cli_total):.1f}x end to end")
    print(f"  mAP lamina {report['map']:.6f} pycocotools {e.stats[0]:.6f}; AP50 {report['ap50']:.6f} / {e.stats[1]:.6f}")
    if abs(report["map"] - e.stats[0]) > 1e-6 or abs(report["ap50"] - e.stats[1]) > 1e-6:
        raise SystemExit("mAP differs from pycocotools")


if __name__ == "__main__":
    main()
