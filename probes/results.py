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
from mono.probes import paper

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


def _fmt(value: float | None, decimals: int = 2) -> str:
    return "—" if value is None else f"{value:.{decimals}f}"


# Fewer evaluation images than this and one image moves top-1 by a tenth of a point or more: the sampling noise
# (about 50/sqrt(n) points near 50 %) is over 1.5 points, so two decimals would claim a precision the run lacks.
MEANINGFUL_VAL_IMAGES = 1000
NOT_MEANINGFUL = "smoke-sized run: it checks that every step runs; the numbers mean nothing"


def meaningful(results: dict[str, Any]) -> bool:
    """Whether a run's numbers can be read as measurements: not marked otherwise (mono-repro's smoke budget sets
    ``meaningful: false``) and evaluated on enough images."""
    if "meaningful" in results:
        return bool(results["meaningful"])
    val_images = (results.get("dataset") or {}).get("val_images")
    return val_images is None or val_images >= MEANINGFUL_VAL_IMAGES


def dataset_label(results: dict[str, Any]) -> str:
    """A short name for the evaluation data: torchvision's name, or the folder above the ImageFolder split."""
    data = results.get("dataset") or {}
    if data.get("name"):
        return str(data["name"])
    val = data.get("val_path") or data.get("train_path")
    return Path(val).parent.name or str(val) if val else "?"


def context_line(results: dict[str, Any]) -> str:
    """Dataset, evaluation images, protocol and epochs: what every report and plot says about a run."""
    data, cfg = results.get("dataset") or {}, results.get("config") or {}
    epochs = (cfg.get("schedule") or {}).get("epochs")
    parts = [dataset_label(results)]
    if data.get("val_images") is not None:
        parts.append(f"{data['val_images']:,} evaluation images")
    if cfg.get("protocol"):
        parts.append(f"protocol {cfg['protocol']}")
    if epochs is not None:
        parts.append(f"{epochs} epoch{'s' if epochs != 1 else ''}")
    return ", ".join(parts)


def chance_top1(results: dict[str, Any]) -> float | None:
    return paper.chance((results.get("dataset") or {}).get("num_classes"))


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
    decimals = 2 if meaningful(results) else 0
    ref = paper.paper_row(results)
    head = "| layer | probe dims | top-1 (%) | top-5 (%) |" + (f" {ref.table} top-1 (%) |" if ref else "")
    rule = "|---|---:|---:|---:|" + ("---:|" if ref else "")
    rows = [
        f"| {name} | {dims.get(name, '')} | {_fmt(m['top1'], decimals)} | {_fmt(m['top5'], decimals)} |"
        + (f" {_fmt(ref.layers.get(name), 1)} |" if ref else "")
        for name, m in results["layers"].items()
    ]
    chance = chance_top1(results)
    notes = []
    if not meaningful(results):
        notes += [f"**Not meaningful: {NOT_MEANINGFUL}.** Numbers are printed without decimals.", ""]
    notes += [f"Evaluation: {context_line(results)}."]
    if chance is not None:
        notes.append(f"Chance (top-1): {chance:.1f} % ({results['dataset']['num_classes']} classes).")
    if ref:
        notes.append(f"The paper's numbers: {ref.table}, row {ref.row} (same architecture and protocol).")
    return "\n".join(
        [f"# Linear probes: {results['label']}", "", *notes, "", head, rule, *rows, "", *_describe(results), ""]
    )


def _draw_chance(ax, chance: float | None) -> None:
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", linewidth=1.2, label=f"chance ({chance:.1f} %)", gid="chance")


def _draw_paper(ax, xs: list, ref: paper.PaperRow | None, layers: list[str], color: str = "black") -> None:
    """The paper's row as dashed markers at the layers it reports."""
    if ref is None:
        return
    pts = [(x, ref.layers[name]) for x, name in zip(xs, layers) if name in ref.layers]
    if pts:
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            linestyle="--",
            marker="D",
            fillstyle="none",
            color=color,
            label=ref.name,
            gid="paper",
        )


