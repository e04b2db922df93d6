#!/usr/bin/env python3
"""Predicted step time and scaling efficiency of data-parallel ResNet training on W workers.

A model, not a measurement: its inputs are measured (single-thread compute per step from
`resnet-ddp bench`, per-message software cost and bandwidth from `resnet-ddp bench --allreduce`
on loopback) plus an assumed network (one-way latency, link rate). The compute of a worker is taken as
1/W of a single thread's step, which flatters large W: at 128 images per global batch a worker
of 64 computes 2 images, where the kernels are less efficient.

Per step, with L batch-norm layers, N gradient values (8-byte fixed point), hop(b) = software
cost + latency + b / min(link, software bandwidth):
  synchronized batch norm: 2 L all-reduces of <= 129 values by recursive doubling,
      each ceil(log2 W) exchanges (+2 when W is not a power of two), each costing a hop plus
      (K - 1) latencies (--exchange-latencies K: ranks that reach an exchange apart wait for
      each other; measured K is about 2, see docs/performance.md);
  gradients: the ring, 2 (W - 1) hops of 8 N / W bytes;
  local batch norm: the gradients only (its running statistics are averaged with them).
With --overlap (the trainer since 2026-12-05, local batch norm only) the gradients go in buckets of
at least max(64 Ki, 16 Ki x W) values (since 2026-12-06; before, 64 Ki at any W: --fixed-bucket)
while the backward pass computes the rest, each bucket its own ring pass:
  exposed gradient time = max(ring pass of the last bucket, all buckets' ring passes - backward),
backward being --backward-share of a worker's compute (the first layers' bucket cannot overlap;
the ring passes are assumed not to slow the compute they run beside, which flatters 2 cores).

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


def bucket(workers, fixed=False):
    """Fewest gradient values per bucket (OverlappedAllReduce.bucketMinimum(worldSize:))."""
    return 1 << 16 if fixed else max(1 << 16, (1 << 14) * workers)


def ring_ms(workers, values, hop):
    return 2 * (workers - 1) * hop(8 * values / workers)


def step_ms(workers, compute_ms, layers, params, sync, hop, small_hops, overlap=False, backward_share=0.0, fixed_bucket=False,
            exchange=None):
    if workers == 1:
        return compute_ms
    t = compute_ms / workers
    if sync:
        t += 2 * layers * small_hops(workers) * (exchange or hop)(129 * 8)
    if overlap and not sync:
        size = bucket(workers, fixed_bucket)
        sizes = [size] * max(1, params // size)
        sizes[-1] += params - sum(sizes)  # the remainder joins the last bucket
        passes = sum(ring_ms(workers, n, hop) for n in sizes)
        t += max(ring_ms(workers, sizes[-1], hop), passes - backward_share * t)
    else:
        t += ring_ms(workers, params, hop)
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
    p.add_argument("--overlap", action="store_true",
                   help="local batch norm's gradient buckets overlap the backward pass (the trainer since 2026-12-05)")
    p.add_argument("--backward-share", type=float, default=0.65,
                   help="share of a training step's compute that is the backward pass (with --overlap)")
    p.add_argument("--exchange-latencies", type=float, default=1.0,
                   help="one-way latencies each synchronized batch-norm exchange costs: 1 if the ranks reach it together; "
                        "measured about 2 at W = 2 and 1.7 at W = 4 over netwire (docs/performance.md, 2026-12-07)")
    p.add_argument("--fixed-bucket", action="store_true",
                   help="with --overlap: buckets of 64 Ki values at any W (the trainer before 2026-12-06)")
    args = p.parse_args()

    bandwidth = min(args.gbit / 8, args.software_gbytes) * 1e9

    def hop(nbytes):
        return (args.software_us + args.latency_us) / 1000 + nbytes / bandwidth * 1000

    def exchange(nbytes):  # a synchronized batch-norm exchange: the ranks' skew costs latency too
        return hop(nbytes) + (args.exchange_latencies - 1) * args.latency_us / 1000

    small_hops = exchanges if args.batchnorm_algorithm == "doubling" else (lambda w: w - 1)
    counts = [w for w in (1, 2, 4, 8, 16, 32, 64) if w <= args.batch]
    print(f"Network: {args.latency_us:g} us one-way, {args.gbit:g} Gbit/s; our stack: {args.software_us:g} us per message, "
          f"{args.software_gbytes:g} GB/s; global batch {args.batch}; batch-norm sums by {args.batchnorm_algorithm}, "
          f"{args.exchange_latencies:g} one-way latencies an exchange; "
          + (f"local batch norm's gradients overlap a backward pass of {args.backward_share:g} of the compute, "
             f"in buckets of {'64 Ki values' if args.fixed_bucket else 'max(64 Ki, 16 Ki x W) values'}.\n" if args.overlap
             else "no overlap.\n"))
    print("| net | batch norm | " + " | ".join(f"W={w}" for w in counts) + " |")
    print("|---|---|" + "---|" * len(counts))
    for name, ms_per_image in (("ResNet-20", args.ms_resnet20), ("ResNet-56", args.ms_resnet56)):
        layers, params = NETS[name]
        compute = ms_per_image * args.batch
        for sync in (True, False):
            cells = []
            for w in counts:
                t = step_ms(w, compute, layers, params, sync, hop, small_hops, args.overlap, args.backward_share, args.fixed_bucket,
                            exchange)
                cells.append(f"{t:.1f} ms, {100 * compute / (w * t):.0f} %")
            print(f"| {name} | {'sync' if sync else 'local'} | " + " | ".join(cells) + " |")
    print("\nEach cell: predicted step time and scaling efficiency (single-thread step / (W x step time)).")


if __name__ == "__main__":
    main()
