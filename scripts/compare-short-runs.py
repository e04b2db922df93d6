#!/usr/bin/env python3
"""Side-by-side table of short runs of our engine and of PyTorch (scripts/pytorch-train.py).

Each argument is NAME=PATH: a metrics.jsonl of `resnet-ddp train` (or its run directory) or a
--metrics file of pytorch-train.py. Prints one Markdown row per evaluation step: training error
(mean of the 50 steps before it), test error on the full set and on the exact first 1,000 images.

    python3 scripts/compare-short-runs.py "ours seed 1=runs/p56-s1" "PyTorch seed 1=torch-s1.jsonl"
"""
import json
import sys
from pathlib import Path


def evaluations(path):
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    rows = {}
    for line in path.open():
        record = json.loads(line)
        if "test_error" in record:
            rows[record["step"]] = record
    return rows


def main():
    if len(sys.argv) < 2 or any("=" not in a for a in sys.argv[1:]):
        sys.exit(__doc__)
    runs = [(a.split("=", 1)[0], evaluations(a.split("=", 1)[1])) for a in sys.argv[1:]]
    steps = sorted(set().union(*(rows.keys() for _, rows in runs)))
    print("| step | " + " | ".join(f"{name}: train / test / exact 1,000 %" for name, _ in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for step in steps:
        cells = []
        for _, rows in runs:
            r = rows.get(step)
            cells.append(f"{r['train_error']:.2f} / {r['test_error']:.2f} / {r['test_error_exact1000']:.1f}" if r else "-")
        print(f"| {step:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
