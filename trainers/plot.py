"""mono-train plot: a run's curves from its metrics.csv, one panel per kind of value (losses, the Wasserstein
estimate, accuracy, NMI, the discriminator's outputs, the learning rate), and the per-epoch accuracy of probe runs
made on its checkpoint: to see at a glance whether a run learned, diverged or plateaued.

    mono-train plot runs/rotnet-A                          # runs/rotnet-A/metrics.png
    mono-train plot runs/monogan-A -o monogan.png
    mono-train plot runs/rotnet-A --probe runs/rotnet-A-linear
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

from mono.learning import atomic
from mono.trainers import utils

METRICS = "metrics.csv"

# Panels in order: (title, y label, columns that go in it); a column not named here is not drawn.
PANELS = (
    ("losses", "loss", ("loss", "clustering_loss", "critic_loss", "generator_loss", "discriminator_loss",
                        "encoder_generator_loss")),
    ("Wasserstein estimate", "critic(real) − critic(fake)", ("wasserstein",)),
    ("gradient penalty", "penalty", ("gradient_penalty",)),
    ("accuracy", "accuracy (%)", ("accuracy",)),
    ("NMI to the previous clustering", "NMI", ("nmi",)),
    ("empty clusters", "clusters", ("empty_clusters",)),
    ("discriminator outputs", "D(x)", ("d_real", "d_fake")),
    ("learning rate", "lr", ("lr",)),
)  # fmt: skip
ACCURACY_TITLE = {"rotnet": "rotation accuracy", "supervised": "training accuracy"}


def get_args_parser() -> utils.ArgumentParser:
    parser = utils.ArgumentParser(
        prog="mono-train plot",
        description="Draw a training run's curves (metrics.csv) and its probes' per-epoch accuracy as one PNG.",
        epilog="examples:\n" + __doc__.split("\n\n", 1)[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=Path, metavar="RUN_DIR", help="a mono-train run directory (holds metrics.csv)")
    parser.add_argument(
        "-o", "--out", type=Path, default=None, metavar="FILE.png", help="PNG to write (default RUN_DIR/metrics.png)"
    )
    parser.add_argument(
        "--probe",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a mono-probe run directory whose per-epoch accuracy is drawn too (repeatable)",
    )
    return parser


def read_metrics(run: Path) -> tuple[list[str], list[dict[str, float]]]:
    """metrics.csv's columns and rows (values as floats, NaN where a row has none); a UserError without one."""
    path = run / METRICS
    if not run.is_dir():
        raise utils.UserError(f"{run}: no such run directory")
    if not path.is_file():
        raise utils.UserError(f"{run} holds no {METRICS}: not a mono-train run, or one that has not logged yet")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = [{k: _number(v) for k, v in row.items()} for row in reader]
    if not rows:
        raise utils.UserError(f"{path} has no rows yet: the run has not logged a step")
    return columns, rows


def _number(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def epoch_rows(rows: list[dict[str, float]]) -> tuple[list[dict], list[dict]]:
    """(per-step rows, per-epoch rows): a trainer logs each epoch's means as the epoch's last row."""
    steps, epochs = [], []
    for i, row in enumerate(rows):
        last = i + 1 == len(rows) or rows[i + 1]["epoch"] != row["epoch"]
        (epochs if last else steps).append(row)
    return steps, epochs


def method_of(run: Path) -> str | None:
    """The method the run's checkpoint names (without reading its weights into memory), if there is one."""
    import torch

    try:
        payload = torch.load(run / utils.CHECKPOINT, map_location="cpu", weights_only=True, mmap=True)
        return payload.get("method") if isinstance(payload, dict) else None
    except Exception:  # noqa: BLE001 - no checkpoint yet, or not ours: the title goes without the method
        return None


def probe_history(probe: Path) -> tuple[str, list[tuple[str, list[int], list[float]]]]:
    """(label, [(layer, epochs, val top-1)]) of a probe run's results.json (linear: per layer; fine-tuning: one)."""
    path = probe / "results.json"
    if not path.is_file():
        raise utils.UserError(f"--probe {probe}: no results.json (not a mono-probe run, or not finished)")
    try:
        results = json.loads(path.read_text())
        history = results["history"]
        epochs = [int(row["epoch"]) for row in history]
        if history and "top1" in history[0]["val"]:
            return results.get("label", probe.name), [("val", epochs, [row["val"]["top1"] for row in history])]
        layers = list(history[0]["val"]) if history else []
        series = [(name, epochs, [row["val"][name]["top1"] for row in history]) for name in layers]
        return results.get("label", probe.name), series
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise utils.UserError(f"--probe {probe}: results.json without a per-epoch history ({exc})") from None


def plot(run: Path, out: Path, probes: Sequence[Path] = ()) -> Path:
    """Draw the run's panels (and one per probe run) into `out`, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    columns, rows = read_metrics(run)
    histories = [probe_history(p) for p in probes]
    method = method_of(run)
    steps, epochs = epoch_rows(rows)
    panels = [(t, y, [c for c in names if c in columns]) for t, y, names in PANELS]
    panels = [(t, y, names) for t, y, names in panels if any(not math.isnan(r[c]) for r in rows for c in names)]
    count = len(panels) + len(histories)
    width = min(count, 3)
    height = math.ceil(count / width)
    figure = Figure(figsize=(5 * width, 3.6 * height), layout="constrained")
    figure.suptitle(f"{method or 'run'}: {run}")
    axes = figure.subplots(height, width, squeeze=False).ravel()
    for ax, (title, label, names) in zip(axes, panels):
        scale = 100 if names == ["accuracy"] else 1
        for name in names:
            if steps:
                ax.plot([r["step"] for r in steps], [scale * r[name] for r in steps], lw=0.8, alpha=0.6, label=name)
            ax.plot([r["step"] for r in epochs], [scale * r[name] for r in epochs], "o-", ms=3, label=f"{name} (epoch)")
        ax.set_title(ACCURACY_TITLE.get(method, title) if names == ["accuracy"] else title)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        if len(names) > 1 or steps:
            ax.legend(fontsize="small")
    for ax, (label, series) in zip(axes[len(panels) :], histories):
        for name, x, y in series:
            ax.plot(x, y, "o-", ms=3, label=name)
        ax.set_title(f"probe {label}: val top-1")
        ax.set_xlabel("probe epoch")
        ax.set_ylabel("top-1 (%)")
        ax.legend(fontsize="small")
    for ax in axes[count:]:
        ax.set_visible(False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(out, buffer.getvalue(), fsync=False)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    print(plot(args.run, args.out or args.run / "metrics.png", args.probe))


if __name__ == "__main__":
    utils.run(main, "mono-train plot")
