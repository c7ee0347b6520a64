"""Reports of probe runs: results.json, a markdown table and a per-layer accuracy plot, for one run or several
side by side (optionally relative to a reference run, as in the paper's Figure 6)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mono.learning import atomic
from mono.learning.errors import UserError

__all__ = ["compare_runs", "load_run", "write_finetune_reports", "write_run_reports"]

RESULTS_JSON, RESULTS_MD, ACCURACY_PNG = "results.json", "results.md", "accuracy.png"
COMPARISON_FILES = ("comparison.json", "comparison.md", "comparison.png")


def _figure(width: float = 6.4, height: float = 4.2, ncols: int = 1):
    """A matplotlib Figure drawn with Agg, without pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


# --- one run -------------------------------------------------------------------------------------------


def _describe(results: dict[str, Any]) -> list[str]:
    cfg, data, ckpt = results["config"], results["dataset"], results.get("checkpoint")
    sched = cfg["schedule"]
    args = ", ".join(f"{k}={v}" for k, v in cfg["arch_args"].items())
    protocol = f"{cfg['protocol']}: {cfg['input_size']}×{cfg['input_size']} input" + (
        f", shorter side {cfg['resize']}, random crops + flips, 10-crop evaluation"
        if cfg["augment"]
        else ", native images, no augmentation, features computed once"
    )
    milestones = ", ".join(str(m) for m in sched["milestones"])
    if data["source"] == "torchvision":
        where = f"torchvision {data['name']} under `{data['root']}`"
    else:
        where = f"ImageFolder `{data['train_path']}` / `{data['val_path']}`"
    lines = [
        f"- trunk: {cfg['arch']} ({args}), "
        + (
            "fixed, not learned"
            if cfg["arch"] == "scattering"
            else "random init"
            if cfg["random_init"]
            else "from checkpoint"
        ),
        f"- protocol: {protocol}",
        f"- training: {sched['epochs']} epochs, SGD momentum {sched['momentum']}, lr {sched['lr']} × "
        f"{sched['gamma']} at epochs {milestones}, weight decay {sched['weight_decay']}, "
        f"batch {sched['batch_size']}, seed {cfg['seed']}",
        f"- data: {where}: {data['train_images']} train / {data['val_images']} val images, "
        f"{data['num_classes']} classes",
    ]
    if ckpt:
        lines.append(
            f"- checkpoint: `{ckpt['path']}` (sha256 {ckpt['sha256'][:12]}…), method {ckpt['method']}, "
            f"epoch {ckpt['epoch']}"
        )
    timing = results.get("timing", {})
    if "wall_s" in timing:
        wall = timing["wall_s"]
        resumed = timing.get("resumed_from_epoch")
        lines.append(
            (f"- wall time {wall:.0f} s" if wall < 120 else f"- wall time {wall / 60:.1f} min")
            + (f" (this session, resumed after epoch {resumed})" if resumed is not None else "")
        )
    return lines


def run_markdown(results: dict[str, Any]) -> str:
    dims = results["config"].get("feature_dims", {})
    rows = [
        f"| {name} | {dims.get(name, '')} | {m['top1']:.2f} | {m['top5']:.2f} |"
        for name, m in results["layers"].items()
    ]
    return "\n".join(
        [
            f"# Linear probes: {results['label']}",
            "",
            "| layer | probe dims | top-1 (%) | top-5 (%) |",
            "|---|---:|---:|---:|",
            *rows,
            "",
            *_describe(results),
            "",
        ]
    )


def _plot_run(results: dict[str, Any], path: Path) -> None:
    fig = _figure()
    ax = fig.add_subplot()
    names = list(results["layers"])
    for metric, style in (("top1", "o-"), ("top5", "s--")):
        ax.plot(names, [results["layers"][n][metric] for n in names], style, label=metric.replace("top", "top-"))
    ax.set_xlabel("probed layer")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Linear probes: {results['label']}")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    with atomic.replacing(path, fsync=False) as f:
        fig.savefig(f, format="png", dpi=120)


def write_run_reports(out: Path, results: dict[str, Any], json_only: bool = False) -> None:
    """Write results.json (and unless ``json_only`` results.md and accuracy.png) into ``out``."""
    out = Path(out)
    atomic.write_text(out / RESULTS_JSON, json.dumps(results, indent=2) + "\n", fsync=False)
    if not json_only:
        atomic.write_text(out / RESULTS_MD, run_markdown(results), fsync=False)
        _plot_run(results, out / ACCURACY_PNG)


# --- one fine-tuning run ------------------------------------------------------------------------------


