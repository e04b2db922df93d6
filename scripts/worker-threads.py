#!/usr/bin/env python3
"""Where the threads of a 2-worker training run spend CPU, and how often they are switched out:
runs `resnet-ddp train --depth 20 --workers 2 --worker-threads 1` (plus any extra train flags),
samples /proc every 0.5 s and prints, per thread of the coordinator and of each worker, its CPU
seconds and its voluntary and involuntary context switches at the end.

  scripts/worker-threads.py [--binary .build/release/resnet-ddp] [--data data/cifar-10-batches-bin]
      [--steps 60] [-- extra train flags, e.g. --bind-workers]
"""
import argparse, os, shutil, subprocess, tempfile, time

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--binary", default=".build/release/resnet-ddp")
parser.add_argument("--data", default="data/cifar-10-batches-bin")
parser.add_argument("--steps", type=int, default=60)
parser.add_argument("extra", nargs="*")
args = parser.parse_args()

out = tempfile.mkdtemp()
train = subprocess.Popen(
    [args.binary, "train", "--depth", "20", "--iterations", str(args.steps), "--log-every", "10", "--eval-every", "100000",
     "--checkpoint-every", "100000", "--out", out + "/run", "--data", args.data, "--workers", "2", "--worker-threads", "1"]
    + args.extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ticks = os.sysconf("SC_CLK_TCK")
last = {}


def sample():
    children = subprocess.run(["pgrep", "-P", str(train.pid)], capture_output=True, text=True).stdout.split()
    for pid in [train.pid] + [int(c) for c in children]:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                stat = open(f"/proc/{pid}/task/{tid}/stat").read()
                name = stat[stat.index("(") + 1:stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2:].split()
                status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/task/{tid}/status").read().splitlines())
                last[(pid, int(tid))] = ("coordinator" if pid == train.pid else f"worker {pid}", name,
                                         (int(fields[11]) + int(fields[12])) / ticks,
                                         int(status["voluntary_ctxt_switches"]), int(status["nonvoluntary_ctxt_switches"]))
        except (FileNotFoundError, ProcessLookupError):
            pass


started = time.time()
while train.poll() is None:
    sample()
    time.sleep(0.5)
shutil.rmtree(out, ignore_errors=True)
if train.returncode != 0:
    raise SystemExit(f"train failed ({train.returncode})")
print(f"{args.steps} steps in {time.time() - started:.1f} s (train {' '.join(args.extra) or 'unbound'})")
print(f"{'process':<14} {'thread':<18} {'cpu s':>7} {'voluntary':>10} {'involuntary':>12}")
for (_, _), (process, name, cpu, voluntary, involuntary) in sorted(last.items()):
    if cpu > 0.05 or voluntary > 100:
        print(f"{process:<14} {name:<18} {cpu:7.2f} {voluntary:10d} {involuntary:12d}")
