#!/usr/bin/env python3
"""Figure 6 of the paper and a results table from runs' RUN_DIR/metrics.jsonl files.

    plot_results.py figure6 RESULTS_DIR [--out docs/results/figure6] [--ymax 20] [--xmax 64000] [--test full|first1000]
        -> figure6.png and figure6.svg: plain nets left, ResNets right, x: iterations, y: error %,
           training error dashed, test error bold, one colour per depth (as in the paper).
           --test first1000 plots the error on the exact first 1,000 test images (the shared copy's
           other 9,000 were rebuilt from JPEGs, which costs a trained net several points).
    plot_results.py curves RESULTS_DIR [--out docs/results/curves]
        -> learning rate and training loss of every run.
    plot_results.py table RESULTS_DIR
        -> Markdown table (stdout): best and final test error per run, on the full test set and on
           the exact first 1,000 images, validation when present, with the paper's and the seed
           reproductions' numbers beside them.
    plot_results.py paper-table RESULTS_DIR [--steps 64000]
        -> the paper-schedule table (stdout): per run, best and final test error with 95 % Wilson
           intervals on the exact first 1,000 and on the full test set, final training error (mean
           of the last 500 steps), wall-clock hours, median images/s, segments (a run resumed k times
           has k + 1; the sittings are in docs/results' record of binaries),
           membership events (RUN_DIR/events.jsonl), with the paper's and the seeds' figures.
Run through scripts/plot-results, which installs matplotlib into .venv-tools/.
"""
import argparse
import json
import sys
from pathlib import Path

PAPER = {"resnet-20": 8.75, "resnet-32": 7.51, "resnet-44": 7.17, "resnet-56": 6.97, "resnet-110": 6.43,
         "plain-20": "~9.5 (Fig. 6)", "plain-56": "~13.5 (Fig. 6)"}
SEED_A = {"resnet-20": 8.0, "resnet-32": 7.51, "resnet-44": 7.38, "resnet-56": 7.33,
          "plain-20": 9.5, "plain-32": 9.92, "plain-44": 11.35, "plain-56": 12.76}
SEED_B = {"resnet-20": 8.74, "resnet-32": 8.30, "resnet-44": 7.16, "resnet-56": 7.41,
          "plain-20": 10.08, "plain-32": 11.15, "plain-44": 14.12, "plain-56": 15.39}
COLOURS = {20: "#e6a700", 32: "#1f77b4", 44: "#2ca02c", 56: "#d62728", 110: "#000000"}


def folders(results):
    """RESULTS_DIR may list several experiment folders separated by colons (finished runs kept in
    docs/results/runs/..., unfinished ones in the live folder); a run in a later folder wins."""
    return [Path(folder) for folder in results.split(":") if folder]


def run_folder(results, name):
    return [folder / name for folder in folders(results) if (folder / name / "metrics.jsonl").exists()][-1]


def runs(results):
    found = {}
    for folder in folders(results):
        for metrics in sorted(folder.glob("*/metrics.jsonl")):
            rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            if rows:
                found[metrics.parent.name] = rows
    if not found:
        sys.exit(f"no RUN_DIR/metrics.jsonl under {results}")
    return found


def depth(name):
    return int(name.split("-")[1])


def evaluated(data):
    """(name, rows, evaluation rows) of every run with an evaluation, plain before ResNet, by depth."""
    for name in sorted(data, key=lambda n: (n.split("-")[0], depth(n))):
        rows = data[name]
        evals = [r for r in rows if "test_error" in r]
        if evals:
            yield name, rows, evals