def finetune_markdown(results: dict[str, Any]) -> str:
    net, cfg, data, sched = results["network"], results["config"], results["dataset"], results["config"]["schedule"]
    kept = f"{net['kept_blocks'][0]}–{net['kept_blocks'][-1]}" if net["kept_blocks"] else ""
    what = {
        "freeze": f"{kept} kept frozen (BatchNorm absorbed), the rest re-initialised and trained",
        "init": f"{kept} initialised from the source, everything trained",
        "scratch": "everything trained from a random init",
        "scattering": "conv1–conv2 replaced by the fixed scattering transform, the rest trained",
    }[net["mode"]]
    short = {
        "freeze": f"{kept} frozen",
        "init": f"{kept} from the source",
        "scratch": "from scratch",
        "scattering": "the transform fixed",
    }[net["mode"]]
    milestones = ", ".join(str(m) for m in sched["milestones"])
    lines = [
        f"# Fine-tuning: {results['label']}",
        "",
        "| network | top-1 (%) | top-5 (%) |",
        "|---|---:|---:|",
        f"| {net['trunk']}, {short} | {results['top1']:.2f} | {results['top5']:.2f} |",
        "",
        f"- network: {what}; trained blocks {', '.join(net['trained_blocks']) or 'none'} and the head "
        f"({net['trainable_parameters']:,} parameters)",
        f"- protocol: {cfg['protocol']}, {cfg['input_size']}×{cfg['input_size']} input, training on {cfg['augment']}, "
        + ("10-crop evaluation" if cfg["ten_crop"] else "evaluation on the native images"),
        f"- training: {sched['epochs']} epochs, SGD momentum {sched['momentum']}, lr {sched['lr']} × "
        f"{sched['gamma']} at epochs {milestones}, weight decay {sched['weight_decay']}, batch {sched['batch_size']}, "
        f"seed {cfg['seed']}",
        f"- data: {data['train_images']} train / {data['val_images']} val images, {data['num_classes']} classes",
    ]
    ckpt = results.get("checkpoint")
    if ckpt:
        lines.append(
            f"- source: `{ckpt['path']}` (sha256 {ckpt['sha256'][:12]}…), method {ckpt['method']}, "
            f"epoch {ckpt['epoch']}"
        )
    if results.get("exported_checkpoint"):
        lines.append(f"- trained trunk: `{results['exported_checkpoint']['path']}`")
    wall = results["timing"]["wall_s"]
    lines.append(f"- wall time {wall:.0f} s" if wall < 120 else f"- wall time {wall / 60:.1f} min")
    probes = results.get("probes")
    if probes:
        lines += [
            "",
            f"## Linear probes on the fine-tuned trunk ({probes['epochs']} epochs, `{probes['dir']}`)",
            "",
            "| layer | top-1 (%) | top-5 (%) |",
            "|---|---:|---:|",
        ]
        lines += [f"| {name} | {m['top1']:.2f} | {m['top5']:.2f} |" for name, m in probes["layers"].items()]
    return "\n".join(lines) + "\n"


def _plot_finetune(results: dict[str, Any], path: Path) -> None:
    fig = _figure()
    ax = fig.add_subplot()
    history = results["history"]
    epochs = [row["epoch"] for row in history]
    ax.plot(epochs, [row["train"]["top1"] for row in history], "o-", label="train top-1 (augmented)")
    if history and "val" in history[0]:
        ax.plot(epochs, [row["val"]["top1"] for row in history], "s-", label="val top-1")
    else:
        ax.plot([results["config"]["schedule"]["epochs"]], [results["top1"]], "s", label="val top-1 (10 crops)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Fine-tuning: {results['label']}")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    with atomic.replacing(path, fsync=False) as f:
        fig.savefig(f, format="png", dpi=120)


def write_finetune_reports(out: Path, results: dict[str, Any]) -> None:
    """Write results.json, results.md and accuracy.png (accuracy per epoch) of a fine-tuning run into ``out``."""
    out = Path(out)
    atomic.write_text(out / RESULTS_JSON, json.dumps(results, indent=2) + "\n", fsync=False)
    atomic.write_text(out / RESULTS_MD, finetune_markdown(results), fsync=False)
    _plot_finetune(results, out / ACCURACY_PNG)


# --- several runs --------------------------------------------------------------------------------------


