#!/usr/bin/env python3
"""Writes Tests/LayersTests/Fixtures/resnet8-reference.bin: a PyTorch reference for ResNet-8.

Inputs are the first 4 training images of CIFAR-10 (data_batch_1.bin), scaled to [0, 1] with
the per-channel training mean subtracted. The network (the paper's 6n+2 net with n = 1, option-A
shortcuts) is initialized from torch.manual_seed(0), run once in training mode, and the mean
cross-entropy is back-propagated. Saved, in the Swift engine's layout (NHWC activations, conv
weights [ky][kx][ci][co]): input, labels, every parameter, logits, loss, every gradient and the
batch-norm running statistics after the step.

File format: b"RDFX", uint32 entry count, then per entry: uint32 name length, UTF-8 name,
uint32 float count, float32 little-endian values.

Run once (PyTorch is not a dependency of the project):
    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy
    /tmp/torchenv/bin/python scripts/make-reference-fixture.py data/cifar-10-batches-bin
"""
import struct
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_resnet import ResNet  # noqa: E402


def resnet8():
    """ResNet-8 with non-trivial initial values everywhere, so that every term is tested."""
    model = ResNet(8)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.bias, std=0.1)
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    return model


def engine_layout(name, t):
    a = t.detach().numpy()
    if a.ndim == 4 and "conv" in name:  # [co][ci][ky][kx] -> [ky][kx][ci][co]
        a = a.transpose(2, 3, 1, 0)
    return np.ascontiguousarray(a, dtype="<f4").ravel()


def main():
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "data/cifar-10-batches-bin")
    raw = np.fromfile(data / "data_batch_1.bin", dtype=np.uint8)[: 4 * 3073].reshape(4, 3073)
    labels = raw[:, 0].astype(np.int64)
    images = raw[:, 1:].reshape(4, 3, 32, 32).astype(np.float32) / 255.0
    images -= np.array([125.307, 122.950, 113.865], dtype=np.float32).reshape(1, 3, 1, 1) / 255.0

    torch.manual_seed(0)
    model = resnet8().train()
    x = torch.from_numpy(images)
    logits = model(x)
    loss = F.cross_entropy(logits, torch.from_numpy(labels))
    loss.backward()

    entries = [
        ("input", np.ascontiguousarray(images.transpose(0, 2, 3, 1)).ravel()),
        ("labels", labels.astype(np.float32)),
        ("logits", logits.detach().numpy().ravel()),
        ("loss", np.array([loss.item()], dtype=np.float32)),
    ]
    for name, p in model.named_parameters():
        entries.append((name, engine_layout(name, p)))
        entries.append(("grad:" + name, engine_layout(name, p.grad)))
    for name, b in model.named_buffers():
        if "running" in name:
            entries.append((name, b.numpy().astype(np.float32)))

    out = Path(__file__).resolve().parent.parent / "Tests/LayersTests/Fixtures/resnet8-reference.bin"
    with open(out, "wb") as f:
        f.write(b"RDFX" + struct.pack("<I", len(entries)))
        for name, values in entries:
            encoded = name.encode()
            f.write(struct.pack("<I", len(encoded)) + encoded + struct.pack("<I", values.size))
            f.write(np.asarray(values, dtype="<f4").tobytes())
    print(f"wrote {out} ({out.stat().st_size} bytes), loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
