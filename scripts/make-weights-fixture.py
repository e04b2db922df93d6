#!/usr/bin/env python3
"""Writes the PyTorch side of the weights-interop test (Tests/TrainingTests/Fixtures):
resnet8-pytorch.safetensors, a ResNet-8 state_dict saved by safetensors itself (random weights and
running statistics, so that eval mode uses them), and resnet8-pytorch-logits.safetensors: 16 real
test images (the exact first ones), preprocessed (pixels / 255 minus the per-pixel mean of the
50,000 training images, NHWC), and PyTorch's eval-mode logits for them.
Usage: make-weights-fixture.py [DATA_DIR] (needs torch, numpy, safetensors)."""
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_resnet import ResNet  # noqa: E402


def main():
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "data/cifar-10-batches-bin")
    out = Path(__file__).resolve().parent.parent / "Tests/TrainingTests/Fixtures"
    out.mkdir(parents=True, exist_ok=True)
    train = np.concatenate([np.fromfile(data / f"data_batch_{i}.bin", dtype=np.uint8).reshape(-1, 3073) for i in range(1, 6)])
    mean = train[:, 1:].reshape(-1, 3, 32, 32).astype(np.float64).mean(axis=0) / 255.0
    test = np.fromfile(data / "test_batch.bin", dtype=np.uint8).reshape(-1, 3073)[:16]
    images = (test[:, 1:].reshape(16, 3, 32, 32).astype(np.float64) / 255.0 - mean).astype(np.float32)

    torch.manual_seed(1)
    model = ResNet(8)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(images))
    save_file(model.state_dict(), str(out / "resnet8-pytorch.safetensors"))
    save_file({"input": torch.from_numpy(np.ascontiguousarray(images.transpose(0, 2, 3, 1))), "logits": logits.contiguous()},
              str(out / "resnet8-pytorch-logits.safetensors"))
    print("wrote", out / "resnet8-pytorch.safetensors", "and", out / "resnet8-pytorch-logits.safetensors")


if __name__ == "__main__":
    main()
