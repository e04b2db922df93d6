#!/usr/bin/env python3
"""The engine alone, as two local workers run it and as one process does: is a 1-thread worker
slower per image because of distribution, or because two processes share the machine?

Each round runs, back to back (synthetic data, `resnet-ddp bench`, training steps):
  one process, 2 threads, the whole batch        (what `train --threads 2` computes)
  two processes at once, 1 thread, half a batch  (what two workers compute, without any messages)
  one process, 1 thread, half a batch, alone     (a worker with the machine to itself)
and prints per configuration the median step time over the rounds and the time per image and
core, so the three compare directly.

  scripts/bench-processes.py [--binary .build/release/resnet-ddp] [--depth 20] [--rounds 3]
      [--steps 20] [--batch 128] [--profile] [--data data/cifar-10-batches-bin]

--profile also prints, per operation, the ms per step of each configuration (one more round),
and beside them two real workers in lockstep (`train --workers 2 --worker-threads 1
--profile-worker-operations`, real data from --data, rank 0's median over 10-step windows after
the first; their batch-norm rows include the batch-norm meetings, which run inside them).
Build with -c release. Run it on a quiet machine: the processes share both cores.
"""
import argparse, json, shutil, statistics, subprocess, sys, tempfile

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--binary", default=".build/release/resnet-ddp")
parser.add_argument("--depth", type=int, default=20)
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--batch", type=int, default=128)
parser.add_argument("--profile", action="store_true")
parser.add_argument("--data", default="data/cifar-10-batches-bin")
args = parser.parse_args()
if args.batch < 2 or args.batch % 2:
    sys.exit("--batch must be even and at least 2")


def command(threads, batch, profile=False):
    flags = [args.binary, "bench", "--depths", str(args.depth), "--threads", str(threads), "--modes", "train",
             "--batch-size", str(batch), "--steps", str(args.steps), "--warmup", "3"]
    return flags + (["--profile"] if profile else ["--json"])


def finish(process, what):
    out, err = process.communicate()
    if process.returncode != 0:
        sys.exit(f"{what} failed ({process.returncode}):\n{err}")
    return out


def median_ms(out, what):
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if len(rows) != 1:
        sys.exit(f"{what}: expected one JSON line, got {len(rows)}")
    return rows[0]["median_ms"]


def run(processes, threads, batch, profile=False):
    """Outputs of `processes` concurrent bench processes."""
    started = [subprocess.Popen(command(threads, batch, profile), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(processes)]
    return [finish(p, f"{processes} x bench --threads {threads} --batch-size {batch}") for p in started]


half = args.batch // 2
configurations = [
    (f"1 process x 2 threads, {args.batch} images", 1, 2, args.batch),
    (f"2 processes x 1 thread, {half} images each", 2, 1, half),
    (f"1 process x 1 thread, {half} images, alone", 1, 1, half),
]
times = {name: [] for name, *_ in configurations}
for round in range(args.rounds):
    for name, processes, threads, batch in configurations:
        outs = run(processes, threads, batch)
        # Two workers wait for each other every step: the slower one sets the pace.
        step = max(median_ms(out, name) for out in outs)
        times[name].append(step)
        print(f"round {round + 1}: {name:<40} {step:8.1f} ms a step", file=sys.stderr)

print(f"ResNet-{args.depth} training steps, synthetic data, {args.rounds} interleaved rounds of {args.steps} steps "
      "(medians; for two processes, the slower one's)")
print(f"{'configuration':<42} {'ms a step':>10} {'ms per image and core':>22}")
for name, processes, threads, batch in configurations:
    step = statistics.median(times[name])
    per_image_core = step * threads / batch
    print(f"{name:<42} {step:10.1f} {per_image_core:22.3f}")

if args.profile:
    def operations(out):
        table = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 6 and parts[-5].isdigit():
                table[" ".join(parts[:-5])] = float(parts[-4])
        return table
    def lockstep_workers():
        """Rank 0's median ms per step of each operation over its windows (the first skipped)."""
        out = tempfile.mkdtemp()
        try:
            steps = max(20, args.steps // 10 * 10 + 10)
            done = subprocess.run(
                [args.binary, "train", "--depth", str(args.depth), "--iterations", str(steps), "--log-every", "10",
                 "--eval-every", "100000", "--checkpoint-every", "100000", "--out", out + "/run", "--data", args.data,
                 "--workers", "2", "--worker-threads", "1", "--profile-workers", "--profile-worker-operations"],
                capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"train --workers 2 failed ({done.returncode}):\n{done.stderr[-2000:]}")
        finally:
            shutil.rmtree(out, ignore_errors=True)
        windows = [json.loads(line[len("operations "):]) for line in done.stderr.splitlines()
                   if line.startswith("operations {")]
        windows = [w for w in windows if w["rank"] == 0 and w["step"] > 10]
        return {name: statistics.median(w["ms_per_step"].get(name, 0) for w in windows) for name in windows[0]["ms_per_step"]}

    profiles = []
    for name, processes, threads, batch in configurations:
        outs = run(processes, threads, batch, profile=True)
        profiles.append(operations(outs[0]))
    profiles.append(lockstep_workers())
    columns = [c[0] for c in configurations] + ["2 workers in lockstep (train)"]
    print()
    print(f"{'operation (ms a step; first process of each)':<56}" + "".join(f"{c[:22]:>24}" for c in columns))
    for operation in profiles[0]:
        print(f"{operation:<56}" + "".join(f"{p.get(operation, float('nan')):24.2f}" for p in profiles))
