#!/usr/bin/env python3
"""The same training as `resnet-ddp train`, in PyTorch, to check our training quality side by side.

Same data and recipe: CIFAR-10 binary files, pixels / 255 minus the per-pixel training mean,
4-pixel zero padding (after mean subtraction) + random 32x32 crop + horizontal flip, epochs as
fresh permutations concatenated and cut into batches of 128, SGD momentum 0.9, weight decay 1e-4,
lr 0.1 divided by 10 at the milestones, He (fan-in) initialization, batch-norm momentum 0.1.
Evaluates the full test set and its exact first 1,000 images at the end and writes one JSON
line per evaluation to --metrics (same field names as our metrics.jsonl).

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy
    /tmp/torchenv/bin/python scripts/pytorch-train.py --data data/cifar-10-batches-bin \
        --depth 20 --iterations 2000 --milestones 1000,1500 --threads 2 [--plain]

With `--batches ours --init INIT.safetensors` it trains on exactly our engine's batches (images,
crops, flips: scripts/ours_batches.py) from our engine's initialization (a `resnet-ddp export` of
a one-step run at lr 1e-30), so that the two engines can be compared step by step
(scripts/compare-same-batches.py); `--nudge` adds a one-ulp change as the chaos control.

PyTorch is not a dependency of the project; this script is for comparisons only.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ours_batches import OurBatches  # noqa: E402
from torch_resnet import ResNet  # noqa: E402


def read_batches(data, names):
    records = []
    for name in names:
        raw = np.fromfile(data / name, dtype=np.uint8)
        if raw.size % 3073:
            sys.exit(f"{data / name}: size {raw.size} is not a multiple of 3073")
        records.append(raw.reshape(-1, 3073))
    raw = np.concatenate(records)
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def evaluate(model, images, labels, mean):
    model.eval()
    wrong = np.zeros(len(labels), dtype=bool)
    loss = 0.0
    with torch.no_grad():
        for start in range(0, len(labels), 1000):
            x = torch.from_numpy(images[start:start + 1000].astype(np.float32) / 255 - mean)
            y = torch.from_numpy(labels[start:start + 1000])
            logits = model(x.contiguous(memory_format=torch.channels_last))
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            wrong[start:start + 1000] = (logits.argmax(1) != y).numpy()
    model.train()
    return loss / len(labels), 100 * wrong.mean(), 100 * wrong[:1000].mean()


def load_init(model, path):
    """Copies the parameters of a `resnet-ddp export` file into `model`; returns its input mean."""
    from safetensors.numpy import load_file
    tensors = load_file(str(path))
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
                continue
            if name.endswith(".bias"):  # zero at initialization in both engines (an export after one
                value.zero_()           # step at lr 1e-30, the way to export an init, holds ~1e-30 ones)
                continue
            source = torch.from_numpy(tensors[name])
            if source.shape != value.shape:
                sys.exit(f"{path}: {name} has shape {tuple(source.shape)}, expected {tuple(value.shape)}")
            value.copy_(source)
    return tensors["input_mean"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("data/cifar-10-batches-bin"))
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--plain", action="store_true", help="the plain net of the same depth (no shortcuts)")
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--milestones", default="1000,1500")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (0: only at the end)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--metrics", type=Path, help="JSON lines, one per evaluation (per log line with --log-every)")
    p.add_argument("--log-every", type=int, default=50, help="steps per logged training window")
    p.add_argument("--batches", choices=["numpy", "ours"], default="numpy",
                   help="numpy: this script's own shuffling and augmentation; ours: exactly the images, crops "
                        "and flips of `resnet-ddp train --seed S` (scripts/ours_batches.py)")
    p.add_argument("--init", type=Path, help="start from these parameters (a `resnet-ddp export` file) instead of "
                   "a fresh He initialization; running statistics start at 0 and 1")
    p.add_argument("--nudge", action="store_true",
                   help="move conv1.weight[0, 0, 0, 0] by one float32 ulp before training (a chaos control)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train_x, train_y = read_batches(args.data, [f"data_batch_{i}.bin" for i in range(1, 6)])
    test_x, test_y = read_batches(args.data, ["test_batch.bin"])
    mean = (train_x.astype(np.float64) / 255).mean(axis=0).astype(np.float32)
    # Mean-subtracted, zero-padded training images: padding is the mean, as in our engine.
    padded = np.zeros((len(train_y), 3, 40, 40), dtype=np.float32)
    padded[:, :, 4:36, 4:36] = train_x.astype(np.float32) / 255 - mean

    model = ResNet(args.depth, residual=not args.plain)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)
    if args.init:
        mean = load_init(model, args.init)
    if args.nudge:
        with torch.no_grad():
            w = model.conv1.weight
            w[0, 0, 0, 0] = torch.nextafter(w[0, 0, 0, 0], torch.tensor(float("inf")))
    ours = OurBatches(train_x, args.seed) if args.batches == "ours" else None
    if ours and not args.init:  # our engine's mean image: Float(Double(sum) * (1 / (255 N)))
        mean = (train_x.astype(np.int64).sum(axis=0) * (1 / (255 * len(train_y)))).astype(np.float32)
    model = model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    milestones = [int(s) for s in args.milestones.split(",") if s]
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, 0.1)

    order = np.empty(0, dtype=np.int64)
    metrics = args.metrics.open("w") if args.metrics else None
    start = time.perf_counter()
    window_loss, window_wrong, window_steps = 0.0, 0, 0
    for step in range(1, args.iterations + 1):
        if ours:
            x, batch = ours.batch(step - 1, mean)
        else:
            while len(order) < 128:
                order = np.concatenate([order, rng.permutation(len(train_y))])
            batch, order = order[:128], order[128:]
            cx, cy = rng.integers(0, 9, 128), rng.integers(0, 9, 128)
            flip = rng.random(128) < 0.5
            x = np.stack([padded[i, :, y:y + 32, x:x + 32] for i, x, y in zip(batch, cx, cy)])
            x[flip] = x[flip, :, :, ::-1]
        x = torch.from_numpy(np.ascontiguousarray(x)).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(train_y[batch])
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        window_loss += loss.item()
        window_wrong += (logits.argmax(1) != y).sum().item()
        window_steps += 1
        if step % args.log_every == 0 or step == args.iterations:
            record = {"step": step, "lr": optimizer.param_groups[0]["lr"], "train_loss": window_loss / window_steps,
                      "train_error": 100 * window_wrong / (128 * window_steps),
                      "wall_seconds": time.perf_counter() - start}
            window_loss, window_wrong, window_steps = 0.0, 0, 0
            if (args.eval_every and step % args.eval_every == 0) or step == args.iterations:
                test_loss, test_error, exact = evaluate(model, test_x, test_y, mean)
                record.update(test_loss=test_loss, test_error=test_error, test_error_exact1000=exact)
            print(json.dumps(record), flush=True)
            if metrics and ("test_error" in record or args.log_every != 50):
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()


if __name__ == "__main__":
    main()