def plot_run(results: dict[str, Any]):
    """The per-layer accuracy figure of one run: top-1, top-5, chance and (where it matches) the paper's row."""
    fig = _figure()
    ax = fig.add_subplot()
    names = list(results["layers"])
    xs = list(range(len(names)))
    for metric, style in (("top1", "o-"), ("top5", "s--")):
        ax.plot(xs, [results["layers"][n][metric] for n in names], style, label=metric.replace("top", "top-"))
    _draw_paper(ax, xs, paper.paper_row(results), names)
    _draw_chance(ax, chance_top1(results))
    ax.set_xticks(xs, names)
    ax.set_xlabel("probed layer")
    ax.set_ylabel("accuracy (%)")
    title = f"Linear probes: {results['label']}\n{context_line(results)}"
    if not meaningful(results):
        title += "\nNOT MEANINGFUL (smoke-sized run)"
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _plot_run(results: dict[str, Any], path: Path) -> None:
    fig = plot_run(results)
    with atomic.replacing(path, fsync=False) as f:
        fig.savefig(f, format="png", dpi=120)


def annotate(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` with what a reader needs beside the numbers: chance, the paper's matching row, whether the
    numbers mean anything."""
    ref = paper.paper_row(results)
    return {
        **results,
        "meaningful": meaningful(results),
        "chance_top1": chance_top1(results),
        "paper": ref.to_dict() if ref else None,
    }


def write_run_reports(out: Path, results: dict[str, Any], json_only: bool = False) -> None:
    """Write results.json (and unless ``json_only`` results.md and accuracy.png) into ``out``."""
    out = Path(out)
    results = annotate(results)
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
    decimals = 2 if meaningful(results) else 0
    chance = chance_top1(results)
    lines = [
        f"# Fine-tuning: {results['label']}",
        "",
        *([f"**Not meaningful: {NOT_MEANINGFUL}.** Numbers are printed without decimals.", ""] if not decimals else []),
        f"Evaluation: {context_line(results)}."
        + (f" Chance (top-1): {chance:.1f} % ({data['num_classes']} classes)." if chance is not None else ""),
        "",
        "| network | top-1 (%) | top-5 (%) |",
        "|---|---:|---:|",
        f"| {net['trunk']}, {short} | {_fmt(results['top1'], decimals)} | {_fmt(results['top5'], decimals)} |",
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
    _draw_chance(ax, chance_top1(results))
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    title = f"Fine-tuning: {results['label']}\n{context_line(results)}"
    ax.set_title(title + ("" if meaningful(results) else "\nNOT MEANINGFUL (smoke-sized run)"), fontsize=10)
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


def _dataset_identity(results: dict[str, Any]) -> str | None:
    """What makes two runs' data the same: torchvision's name, or an ImageFolder's listings (so a copy of the
    same files elsewhere counts as the same data), else its path."""
    data = results.get("dataset") or {}
    if data.get("train_listing_sha256") and data.get("val_listing_sha256"):
        return f"{dataset_label(results)} (listing {data['val_listing_sha256'][:8]})"
    return _dataset_name(results)


def _layer_order(runs: Sequence[dict[str, Any]]) -> list[str]:
    order: list[str] = []
    for results in runs:
        order += [name for name in results["layers"] if name not in order]
    return order


def _check_comparable(runs: Sequence[dict[str, Any]], labels: Sequence[str]) -> list[str]:
    """UserError when runs were measured on different data or protocols (their numbers are not comparable);
    a warning per setting that makes them less so (epochs, train/val limits)."""

    def setting(results: dict[str, Any], key: str):
        cfg, data = results.get("config") or {}, results.get("dataset") or {}
        return {
            "protocol": cfg.get("protocol"),
            "dataset": _dataset_identity(results),
            "epochs": (cfg.get("schedule") or {}).get("epochs"),
            "train limit": data.get("train_limit"),
            "val limit": data.get("val_limit"),
        }[key]

    def values(key: str) -> dict[str, Any]:
        return {label: setting(r, key) for label, r in zip(labels, runs)}

    def differ(found: dict[str, Any], skip_missing: bool) -> bool:
        seen = {repr(v) for v in found.values() if not (skip_missing and v is None)}
        return len(seen) > 1

    def listed(found: dict[str, Any]) -> str:
        return ", ".join(f"{label}: {value if value is not None else 'none'}" for label, value in found.items())

    for key in ("protocol", "dataset"):
        found = values(key)
        if differ(found, skip_missing=True):
            raise UserError(f"runs differ in {key} ({listed(found)}); their numbers are not comparable")
    warnings = []
    for key in ("epochs", "train limit", "val limit"):
        found = values(key)
        if differ(found, skip_missing=False):
            warnings.append(f"runs differ in {key} ({listed(found)}); compare them with care")
    return warnings


def compare_runs(
    run_dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    metric: str = "top1",
) -> dict[str, Any]:
    """One table and one plot for several runs; with ``reference``, also each run's accuracy as a percentage
    of the reference's, layer by layer. Writes comparison.{json,md,png} into ``out``.

    Runs on different data or protocols are refused; differing epochs or train/val limits are listed in
    ``warnings``. The reference, if also given as a run, is listed once."""
    if metric not in ("top1", "top5"):
        raise UserError(f"unknown metric {metric!r}; choose top1 or top5")
    dirs = [Path(d) for d in run_dirs]
    if reference is not None:
        dirs = [d for d in dirs if d.resolve() != Path(reference).resolve()]
    seen: set[Path] = set()
    dirs = [d for d in dirs if not (d.resolve() in seen or seen.add(d.resolve()))]
    if not dirs:
        raise UserError("give at least one run directory to compare (besides the reference)")
    runs = [load_run(d) for d in dirs]
    labels = _unique_labels(runs, dirs)
    ref = load_run(reference) if reference is not None else None
    warnings = _check_comparable(
        runs + ([ref] if ref else []), labels + ([f"{ref['label']} (reference)"] if ref else [])
    )
    layers = _layer_order(runs + ([ref] if ref else []))

    def value(results: dict[str, Any], layer: str) -> float | None:
        m = results["layers"].get(layer)
        return None if m is None else float(m[metric])

    def relative(results: dict[str, Any], layer: str) -> float | None:
        v, r = value(results, layer), value(ref, layer) if ref else None
        return None if v is None or not r else 100.0 * v / r

    def paper_values(results: dict[str, Any]) -> dict[str, Any] | None:
        row = paper.paper_row(results) if metric == "top1" else None
        return row.to_dict() if row else None

    table = {label: {layer: value(r, layer) for layer in layers} for label, r in zip(labels, runs)}
    rel_table = (
        {label: {layer: relative(r, layer) for layer in layers} for label, r in zip(labels, runs)} if ref else None
    )
    first = runs[0]
    summary = {
        "metric": metric,
        "layers": layers,
        "context": context_line(first),
        "chance": chance_top1(first) if metric == "top1" else None,
        "meaningful": all(meaningful(r) for r in runs + ([ref] if ref else [])),
        "warnings": warnings,
        "runs": [
            {
                "label": label,
                "dir": str(d.resolve()),
                "protocol": (r.get("config") or {}).get("protocol"),
                "dataset": _dataset_name(r),
                "epochs": ((r.get("config") or {}).get("schedule") or {}).get("epochs"),
                "accuracy": table[label],
                "relative": rel_table[label] if rel_table else None,
                "paper": paper_values(r),
            }
            for label, d, r in zip(labels, dirs, runs)
        ],
        "reference": None
        if ref is None
        else {
            "label": ref["label"],
            "dir": str(Path(reference).resolve()),
            "accuracy": {layer: value(ref, layer) for layer in layers},
            "paper": paper_values(ref),
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


def _paper_rows(summary: dict) -> dict[str, tuple[dict, str | None]]:
    """The paper's rows that match the compared runs, each once (two runs may share one), with the label of the
    first run it matches (None: the reference)."""
    found: dict[str, tuple[dict, str | None]] = {}
    entries = [(summary["reference"], None)] + [(r, r["label"]) for r in summary["runs"]]
    for entry, owner in entries:
        if entry and entry.get("paper"):
            p = entry["paper"]
            found.setdefault(f"paper, {p['table']}: {p['row']}", (p["layers"], owner))
    return found


def _comparison_markdown(summary: dict, table: dict, rel_table: dict | None) -> str:
    layers, metric = summary["layers"], summary["metric"].replace("top", "top-")
    decimals = 2 if summary["meaningful"] else 0
    head = "| run | " + " | ".join(layers) + " |"
    rule = "|---|" + "---:|" * len(layers)
    lines = [f"# Linear probes: {metric} accuracy (%) per layer", ""]
    if not summary["meaningful"]:
        lines += [f"**Not meaningful: {NOT_MEANINGFUL}.** Numbers are printed without decimals.", ""]
    lines += [f"Evaluation: {summary['context']}."]
    if summary["chance"] is not None:
        lines.append(f"Chance ({metric}): {summary['chance']:.1f} %.")
    lines += [f"**Warning:** {w}." for w in summary["warnings"]]
    lines += ["", head, rule]
    if summary["reference"]:
        ref = summary["reference"]
        lines.append(
            f"| {ref['label']} (reference) | "
            + " | ".join(_fmt(ref["accuracy"][layer], decimals) for layer in layers)
            + " |"
        )
    lines += [
        f"| {label} | " + " | ".join(_fmt(row[layer], decimals) for layer in layers) + " |"
        for label, row in table.items()
    ]
    lines += [
        f"| *{name}* | " + " | ".join(_fmt(values.get(layer), 1) for layer in layers) + " |"
        for name, (values, _) in _paper_rows(summary).items()
    ]
    if rel_table:
        lines += ["", f"## Relative to {summary['reference']['label']} (% of its {metric} accuracy)", "", head, rule]
        lines += [
            f"| {label} | " + " | ".join(_fmt(row[layer], decimals) for layer in layers) + " |"
            for label, row in rel_table.items()
        ]
    lines += ["", "Runs:", ""]
    lines += [
        f"- {r['label']}: `{r['dir']}` (protocol {r['protocol']}, data {r['dataset']}, epochs {r['epochs']})"
        for r in summary["runs"]
    ]
    return "\n".join(lines) + "\n"


def _plot_comparison(summary: dict, table: dict, rel_table: dict | None, path: Path) -> None:
    """Absolute accuracy per layer (the reference dashed, in black; the paper's matching rows as hollow diamonds
    on dashed lines; chance dotted) and, with a reference, each run's accuracy as a percentage of it; a run keeps
    its colour in both panels. Both y axes start at 0."""
    layers, metric = summary["layers"], summary["metric"].replace("top", "top-")
    fig = _figure(ncols=2 if rel_table else 1)
    axes = fig.subplots(1, 2 if rel_table else 1, squeeze=False)[0]
    colours = {label: f"C{i % 10}" for i, label in enumerate(table)}

    def draw(ax, label: str, row: dict, **style) -> None:
        pts = [(i, row[layer]) for i, layer in enumerate(layers) if row.get(layer) is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], **{"marker": "o", "label": label, **style})

    def finish(ax, ylabel: str, title: str, top: float) -> None:
        ax.set_xticks(range(len(layers)), layers)
        ax.set_xlabel("probed layer")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, top)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")

    ref = summary["reference"]
    if ref:
        draw(axes[0], f"{ref['label']} (reference)", ref["accuracy"], color="black", linestyle="--")
    for label, row in table.items():
        draw(axes[0], label, row, color=colours[label])
    for name, (values, owner) in _paper_rows(summary).items():
        style = {"linestyle": "--", "marker": "D", "fillstyle": "none", "gid": "paper"}
        draw(axes[0], name, values, color=colours.get(owner, "black"), **style)
    _draw_chance(axes[0], summary["chance"])
    title = f"Linear probes\n{summary['context']}"
    if not summary["meaningful"]:
        title += "\nNOT MEANINGFUL (smoke-sized runs)"
    finish(axes[0], f"{metric} accuracy (%)", title, 100)
    if rel_table:
        axes[1].axhline(100, color="black", lw=0.8, ls="--")
        for label, row in rel_table.items():
            draw(axes[1], label, row, color=colours[label])
        highest = max([v for row in rel_table.values() for v in row.values() if v is not None] + [100])
        finish(axes[1], f"% of the reference's {metric}", f"Relative to {ref['label']}", max(110, highest * 1.05))
    with atomic.replacing(path, fsync=False) as f:
        fig.savefig(f, format="png", dpi=120)
