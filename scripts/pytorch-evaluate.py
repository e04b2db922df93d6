#!/usr/bin/env python3
"""Evaluates a released model file (models/*.safetensors) in PyTorch, so that its card's test
errors are checked by a second engine, and writes the state_dict back with safetensors itself
(OUT, optional), which `resnet-ddp evaluate --weights OUT` must evaluate to the same errors.
Usage: pytorch-evaluate.py MODEL.safetensors DEPTH [--plain] [--data DIR] [--out OUT]
(needs torch, numpy, safetensors: python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install
torch numpy safetensors)."""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_resnet import ResNet  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("depth", type=int)
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--data", default="data/cifar-10-batches-bin")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(1)

    weights = load_file(args.model)
    mean = weights.pop("input_mean")
    net = ResNet(args.depth, residual=not args.plain)
    net.load_state_dict(weights, strict=True)
    net.eval()

    test = np.fromfile(Path(args.data) / "test_batch.bin", dtype=np.uint8).reshape(-1, 3073)
    labels = torch.from_numpy(test[:, 0].astype(np.int64))
    images = torch.from_numpy(test[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    wrong = torch.zeros(len(labels), dtype=torch.bool)
    with torch.no_grad():
        for start in range(0, len(labels), 500):
            batch = images[start:start + 500] - mean
            wrong[start:start + 500] = net(batch).argmax(dim=1) != labels[start:start + 500]
    print(f"PyTorch {torch.__version__}: {args.model}: test error {100 * wrong.float().mean():.2f} % "
          f"(all {len(labels)}), {100 * wrong[:1000].float().mean():.2f} % (exact first 1,000)")

    if args.out:
        state = net.state_dict()
        state["input_mean"] = mean
        save_file({name: tensor.contiguous() for name, tensor in state.items()}, args.out)
        print(f"wrote {args.out} (safetensors.torch.save_file of the loaded state_dict)")


if __name__ == "__main__":
    main()
