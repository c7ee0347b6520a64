"""MonoGAN's learning curve as a table and a plot (docs/results.md, "MonoGAN learning curve").

Reads a run of scripts/gan_learning_curve.sh (the run's metrics.csv and its probe-epochN/results.json) and a
random-init probe of the same trunk, and prints a Markdown table: per probed epoch, the generator steps, the
training wall time up to it, conv1-4 top-1 and the gain over random. With --plot, draws the curve.

    python scripts/gan_curve_report.py runs/gan/lr3e-4 runs/calibration/leaky_relu-w64-torch-flipyes-pad3210 \
        --plot docs/img/gan-learning-curve.png
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

from mono.probes.paper import TABLE3

LAYERS = ("conv1", "conv2", "conv3", "conv4")
PAPER = {"random": TABLE3["random"], "MonoGAN": TABLE3["monogan"]}  # Table 3, CIFAR-10 (mono.probes.paper)


def top1(results: Path) -> list[float]:
    layers = json.loads(results.read_text())["layers"]
    return [layers[name]["top1"] for name in LAYERS]


def epoch_rows(metrics: Path) -> tuple[int, dict[int, dict]]:
    """The critic steps per epoch, and each finished epoch's summary row (logged at the epoch's last critic step)
    by epoch number from 1; a resumed run logs an epoch again, the last row wins."""
    rows = list(csv.DictReader(open(metrics)))
    steps = [int(r["step"]) for r in rows]
    per_epoch = min(s for s in steps if s > 0 and s % 50 != 0)  # the epoch's length: the first step not a log step
    return per_epoch, {int(r["step"]) // per_epoch: r for r in rows if int(r["step"]) % per_epoch == 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("random", type=Path, help="the random-init probe's output folder")
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()

    random = top1(args.random / "results.json")
    per_epoch, epochs = epoch_rows(args.run / "metrics.csv")
    wall, elapsed = {}, 0.0
    for epoch in sorted(epochs):
        elapsed += per_epoch * 64 / float(epochs[epoch]["images_per_s"])  # the epoch's wall time, despite restarts
        wall[epoch] = elapsed
    points = []
    for folder in sorted(args.run.glob("probe-epoch*"), key=lambda p: int(re.sub(r"\D", "", p.name))):
        if (folder / "results.json").exists():
            epoch = int(re.sub(r"\D", "", folder.name))
            steps = int(float(epochs[epoch]["generator_steps"]))
            points.append((epoch, steps, wall[epoch], top1(folder / "results.json")))

    print("| epochs | generator steps | training wall time | conv1 | conv2 | conv3 | conv4 | gain conv1 / conv2 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    print("| 0 (random init) | 0 | | " + " | ".join(f"{v:.2f}" for v in random) + " | |")
    for epoch, steps, seconds, values in points:
        gain = f"{values[0] - random[0]:+.2f} / {values[1] - random[1]:+.2f}"
        cells = " | ".join(f"{v:.2f}" for v in values)
        print(f"| {epoch} | {steps:,} | {seconds / 60:.0f} min | {cells} | {gain} |")
    print("| paper, MonoGAN (200,000 steps) | 200,000 | | " + " | ".join(f"{v}" for v in PAPER["MonoGAN"]) + " | |")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for i, (layer, colour) in enumerate(zip(LAYERS, ("C0", "C1", "C2", "C3"))):
            xs = [0] + [p[1] for p in points]
            ys = [random[i]] + [p[3][i] for p in points]
            ax.plot(xs, ys, "o-", color=colour, label=layer)
            ax.axhline(random[i], color=colour, linestyle=":", linewidth=0.8)
        ax.set_xlabel("MonoGAN generator steps (5 critic steps of 64 images each)")
        ax.set_ylabel("CIFAR-10 linear probe top-1 (%)")
        ax.set_title("MonoGAN on Image B, 2-core CPU, --lr 3e-4; dotted: random init")
        ax.legend(ncol=4, fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
