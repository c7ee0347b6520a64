"""`mono-repro cifar --table 3`: the paper's Table 3, every method on the full CIFAR-10 and on one image.

Each row trains the 32 px `monogan` trunk with one method on one dataset, then probes it on CIFAR-10 with the
cifar protocol; the report puts our conv1-conv4 beside the paper's published numbers, says whether the issue's
three expected findings hold, and draws "mono minus full data" per layer and method. Every training and probe is
one command of the pipeline (commands.sh) and is skipped or resumed on a rerun.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mono.learning import atomic
from mono.probes import paper

from . import report
from .budgets import Budget
from .pipeline import Pipeline

LAYERS = report.LAYERS

# The paper's Table 3 (Asano et al. 2020), CIFAR-10 linear probes, top-1 % at conv1-conv4 (mono.probes.paper holds
# every number of the paper that reports use). The paper has one RotNet row and does not name its training data
# beside it; it is shown beside both of ours.
PAPER = paper.TABLE3

# Each trainer's default batch for --arch monogan (mono-train METHOD --help), used when the budget sets none.
DEFAULT_BATCH = {"supervised": 128, "rotnet": 128, "deepcluster": 256, "monogan": 64}


@dataclass(frozen=True)
class Row:
    label: str
    method: str | None  # the trainer (None: the random-init encoder)
    data: str | None  # "cifar10" or "image"
    paper: str | None  # key of PAPER


def rows(image: str) -> dict[str, Row]:
    """The table's rows, in the paper's order, DeepCluster last (an extra the paper does not have)."""
    return {
        "random": Row("random init", None, None, "random"),
        "supervised": Row("fully supervised (CIFAR-10)", "supervised", "cifar10", "supervised"),
        "rotnet-cifar10": Row("RotNet (CIFAR-10)", "rotnet", "cifar10", "rotnet"),
        "rotnet-image": Row(f"RotNet ({image})", "rotnet", "image", "rotnet"),
        "gan-cifar10": Row("GAN (CIFAR-10)", "monogan", "cifar10", "gan"),
        "monogan-image": Row(f"MonoGAN ({image})", "monogan", "image", "monogan"),
        "deepcluster-cifar10": Row("DeepCluster (CIFAR-10)", "deepcluster", "cifar10", None),
        "deepcluster-image": Row(f"DeepCluster ({image})", "deepcluster", "image", None),
    }


# "mono minus full data": each method's single-image row against its full-data row.
PAIRS = {
    "RotNet": ("rotnet-image", "rotnet-cifar10"),
    "GAN": ("monogan-image", "gan-cifar10"),
    "DeepCluster": ("deepcluster-image", "deepcluster-cifar10"),
}


def schedule(images: int, dataset_size: int, batch: int) -> tuple[int, int]:
    """(--epochs, --steps-per-epoch) that show a method about `images` training images in batches of `batch`:
    whole passes over the data where it is smaller (to within half a pass), one shortened pass where larger."""
    per_pass = max(1, dataset_size // batch)  # the trainers drop the last partial batch
    steps = max(1, images // batch)
    epochs = max(1, round(steps / per_pass))
    return epochs, min(per_pass, math.ceil(steps / epochs))


def count_images(folder: Path) -> int:
    """Files in an ImageFolder tree (what mono-train reads from it), without opening them."""
    return sum(len(files) for _, _, files in os.walk(folder))


def run(
    out: Path,
    plan: Budget,
    steps: Pipeline,
    *,
    cifar10: Path,
    image_data: Path,
    image_label: str,
    common_train: list,
    probe: Callable[[str, list, Path, str], Path],
    config: dict,
) -> dict:
    """Train and probe every row; write out/table3/results.json, results.md, the figure and the accuracy plot
    relative to the supervised row (table3/compare/); return the results."""
    root = out / "table3"
    data = {"cifar10": cifar10 / "train", "image": image_data}
    sizes = {"cifar10": count_images(cifar10 / "train"), "image": plan.samples}
    table = rows(image_label)
    results: dict = {"config": config, "meaningful": plan.name != "smoke", "rows": {}}
    for key, row in table.items():
        if row.method is None:
            target = probe("random-cifar10", ["--arch", "monogan", "--random-init"], cifar10, row.label)
            trained = {}
        else:
            run_dir = root / "train" / key
            options = _schedule_options(plan, row.method, sizes[row.data])
            arch = [] if row.method == "monogan" else ["--arch", "monogan"]
            command = [row.method, *arch, "--data", data[row.data], "--out", run_dir, *options, *common_train]
            finished = root / "finished" / f"{key}.json"  # written once the training command has succeeded
            resume = ["--resume"] if (run_dir / "checkpoint.pt").exists() else []
            steps.run(
                f"train {row.label}",
                "mono.trainers.cli",
                [*command, *resume],
                done=lambda finished=finished, command=command: _finished(finished, command),
            )
            finished.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(finished, json.dumps([str(c) for c in command]))
            target = probe(f"table3-{key}", ["--ckpt", run_dir / "checkpoint.pt"], cifar10, row.label)
            trained = {
                "checkpoint": str(run_dir / "checkpoint.pt"),
                "options": [str(o) for o in options],
                "images_seen": _images_seen(options),
            }
        results["rows"][key] = {
            "label": row.label,
            "method": row.method,
            "data": row.data,
            "layers": report.load_layers(target),
            "paper": dict(zip(LAYERS, PAPER[row.paper])) if row.paper else None,
            **trained,
        }
    # The paper's Figure 6 for these rows: each relative to the supervised one (mono-probe compare --reference).
    others = [out / "probe" / ("random-cifar10" if key == "random" else f"table3-{key}") for key in table]
    reference = others.pop(list(table).index("supervised"))
    compare = root / "compare"
    steps.run(
        "Table 3 accuracy plot",
        "mono.probes.cli",
        ["compare", *others, "--reference", reference, "-o", compare],
        done=lambda: _newer(compare / "comparison.json", [p / "results.json" for p in [*others, reference]]),
    )
    results["mono_minus_full"] = mono_minus_full(results["rows"])
    paper_gap = {layer: round(m - g, 2) for layer, m, g in zip(LAYERS, PAPER["monogan"], PAPER["gan"])}
    results["paper_mono_minus_full"] = {"GAN": paper_gap}
    results["evidence"] = evidence(results["rows"], image_label)
    results["seconds"] = dict(steps.timings)  # every step's, this run's and earlier runs' (repro/pipeline.py)
    figure(root / "mono-minus-full.png", results["mono_minus_full"], results["paper_mono_minus_full"], image_label)
    atomic.write_text(root / "results.json", json.dumps(results, indent=2) + "\n")
    atomic.write_text(root / "results.md", markdown(results, plan, image_label))
    return results


def _newer(output: Path, inputs: list[Path]) -> bool:
    """Whether `output` exists and was written after every one of `inputs`."""
    return output.exists() and all(output.stat().st_mtime >= p.stat().st_mtime for p in inputs)


def _finished(marker: Path, command: list) -> bool:
    """Whether this training command has already succeeded (its marker holds the same command)."""
    return marker.exists() and json.loads(marker.read_text()) == [str(c) for c in command]


def _schedule_options(plan: Budget, method: str, dataset_size: int) -> list:
    batch = plan.table3_batch or DEFAULT_BATCH[method]
    options: list = ["--batch-size", batch]
    if plan.table3_images is not None:
        epochs, per_epoch = schedule(plan.table3_images, dataset_size, batch)
        options += ["--epochs", epochs, "--steps-per-epoch", per_epoch]
    return options + list(plan.table3_options.get(method, ()))


def _images_seen(options: list) -> int | None:
    """Training images a run is shown (critic images for the GANs), from its --batch-size, --epochs and
    --steps-per-epoch; None when the trainer's own schedule decides."""
    values = dict(zip(options[::2], options[1::2]))
    if "--steps-per-epoch" not in values:
        return None
    return int(values["--batch-size"]) * int(values["--epochs"]) * int(values["--steps-per-epoch"])


