#!/usr/bin/env python3
"""One rank of a gloo all-reduce benchmark (PyTorch, CPU), to set beside ours
(`resnet-ddp bench --allreduce --allreduce-rank`): the same sizes in elements, the same
measurement. Each rank sums a float32 tensor (gloo's usual payload: half the bytes of our
8-byte fixed point) ITERATIONS times after 3 untimed ones, with no barrier between
iterations, and prints one JSON line per size with its own times, as ours does; the
collective's time of an iteration is the slowest rank's (scripts/bench-allreduce-netem).

    /tmp/torchenv/bin/python scripts/pytorch-allreduce-bench.py --world-size 2 --rank R \\
        --master 10.232.0.1:29500 --interface IFACE --elements 129,269722 --iterations 50
"""
import argparse
import json
import os
import time

import torch
import torch.distributed as dist

WARMUP = 3


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world-size", type=int, required=True)
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--master", required=True, help="HOST:PORT of rank 0's rendezvous")
    p.add_argument("--interface", help="network interface for gloo (GLOO_SOCKET_IFNAME)")
    p.add_argument("--elements", default="129,269722")
    p.add_argument("--iterations", type=int, default=50)
    args = p.parse_args()
    if not 2 <= args.world_size <= 64 or not 0 <= args.rank < args.world_size:
        p.error(f"rank {args.rank} of {args.world_size}: needs 2 <= world size <= 64 and 0 <= rank < world size")
    host, port = args.master.split(":")
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = host, port
    if args.interface:
        os.environ["GLOO_SOCKET_IFNAME"] = args.interface
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=args.rank, world_size=args.world_size)
    expected = args.world_size * (args.world_size + 1) / 2
    for count in (int(e) for e in args.elements.split(",")):
        values = torch.empty(count, dtype=torch.float32)
        seconds = []
        for iteration in range(WARMUP + args.iterations):
            values.fill_(args.rank + 1)
            start = time.perf_counter()
            dist.all_reduce(values)
            elapsed = time.perf_counter() - start
            if not bool((values == expected).all()):
                raise SystemExit(f"rank {args.rank}: gloo's sum of {count} elements is wrong")
            if iteration >= WARMUP:
                seconds.append(elapsed)
        print(json.dumps({"elements": count, "bytes": count * 4, "workers": args.world_size, "rank": args.rank,
                          "algorithm": "gloo", "seconds": [round(s, 6) for s in seconds]}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
