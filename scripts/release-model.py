#!/usr/bin/env python3
"""Release a finished run's weights: models/NAME.safetensors and its model card models/NAME.md.

    python3 scripts/release-model.py RUN_DIR NAME [--binary .build/release/resnet-ddp]
        [--data data/cifar-10-batches-bin] [--command "the command that trained it"]

Exports the run's newest checkpoint (`resnet-ddp export`: parameters and batch-norm running
statistics, no momentum), evaluates the exported file itself (`resnet-ddp evaluate --weights`), and
writes a card with the architecture, steps, the test errors on the exact first 1,000 images and
on the full test set (95 % Wilson intervals), the training configuration, the sha256, the one
command that reproduces the errors and a PyTorch snippet. Refuses a run that has not reached its
configured iterations.
"""
import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_results import wilson  # noqa: E402


PYTORCH_CHECK = """
import sys, numpy as np, torch
from safetensors.torch import load_file
scripts, path, data, depth, residual = sys.argv[1:]
sys.path.insert(0, scripts); from torch_resnet import ResNet
weights = load_file(path); mean = weights.pop("input_mean")
net = ResNet(int(depth), residual=residual == "True"); net.load_state_dict(weights, strict=True); net.eval()
raw = np.fromfile(data + "/test_batch.bin", np.uint8).reshape(-1, 3073)[:1000]
images = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32) / 255.0).float()
with torch.no_grad():
    predicted = net(images - mean).argmax(1).numpy()
print(torch.__version__, 100 * (predicted != raw[:, 0]).mean())
"""


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name", help="file name without suffix, e.g. resnet20-cifar10")
    parser.add_argument("--binary", default=".build/release/resnet-ddp")
    parser.add_argument("--data", default="data/cifar-10-batches-bin")
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--command", help="the command that trained the run, for the card")
    parser.add_argument("--python", help="a Python with torch and safetensors: also evaluate the file in PyTorch")
    args = parser.parse_args()

    config = json.loads((args.run_dir / "config.json").read_text())
    checkpoints = sorted((args.run_dir / "checkpoints").glob("step-*.ckpt"))
    if not checkpoints:
        sys.exit(f"{args.run_dir}: no checkpoints")
    checkpoint = checkpoints[-1]
    step = int(checkpoint.stem.split("-")[1])
    if step < config["iterations"]:
        sys.exit(f"{checkpoint}: step {step} of {config['iterations']}; release a finished run")

    args.models.mkdir(parents=True, exist_ok=True)
    weights = args.models / f"{args.name}.safetensors"
    run([args.binary, "export", "--checkpoint", str(checkpoint), "--out", str(weights), "--data", args.data])
    evaluate = [args.binary, "evaluate", "--weights", str(weights), "--data", args.data]
    result = json.loads(run(evaluate + ["--json"]))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    exact, full = result["test_error_exact1000"], result["test_error"]
    exact_low, exact_high = wilson(exact, 1000)
    full_low, full_high = wilson(full, result["images"])
    recipe = (f"{config['iterations']:,} steps of {config['batchSize']} images, lr {config['learningRate']} divided by 10 at "
              f"{', '.join(f'{m:,}' for m in config['milestones'])}, momentum {config['momentum']}, weight decay "
              f"{config['weightDecay']}, seed {config['seed']}, {50000 - config['validation']:,} training images")
    pytorch = ""
    if args.python:
        check = run([args.python, "-c", PYTORCH_CHECK, str(Path(__file__).resolve().parent), str(weights), args.data,
                     str(config["depth"]), str(config["residual"])])
        torch_version, torch_exact = check.split()
        pytorch = (f"\nPyTorch {torch_version} on this file (`--python` of the script): {float(torch_exact):.2f} % on the "
                   f"exact first 1,000.\n")
    card = f"""# {result['model']} on CIFAR-10

Weights of `{args.run_dir.name}` after {step:,} steps: {recipe}. Parameters and batch-norm running
statistics under the names and layouts of `scripts/torch_resnet.py` (convolutions OIHW), plus
`input_mean` (the per-pixel training mean the inputs expect, [3, 32, 32], pixels in [0, 1]); no
optimizer state.

| test images | error % | 95 % interval (Wilson) |
|---|---|---|
| exact first 1,000 | {exact:.2f} | {exact_low:.1f}-{exact_high:.1f} |
| all {result['images']:,} (9,000 of them rebuilt from JPEGs, see ../shared/data/PROVENANCE.md) | {full:.2f} | {full_low:.1f}-{full_high:.1f} |

Reproduce the errors from this file:

```sh
resnet-ddp evaluate --weights models/{weights.name} --data data/cifar-10-batches-bin
```

sha256 `{digest}`
{pytorch}
Trained with: `{args.command or 'see docs/results/README.md'}`
(card written by `scripts/release-model.py`).

In PyTorch:

```python
import sys, torch
from safetensors.torch import load_file
sys.path.insert(0, "scripts"); from torch_resnet import ResNet
weights = load_file("models/{weights.name}"); mean = weights.pop("input_mean")
net = ResNet({config['depth']}{'' if config['residual'] else ', residual=False'}); net.load_state_dict(weights, strict=True); net.eval()
logits = net(images - mean)   # images: [N, 3, 32, 32] RGB in [0, 1]
```
"""
    (args.models / f"{args.name}.md").write_text(card)
    print(f"{weights} ({digest[:16]}...): test error {full:.2f} % full, {exact:.2f} % exact first 1,000; "
          f"card {args.models / (args.name + '.md')}")


if __name__ == "__main__":
    main()