def top1(row: dict, layer: str) -> float:
    return float(row["layers"][layer]["top1"])


def mono_minus_full(table: dict) -> dict[str, dict[str, float]]:
    """Per method and layer, top-1 of the single-image row minus that of the full-data row (points)."""
    return {
        method: {layer: round(top1(table[mono], layer) - top1(table[full], layer), 2) for layer in LAYERS}
        for method, (mono, full) in PAIRS.items()
    }


def evidence(table: dict, image: str) -> list[dict]:
    """The issue's three expected findings, each with whether it holds at this budget and the numbers."""
    found = []
    for method, (mono, full) in (("MonoGAN", PAIRS["GAN"]), ("RotNet", PAIRS["RotNet"])):
        gaps = {layer: round(top1(table[mono], layer) - top1(table[full], layer), 2) for layer in ("conv1", "conv2")}
        found.append(
            {
                "claim": f"{method} on {image} is within 3 points of the same method on CIFAR-10 at conv1 and conv2",
                "holds": all(abs(g) <= 3 for g in gaps.values()),
                "numbers": gaps,
            }
        )
    margins = {
        key: {layer: round(top1(row, layer) - top1(table["random"], layer), 2) for layer in ("conv1", "conv2")}
        for key, row in table.items()
        if row["method"] is not None
    }
    found.append(
        {
            "claim": "every trained row beats random init at conv1 and conv2",
            "holds": all(m > 0 for layers in margins.values() for m in layers.values()),
            "numbers": margins,
        }
    )
    return found


