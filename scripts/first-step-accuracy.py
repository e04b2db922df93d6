#!/usr/bin/env python3
"""How exact is one forward pass? The first training step's loss of a net (from a `resnet-ddp
export` of its initialization) on our engine's first batch, in PyTorch float64 (the reference),
float32 NCHW and float32 channels-last, against our engine's (from its metrics.jsonl); then
batch norm alone (training mode) in float32 NCHW and channels-last against float64.

    /tmp/torchenv/bin/python scripts/first-step-accuracy.py --init INIT.safetensors \
        --ours RUN/metrics.jsonl --depth 56 --plain --seed 1
"""
import argparse, json, sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ours_batches import OurBatches  # noqa: E402
from torch_resnet import ResNet  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--data", type=Path, default=Path("data/cifar-10-batches-bin"))
p.add_argument("--init", type=Path, required=True)
p.add_argument("--ours", type=Path, required=True, help="metrics.jsonl of `resnet-ddp train --log-every 1` from that init")
p.add_argument("--depth", type=int, default=56)
p.add_argument("--plain", action="store_true")
p.add_argument("--seed", type=int, default=1)
args = p.parse_args()

import importlib.util  # noqa: E402
spec = importlib.util.spec_from_file_location("pytorch_train", Path(__file__).with_name("pytorch-train.py"))
pytorch_train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pytorch_train)
images, labels = pytorch_train.read_batches(args.data, [f"data_batch_{i}.bin" for i in range(1, 6)])
model = ResNet(args.depth, residual=not args.plain)
mean = pytorch_train.load_init(model, args.init)
x, indices = OurBatches(images, args.seed).batch(0, mean)
y = torch.from_numpy(labels[indices])


def loss(dtype, memory_format, threads):
    torch.set_num_threads(threads)
    net = ResNet(args.depth, residual=not args.plain)
    net.load_state_dict(model.state_dict())
    net = net.to(dtype).to(memory_format=memory_format).train()
    with torch.no_grad():
        return F.cross_entropy(net(torch.from_numpy(x).to(dtype).contiguous(memory_format=memory_format)), y).item()


reference = loss(torch.float64, torch.contiguous_format, 2)
ours = json.loads(open(args.ours).readline())
assert ours["step"] == 1, f"{args.ours}: the first record is step {ours['step']}, not 1 (train with --log-every 1)"
print(f"first-step loss, float64 reference {reference:.7f}")
print(f"  ours (fixed-point sums)         {ours['train_loss']:.7f}  error {abs(ours['train_loss'] - reference):.1e}")
for name, fmt in [("NCHW", torch.contiguous_format), ("channels-last", torch.channels_last)]:
    for threads in (1, 2):
        value = loss(torch.float32, fmt, threads)
        print(f"  PyTorch float32 {name:13s} {threads} thread(s) {value:.7f}  error {abs(value - reference):.1e}")

torch.manual_seed(0)
print("batch norm alone (training mode, [128, 32, 16, 16], N(shift, 1)): largest output error against float64")
for shift in (0.0, 3.0, 30.0):
    z = torch.randn(128, 32, 16, 16, dtype=torch.float64) + shift
    exact = F.batch_norm(z, None, None, training=True)
    errors = [(F.batch_norm(z.float().contiguous(memory_format=fmt), None, None, training=True).double() - exact).abs().max().item()
              for fmt in (torch.contiguous_format, torch.channels_last)]
    print(f"  shift {shift:4.0f}: NCHW {errors[0]:.1e}, channels-last {errors[1]:.1e}")
