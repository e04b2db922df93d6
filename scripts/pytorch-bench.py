#!/usr/bin/env python3
"""PyTorch CPU throughput for the paper's CIFAR ResNets, to compare with `resnet-ddp bench`.

Same work as `resnet-ddp bench`: synthetic 32x32 images, batch 128, training = forward + loss +
backward + SGD step (momentum 0.9, weight decay 1e-4), inference = forward in eval mode; median
of the timed steps after warm-up; channels-last memory format (PyTorch's fastest on CPU).

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch
    /tmp/torchenv/bin/python scripts/pytorch-bench.py [--depths 20,56] [--threads 1,2] [--steps 20]

Run it right after `resnet-ddp bench` with the same flags: the machines are noisy, so only
figures measured side by side in one sitting compare.
"""
import argparse
import json
import statistics
import time

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_resnet import ResNet  # noqa: E402


def measure(depth, mode, threads, batch, warmup, steps):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = ResNet(depth).to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 32, 32).to(memory_format=torch.channels_last)
    y = torch.arange(batch) % 10
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    model.train(mode == "train")
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        if mode == "train":
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        else:
            with torch.inference_mode():
                model(x)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--depths", default="20,56")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--modes", default="train,inference")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.json:
        print(f"PyTorch {torch.__version__}\nmodel       mode       threads  batch   median ms   images/s")
    for depth in map(int, args.depths.split(",")):
        for mode in args.modes.split(","):
            for threads in map(int, args.threads.split(",")):
                seconds = measure(depth, mode, threads, args.batch_size, args.warmup, args.steps)
                ips = args.batch_size / seconds
                if args.json:
                    print(json.dumps({"model": f"ResNet-{depth}", "mode": mode, "threads": threads, "batch": args.batch_size,
                                      "images_per_second": round(ips, 1), "median_ms": round(seconds * 1000, 2),
                                      "framework": f"pytorch {torch.__version__}"}))
                else:
                    print(f"ResNet-{depth:<4} {mode:<10} {threads:7d}  {args.batch_size:5d}  {seconds * 1000:10.2f}  {ips:9.1f}", flush=True)


if __name__ == "__main__":
    main()