def markdown(results: dict, plan: Budget, image: str) -> str:
    decimals = 2 if results.get("meaningful", True) else 0
    lines = [
        "# The paper's Table 3 (CIFAR-10 linear probes, top-1 %): ours beside the paper's",
        "",
        *([f"**{report.SMOKE_BANNER}**", ""] if decimals == 0 else []),
        f"Budget `{plan.name}`: "
        + (
            f"every method shown {plan.table3_images:,} training images"
            if plan.table3_images
            else "each method's own schedule"
        )
        + f"; linear probes of {plan.probe_epochs} epoch(s). The trunk is the paper's 32 px encoder in every row.",
        "",
        "| row | images seen | " + " | ".join(LAYERS) + " | paper " + " | paper ".join(LAYERS) + " |",
        "|---|---:|" + "---:|" * (2 * len(LAYERS)),
    ]
    for row in results["rows"].values():
        seen = f"{row['images_seen']:,}" if row.get("images_seen") else ("–" if row["method"] is None else "own")
        ours = [f"{top1(row, layer):.{decimals}f}" for layer in LAYERS]
        paper = [f"{row['paper'][layer]:.1f}" for layer in LAYERS] if row["paper"] else ["–"] * len(LAYERS)
        lines.append(f"| {row['label']} | {seen} | " + " | ".join(ours + paper) + " |")
    lines += [
        "",
        "The paper has one RotNet row without saying which data it trained on; its numbers stand beside both of ours."
        " DeepCluster is an extra the paper's Table 3 does not have.",
        "",
        f"## Mono ({image}) minus full data (CIFAR-10), points",
        "",
        "| method | " + " | ".join(LAYERS) + " |",
        "|---|" + "---:|" * len(LAYERS),
    ]
    for method, diffs in results["mono_minus_full"].items():
        lines.append(f"| {method} | " + " | ".join(f"{diffs[layer]:+.{decimals}f}" for layer in LAYERS) + " |")
    for method, diffs in results["paper_mono_minus_full"].items():
        lines.append(f"| {method} (paper) | " + " | ".join(f"{diffs[layer]:+.2f}" for layer in LAYERS) + " |")
    lines += [
        "",
        "![mono minus full data](mono-minus-full.png)",
        "",
        "Every row relative to the supervised one, as the paper's Figure 6: `compare/comparison.png`.",
        "",
        "## Expected findings",
        "",
    ]
    for item in results["evidence"]:
        verdict = "holds" if item["holds"] else "does NOT hold"
        lines.append(f"- {item['claim']}: **{verdict}** ({json.dumps(item['numbers'])})")
    lines += ["", "## Wall time per step (s)", ""]
    lines += [f"- {name}: {seconds}" for name, seconds in results["seconds"].items()]
    lines += ["", "Every command is in `../commands.sh`; the same `mono-repro` command resumes.", ""]
    return "\n".join(lines)


def figure(path: Path, ours: dict, paper: dict, image: str) -> None:
    """Grouped bars: per layer, each method's mono-minus-full difference (the paper's GAN hatched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    colours = {method: f"C{i}" for i, method in enumerate(ours)}
    series = [(m, d, False) for m, d in ours.items()] + [(m, d, True) for m, d in paper.items()]
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    for i, (name, diffs, hatched) in enumerate(series):
        xs = [k + (i - (len(series) - 1) / 2) * width for k in range(len(LAYERS))]
        label, style = (f"{name} (paper)", {"hatch": "//", "alpha": 0.6}) if hatched else (name, {})
        ax.bar(xs, [diffs[layer] for layer in LAYERS], width, label=label, color=colours.get(name), **style)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(LAYERS)), LAYERS)
    ax.set_ylabel("top-1 difference (points)")
    ax.set_title(f"Mono ({image}) minus full data (CIFAR-10), per layer and method", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(path, buffer.getvalue())
