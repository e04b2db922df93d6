#!/usr/bin/env python3
"""Per-step comparison of trainings on identical batches from an identical initialization:
our engine (metrics.jsonl of `resnet-ddp train --log-every 1`) against PyTorch
(`scripts/pytorch-train.py --batches ours --init ... --log-every 1 --metrics FILE`) and against
PyTorch nudged by one ulp (`--nudge`, the chaos control). If ours differs from PyTorch by no more
than PyTorch differs from itself after a one-ulp change, the two engines' arithmetic cannot be
told apart by training. Prints a markdown table of step windows: mean absolute loss differences,
then each run's mean training loss and error; then the evaluations.

    python3 scripts/compare-same-batches.py OURS/metrics.jsonl TORCH.jsonl TORCH-NUDGED.jsonl
"""
import json, sys


def load(path):
    steps, evaluations = {}, {}
    for line in open(path):
        record = json.loads(line)
        if "train_loss" in record:
            steps[record["step"]] = (record["train_loss"], record["train_error"])
        if "test_error" in record:
            evaluations[record["step"]] = (record["test_error"], record["test_error_exact1000"])
    return steps, evaluations


if len(sys.argv) != 4:
    sys.exit(__doc__)
(ours, ours_eval), (torch_a, torch_eval), (torch_b, nudged_eval) = (load(p) for p in sys.argv[1:])
last = min(max(ours), max(torch_a), max(torch_b))
edges = [1, 2, 6, 21, 51, 101, 201, 301, 401, 501] + list(range(751, 2001, 250))
windows = [(lo, hi - 1) for lo, hi in zip(edges, edges[1:] + [last + 1]) if lo <= last]
mean = lambda values: sum(values) / len(values)  # noqa: E731
print("| steps | mean abs loss difference: ours - PyTorch | PyTorch - PyTorch nudged | ours - PyTorch nudged "
      "| mean loss: ours / PyTorch / nudged | mean training error %: ours / PyTorch / nudged |")
print("|---|---|---|---|---|---|")
for lo, hi in windows:
    steps = [s for s in range(lo, min(hi, last) + 1)]
    d = [mean([abs(x[s][0] - y[s][0]) for s in steps]) for x, y in ((ours, torch_a), (torch_a, torch_b), (ours, torch_b))]
    loss = [mean([run[s][0] for s in steps]) for run in (ours, torch_a, torch_b)]
    error = [mean([run[s][1] for s in steps]) for run in (ours, torch_a, torch_b)]
    span = f"{lo}" if lo == min(hi, last) else f"{lo}-{min(hi, last)}"
    print(f"| {span} | {d[0]:.1e} | {d[1]:.1e} | {d[2]:.1e} | {loss[0]:.4f} / {loss[1]:.4f} / {loss[2]:.4f} "
          f"| {error[0]:.2f} / {error[1]:.2f} / {error[2]:.2f} |")
print()
print("| step | test error %, full / exact first 1,000: ours | PyTorch | PyTorch nudged |")
print("|---|---|---|---|")
for step in sorted(set(ours_eval) & set(torch_eval) & set(nudged_eval)):
    cells = " | ".join(f"{e[step][0]:.2f} / {e[step][1]:.1f}" for e in (ours_eval, torch_eval, nudged_eval))
    print(f"| {step} | {cells} |")
