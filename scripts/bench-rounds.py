#!/usr/bin/env python3
"""Interleaved benchmark rounds: two resnet-ddp binaries and PyTorch, back to back per round.

On a noisy machine only figures measured side by side compare, so each round runs the "before"
binary, the "now" binary and scripts/pytorch-bench.py with the same flags, then the next round.
Prints each round and, per configuration, the medians and the median of the rounds' ratios.

  scripts/bench-rounds.py BEFORE NOW --python /tmp/torchenv/bin/python --rounds 3 \\
      --configs "20,2,train,128;56,2,train,128;20,1,inference,1000"

A configuration is depth,threads,mode,batch. Build both binaries with -c release.
"""
import argparse, json, os, statistics, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("before")
parser.add_argument("now")
parser.add_argument("--python", default=sys.executable, help="a Python with torch (default: this one)")
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--configs", default="20,2,train,128;56,2,train,128;20,1,train,128;56,1,train,128;20,1,inference,1000;20,2,inference,1000")
args = parser.parse_args()


def images_per_second(command):
    result = subprocess.run(command, capture_output=True, text=True)
    rows = [line for line in result.stdout.splitlines() if line.startswith("ResNet")]
    if result.returncode != 0 or not rows:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    return float(rows[-1].split()[5])


results = {}
for config in args.configs.split(";"):
    try:
        depth, threads, mode, batch = config.split(",")
    except ValueError:
        sys.exit(f"configuration '{config}' is not depth,threads,mode,batch")
    flags = ["--depths", depth, "--threads", threads, "--modes", mode, "--batch-size", batch,
             "--steps", "20" if mode == "train" else "5"]
    key = f"ResNet-{depth} {mode} batch {batch} {threads} thread(s)"
    runs = results[key] = {"before": [], "now": [], "pytorch": []}
    for r in range(args.rounds):
        runs["before"].append(images_per_second([args.before, "bench", *flags]))
        runs["now"].append(images_per_second([args.now, "bench", *flags]))
        runs["pytorch"].append(images_per_second([args.python, os.path.join(here, "pytorch-bench.py"), *flags]))
        print(f"{key}, round {r + 1}: before {runs['before'][-1]} / now {runs['now'][-1]} / PyTorch {runs['pytorch'][-1]} images/s", flush=True)
print(json.dumps(results))
for key, runs in results.items():
    median = {name: statistics.median(values) for name, values in runs.items()}
    ratios = [a / b for a, b in zip(runs["now"], runs["pytorch"])]
    print(f"{key}: before {median['before']:.1f}, now {median['now']:.1f}, PyTorch {median['pytorch']:.1f} images/s; "
          f"now / PyTorch {median['now'] / median['pytorch']:.2f}x (median of the rounds' ratios {statistics.median(ratios):.2f}x)")