def figure6(results, out, ymax, test_metric="full", xmax=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    data = runs(results)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, family, title in ((axes[0], "plain", "plain networks"), (axes[1], "resnet", "ResNets")):
        for name in sorted((n for n in data if n.startswith(family + "-")), key=depth):
            rows, colour = data[name], COLOURS.get(depth(name), None)
            # Training error averages the steps since the previous line: an evaluation step just
            # after a logging step covers one or two batches, too few to plot.
            train = [(r["step"], r["train_error"]) for previous, r in zip([{"step": 0}] + rows, rows)
                     if "train_error" in r and r["step"] - previous["step"] >= 10]
            key = "test_error_exact1000" if test_metric == "first1000" else "test_error"
            test = [(r["step"], r[key]) for r in rows if key in r]
            label = f"{'plain' if family == 'plain' else 'ResNet'}-{depth(name)}"
            if train:
                ax.plot(*zip(*train), "--", color=colour, linewidth=0.8)
            if test:
                ax.plot(*zip(*test), "-", color=colour, linewidth=2, label=label)
        ax.set_title(title)
        ax.set_xlabel("iterations")
        ax.set_ylim(0, ymax)  # curves above ymax are clipped, as in the paper's figure
        if xmax:
            ax.set_xlim(0, xmax)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right")
    axes[0].set_ylabel("error (%)")
    which = "test error on the exact first 1,000 test images" if test_metric == "first1000" else "test error"
    fig.suptitle(f"CIFAR-10: training error (dashed) and {which} (bold)")
    fig.tight_layout()
    for suffix in ("png", "svg"):
        fig.savefig(f"{out}.{suffix}", dpi=120)
    print(f"wrote {out}.png and {out}.svg")


def curves(results, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    data = runs(results)
    fig, (lr_ax, loss_ax) = plt.subplots(1, 2, figsize=(12, 4))
    for name, rows in sorted(data.items()):
        lr_ax.plot([r["step"] for r in rows], [r["lr"] for r in rows], label=name)
        loss_ax.plot([r["step"] for r in rows], [r["train_loss"] for r in rows], label=name, linewidth=0.8)
    lr_ax.set_yscale("log")
    lr_ax.set_title("learning rate")
    loss_ax.set_yscale("log")
    loss_ax.set_title("training loss")
    for ax in (lr_ax, loss_ax):
        ax.set_xlabel("iterations")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    for suffix in ("png", "svg"):
        fig.savefig(f"{out}.{suffix}", dpi=120)
    print(f"wrote {out}.png and {out}.svg")


def table(results):
    data = runs(results)
    print("| run | steps | best test error % | final test error % | best / final, first 1,000 (exact) % "
          "| final validation error % | paper % | seed A % | seed B % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rows, evals in evaluated(data):
        best, final = min(r["test_error"] for r in evals), evals[-1]["test_error"]
        exact = f"{min(r['test_error_exact1000'] for r in evals):.2f} / {evals[-1]['test_error_exact1000']:.2f}"
        validation = f"{evals[-1]['val_error']:.2f}" if "val_error" in evals[-1] else "-"
        print(f"| {name} | {rows[-1]['step']} | {best:.2f} | {final:.2f} | {exact} | {validation} "
              f"| {PAPER.get(name, '-')} | {SEED_A.get(name, '-')} | {SEED_B.get(name, '-')} |")


def wilson(error_percent, n, z=1.96):
    """95 % Wilson score interval of an error rate measured on n images, in percent."""
    p = error_percent / 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return 100 * (centre - half), 100 * (centre + half)


def with_interval(error_percent, n):
    low, high = wilson(error_percent, n)
    return f"{error_percent:.2f} ({low:.1f}-{high:.1f})"


def segments(rows):
    """The run's resumed pieces: wall_seconds restarts at 0 when a run resumes from a checkpoint."""
    pieces, current = [], []
    for r in rows:
        if current and r["wall_seconds"] < current[-1]["wall_seconds"]:
            pieces.append(current)
            current = []
        current.append(r)
    return pieces + ([current] if current else [])


def paper_table(results, steps):
    import statistics
    data = runs(results)
    print("| run | steps | best test error %, exact first 1,000 (95 % interval) | final, exact first 1,000 "
          "| best, full test set | final, full test set | final training error % (last 500 steps) "
          "| wall-clock hours | median images/s | segments | membership events "
          "| paper % | seed A % | seed B % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, rows, evals in evaluated(data):
        last = rows[-1]["step"]
        train = [r["train_error"] for r in rows if "train_error" in r and r["step"] > last - 500]
        pieces = segments(rows)
        hours = sum(piece[-1]["wall_seconds"] for piece in pieces) / 3600
        speed = statistics.median(r["images_per_second"] for r in rows if "images_per_second" in r)
        events_path = run_folder(results, name) / "events.jsonl"
        events = [json.loads(line) for line in events_path.read_text().splitlines() if line.strip()] \
            if events_path.exists() else []
        kinds = {}
        for e in events:
            kinds[e.get("event", "?")] = kinds.get(e.get("event", "?"), 0) + 1
        membership = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "-"
        exact = [r["test_error_exact1000"] for r in evals]
        full = [r["test_error"] for r in evals]
        status = f"{last:,}" if last >= steps else f"{last:,} of {steps:,} (running)"
        print(f"| {name} | {status} | {with_interval(min(exact), 1000)} | {with_interval(exact[-1], 1000)} "
              f"| {with_interval(min(full), 10000)} | {with_interval(full[-1], 10000)} "
              f"| {statistics.mean(train):.2f} | {hours:.2f} | {speed:.0f} | {len(pieces)} "
              f"| {membership} | {PAPER.get(name, '-')} | {SEED_A.get(name, '-')} | {SEED_B.get(name, '-')} |")


CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def confusion(path, out):
    """Heat map of `resnet-ddp evaluate --json` output: rows true class, columns predicted."""
    import matplotlib.pyplot as plt

    result = json.loads(Path(path).read_text())
    matrix = result["confusion"]
    accuracy = result["per_class_accuracy"]
    fig, ax = plt.subplots(figsize=(8, 7))
    image = ax.imshow(matrix, cmap="Blues")
    top = max(max(row) for row in matrix)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > top / 2 else "black")
    ax.set_xticks(range(10), CLASSES, rotation=45, ha="right")
    ax.set_yticks(range(10), [f"{c} ({a:.1f}%)" for c, a in zip(CLASSES, accuracy)])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (per-class accuracy)")
    ax.set_title(f"{result['model']} at step {result['step']}: test error {result['test_error']:.2f}% "
                 f"on {result['images']} images")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    for suffix in ("png", "svg"):
        fig.savefig(f"{out}.{suffix}", dpi=120, bbox_inches="tight")
    print(f"wrote {out}.png and {out}.svg")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["figure6", "curves", "table", "paper-table", "confusion"])
    parser.add_argument("results", help="experiment folder(s), colon-separated (figure6, curves, table, paper-table) or evaluate --json file (confusion)")
    parser.add_argument("--out")
    parser.add_argument("--ymax", type=float, default=20)
    parser.add_argument("--xmax", type=float, help="figure6: iterations axis from 0 to this (default: the data's)")
    parser.add_argument("--steps", type=int, default=64000, help="paper-table: the schedule's length")
    parser.add_argument("--test", choices=["full", "first1000"], default="full",
                        help="figure6: test error on the full test set or on its exact first 1,000 images")
    args = parser.parse_args()
    if args.what == "figure6":
        figure6(args.results, args.out or "docs/results/figure6", args.ymax, args.test, args.xmax)
    elif args.what == "confusion":
        confusion(args.results, args.out or "docs/results/confusion")
    elif args.what == "curves":
        curves(args.results, args.out or "docs/results/curves")
    elif args.what == "paper-table":
        paper_table(args.results, args.steps)
    else:
        table(args.results)


if __name__ == "__main__":
    main()