def load_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """A finished run's results.json; UserError if the directory holds none."""
    path = Path(run_dir) / RESULTS_JSON
    if not Path(run_dir).is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    if not path.is_file():
        raise UserError(f"{run_dir} has no {RESULTS_JSON} (not a mono-probe run, or not finished)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(results, dict) or not isinstance(results.get("layers"), dict) or not results["layers"]:
        raise UserError(f"{path} has no per-layer results")
    results.setdefault("label", Path(run_dir).name)
    return results


def _unique_labels(runs: Sequence[dict[str, Any]], dirs: Sequence[Path]) -> list[str]:
    labels = [r["label"] for r in runs]
    return [f"{label} ({d.name})" if labels.count(label) > 1 else label for label, d in zip(labels, dirs)]


def _dataset_name(results: dict[str, Any]) -> str | None:
    data = results.get("dataset") or {}
    return data.get("name") or data.get("train_path")


def _layer_order(runs: Sequence[dict[str, Any]]) -> list[str]:
    order: list[str] = []
    for results in runs:
        order += [name for name in results["layers"] if name not in order]
    return order


def compare_runs(
    run_dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    metric: str = "top1",
) -> dict[str, Any]:
    """One table and one plot for several runs; with ``reference``, also each run's accuracy as a percentage
    of the reference's, layer by layer. Writes comparison.{json,md,png} into ``out``."""
    if metric not in ("top1", "top5"):
        raise UserError(f"unknown metric {metric!r}; choose top1 or top5")
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise UserError("give at least one run directory to compare")
    runs = [load_run(d) for d in dirs]
    labels = _unique_labels(runs, dirs)
    ref = load_run(reference) if reference is not None else None
    layers = _layer_order(runs + ([ref] if ref else []))

    def value(results: dict[str, Any], layer: str) -> float | None:
        m = results["layers"].get(layer)
        return None if m is None else float(m[metric])

    def relative(results: dict[str, Any], layer: str) -> float | None:
        v, r = value(results, layer), value(ref, layer) if ref else None
        return None if v is None or not r else 100.0 * v / r

    table = {label: {layer: value(r, layer) for layer in layers} for label, r in zip(labels, runs)}
    rel_table = (
        {label: {layer: relative(r, layer) for layer in layers} for label, r in zip(labels, runs)} if ref else None
    )
    summary = {
        "metric": metric,
        "layers": layers,
        "runs": [
            {
                "label": label,
                "dir": str(d.resolve()),
                "protocol": (r.get("config") or {}).get("protocol"),
                "dataset": _dataset_name(r),
                "accuracy": table[label],
                "relative": rel_table[label] if rel_table else None,
            }
            for label, d, r in zip(labels, dirs, runs)
        ],
        "reference": None
        if ref is None
        else {
            "label": ref["label"],
            "dir": str(Path(reference).resolve()),
            "accuracy": {layer: value(ref, layer) for layer in layers},
        },
    }
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / COMPARISON_FILES[0], json.dumps(summary, indent=2) + "\n", fsync=False)
    atomic.write_text(out / COMPARISON_FILES[1], _comparison_markdown(summary, table, rel_table), fsync=False)
    _plot_comparison(summary, table, rel_table, out / COMPARISON_FILES[2])
    return summary


def _comparison_markdown(summary: dict, table: dict, rel_table: dict | None) -> str:
    layers, metric = summary["layers"], summary["metric"].replace("top", "top-")
    head = "| run | " + " | ".join(layers) + " |"
    rule = "|---|" + "---:|" * len(layers)
    lines = [f"# Linear probes: {metric} accuracy (%) per layer", "", head, rule]
    if summary["reference"]:
        ref = summary["reference"]
        lines.append(
            f"| {ref['label']} (reference) | " + " | ".join(_fmt(ref["accuracy"][layer]) for layer in layers) + " |"
        )
    lines += [f"| {label} | " + " | ".join(_fmt(row[layer]) for layer in layers) + " |" for label, row in table.items()]
    if rel_table:
        lines += ["", f"## Relative to {summary['reference']['label']} (% of its {metric} accuracy)", "", head, rule]
        lines += [
            f"| {label} | " + " | ".join(_fmt(row[layer]) for layer in layers) + " |"
            for label, row in rel_table.items()
        ]
    lines += ["", "Runs:", ""]
    lines += [f"- {r['label']}: `{r['dir']}` (protocol {r['protocol']}, data {r['dataset']})" for r in summary["runs"]]
    return "\n".join(lines) + "\n"


def _plot_comparison(summary: dict, table: dict, rel_table: dict | None, path: Path) -> None:
    """Absolute accuracy per layer (the reference dashed, in black) and, with a reference, each run's accuracy
    as a percentage of it; a run keeps its colour in both panels."""
    layers, metric = summary["layers"], summary["metric"].replace("top", "top-")
    fig = _figure(ncols=2 if rel_table else 1)
    axes = fig.subplots(1, 2 if rel_table else 1, squeeze=False)[0]
    colours = {label: f"C{i % 10}" for i, label in enumerate(table)}

    def draw(ax, label: str, row: dict, **style) -> None:
        pts = [(i, row[layer]) for i, layer in enumerate(layers) if row[layer] is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label, **style)

    def finish(ax, ylabel: str, title: str) -> None:
        ax.set_xticks(range(len(layers)), layers)
        ax.set_xlabel("probed layer")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")

    ref = summary["reference"]
    if ref:
        draw(axes[0], f"{ref['label']} (reference)", ref["accuracy"], color="black", linestyle="--")
    for label, row in table.items():
        draw(axes[0], label, row, color=colours[label])
    finish(axes[0], f"{metric} accuracy (%)", "Linear probes")
    if rel_table:
        axes[1].axhline(100, color="black", lw=0.8, ls="--")
        for label, row in rel_table.items():
            draw(axes[1], label, row, color=colours[label])
        finish(axes[1], f"% of the reference's {metric}", f"Relative to {ref['label']}")
    with atomic.replacing(path, fsync=False) as f:
        fig.savefig(f, format="png", dpi=120)
