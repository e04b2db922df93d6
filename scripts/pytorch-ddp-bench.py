#!/usr/bin/env python3
"""PyTorch DDP (gloo, CPU) training throughput of the paper's CIFAR ResNets, to set beside ours.

Each rank trains on its share of a 128-image batch of synthetic images (forward, loss, backward
with DDP's bucketed all-reduce overlapped with it, SGD step); rank 0 prints one JSON line with
the median step time over the timed steps. Batch norm is per rank (PyTorch's SyncBatchNorm needs
a GPU), so this compares with our `--batchnorm local`.

    /tmp/torchenv/bin/python scripts/pytorch-ddp-bench.py --world-size 2          # local processes
    /tmp/torchenv/bin/python scripts/pytorch-ddp-bench.py --world-size 2 --rank R \\
        --master 10.232.0.1:29500 --interface IFACE                               # one rank (bench-netem)
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_resnet import ResNet  # noqa: E402


def rank_main(rank, args):
    host, port = args.master.split(":")
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = host, port
    if args.interface:
        os.environ["GLOO_SOCKET_IFNAME"] = args.interface
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", rank=rank, world_size=args.world_size)
    torch.manual_seed(rank)
    model = ResNet(args.depth).to(memory_format=torch.channels_last).train()
    model = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    share = args.batch // args.world_size + (1 if rank < args.batch % args.world_size else 0)
    x = torch.randn(share, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (share,))
    times = []
    for step in range(args.warmup + args.steps):
        dist.barrier()
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    # A step ends when the slowest rank ends.
    gathered = [None] * args.world_size
    dist.all_gather_object(gathered, times)
    if rank == 0:
        per_step = [max(t[i] for t in gathered) for i in range(args.steps)]
        median = statistics.median(per_step)
        print(json.dumps({"framework": "pytorch-ddp-gloo", "depth": args.depth, "world_size": args.world_size,
                          "threads": args.threads, "batch": args.batch, "median_ms": 1000 * median,
                          "images_per_second": args.batch / median}), flush=True)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--world-size", type=int, default=2)
    p.add_argument("--rank", type=int, help="run only this rank (launched by another tool); default: spawn all locally")
    p.add_argument("--master", default="127.0.0.1:29500")
    p.add_argument("--interface", help="network interface for gloo (GLOO_SOCKET_IFNAME)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args()
    if args.rank is not None:
        rank_main(args.rank, args)
    else:
        mp.spawn(rank_main, args=(args,), nprocs=args.world_size)


if __name__ == "__main__":
    main()
