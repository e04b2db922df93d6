#!/usr/bin/env python3
"""Predicted step time and scaling efficiency of data-parallel ResNet training on W workers.

A model, not a measurement: its inputs are measured (single-thread compute per step from
`resnet-ddp bench`, per-message software cost and bandwidth from `resnet-ddp bench --allreduce`
on loopback) plus an assumed network (one-way latency, link rate). No overlap of communication
with compute is assumed (the trainer has none today), and the compute of a worker is taken as
1/W of a single thread's step, which flatters large W: at 128 images per global batch a worker
of 64 computes 2 images, where the kernels are less efficient.

Per step, with L batch-norm layers, N gradient values (8-byte fixed point), hop(b) = software
cost + latency + b / min(link, software bandwidth):
  synchronized batch norm: 2 L all-reduces of <= 129 values by recursive doubling,
      each ceil(log2 W) exchanges (+2 when W is not a power of two);
  gradients: the ring, 2 (W - 1) hops of 8 N / W bytes;
  local batch norm: the gradients only (its running statistics are averaged with them).

    python3 scripts/predict-scaling.py --ms-resnet20 1.27 --ms-resnet56 3.8 --latency-us 100 --gbit 10
"""
import argparse
import math

NETS = {  # batch-norm layers and parameters of the paper's CIFAR nets
    "ResNet-20": (19, 269_722),
    "ResNet-56": (55, 853_018),
}


def exchanges(workers):
    power = 1 << (workers.bit_length() - 1)
    return int(math.log2(power)) + (2 if power != workers else 0)


def step_ms(workers, compute_ms, layers, params, sync, hop, small_hops):
    if workers == 1:
        return compute_ms
    t = compute_ms / workers
    if sync:
        t += 2 * layers * small_hops(workers) * hop(129 * 8)
    t += 2 * (workers - 1) * hop(8 * params / workers)
    return t


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ms-resnet20", type=float, required=True, help="single-thread ms per image of a training step, ResNet-20")
    p.add_argument("--ms-resnet56", type=float, required=True, help="the same for ResNet-56")
    p.add_argument("--software-us", type=float, default=100, help="per-message cost of our stack on loopback (bench --allreduce, 129 values, 2 workers)")
    p.add_argument("--software-gbytes", type=float, default=2.0, help="bytes/s our stack moves per hop on loopback, in GB/s")
    p.add_argument("--latency-us", type=float, default=100, help="one-way network latency")
    p.add_argument("--gbit", type=float, default=10, help="link rate, Gbit/s")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--batchnorm-algorithm", choices=["doubling", "ring"], default="doubling",
                   help="small all-reduces by recursive doubling (now), or whole vectors around the ring (W - 1 hops; before 2026-12-04)")
    args = p.parse_args()

    bandwidth = min(args.gbit / 8, args.software_gbytes) * 1e9

    def hop(nbytes):
        return (args.software_us + args.latency_us) / 1000 + nbytes / bandwidth * 1000

    small_hops = exchanges if args.batchnorm_algorithm == "doubling" else (lambda w: w - 1)
    counts = [w for w in (1, 2, 4, 8, 16, 32, 64) if w <= args.batch]
    print(f"Network: {args.latency_us:g} us one-way, {args.gbit:g} Gbit/s; our stack: {args.software_us:g} us per message, "
          f"{args.software_gbytes:g} GB/s; global batch {args.batch}; batch-norm sums by {args.batchnorm_algorithm}.\n")
    print("| net | batch norm | " + " | ".join(f"W={w}" for w in counts) + " |")
    print("|---|---|" + "---|" * len(counts))
    for name, ms_per_image in (("ResNet-20", args.ms_resnet20), ("ResNet-56", args.ms_resnet56)):
        layers, params = NETS[name]
        compute = ms_per_image * args.batch
        for sync in (True, False):
            cells = []
            for w in counts:
                t = step_ms(w, compute, layers, params, sync, hop, small_hops)
                cells.append(f"{t:.1f} ms, {100 * compute / (w * t):.0f} %")
            print(f"| {name} | {'sync' if sync else 'local'} | " + " | ".join(cells) + " |")
    print("\nEach cell: predicted step time and scaling efficiency (single-thread step / (W x step time)).")


if __name__ == "__main__":
    main()
