"""The reproduction's results and report: results.json, results.md, and one self-contained report.html."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from mono.learning import atomic
from mono.probes import paper

LAYERS = ("conv1", "conv2", "conv3", "conv4")


def load_layers(probe_dir: Path) -> dict:
    """The `layers` block of a probe run (mono-probe's results.json)."""
    return json.loads((probe_dir / "results.json").read_text())["layers"]


def evaluation(probe_dir: Path) -> dict:
    """What a probe run was evaluated on (data, images, protocol, epochs) and its chance level, for the report."""
    from mono.probes.results import chance_top1, context_line

    results = json.loads((probe_dir / "results.json").read_text())
    return {"context": context_line(results), "chance_top1": chance_top1(results)}


def table(
    rows: dict[str, dict], metric: str = "top1", decimals: int = 2, paper: dict[str, dict | None] | None = None
) -> str:
    """Markdown table: one row per encoder, one column per layer; with ``paper`` (row name -> the paper's
    numbers per layer, or None), the paper's numbers in as many columns beside ours."""
    head = "| encoder | " + " | ".join(LAYERS) + " |"
    rule = "|---|" + "---:|" * len(LAYERS)
    if paper is not None:
        head += " paper " + " | paper ".join(LAYERS) + " |"
        rule += "---:|" * len(LAYERS)
    lines = [head, rule]
    for name, layers in rows.items():
        cells = [f"{layers[layer][metric]:.{decimals}f}" if layer in layers else "–" for layer in LAYERS]
        if paper is not None:
            theirs = paper.get(name)
            cells += [f"{theirs[layer]:.1f}" if theirs and layer in theirs else "–" for layer in LAYERS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def effect(random: dict, trained: dict) -> dict[str, float]:
    """Top-1 gain of the trained encoder over the random one, per layer (percentage points)."""
    return {layer: round(trained[layer]["top1"] - random[layer]["top1"], 2) for layer in LAYERS if layer in trained}


def write(run_dir: Path, results: dict, figures: dict[str, Path]) -> None:
    atomic.write_text(run_dir / "results.json", json.dumps(results, indent=2) + "\n")
    markdown = _markdown(results, figures, run_dir)
    atomic.write_text(run_dir / "report.md", markdown)
    atomic.write_text(run_dir / "report.html", _html(results, figures))


SMOKE_BANNER = (
    "Smoke budget: this run checks that every step runs and the report is complete; the numbers mean nothing "
    "(printed without decimals)."
)


def _paper_layers(table: str, key: str) -> dict | None:
    found = paper.row(table, key)
    return found.layers if found else None


def _sections(results: dict) -> list[tuple[str, str]]:
    budget = results["config"]["budget"]
    decimals = 2 if results.get("meaningful", True) else 0
    main = {
        "random init": results["random"]["layers"],
        "MonoGAN (Image B, all augmentations)": results["monogan"]["layers"],
    }
    theirs = {
        "random init": _paper_layers("3", "random"),
        "MonoGAN (Image B, all augmentations)": _paper_layers("3", "monogan"),
    }
    gain = results["monogan"]["gain_over_random"]
    mono, rand = paper.row("3", "monogan").layers, paper.row("3", "random").layers
    paper_gain = {layer: mono[layer] - rand[layer] for layer in LAYERS}
    chance = results.get("chance_top1")
    evaluation = results.get("evaluation") or {}
    parts = []
    if not results.get("meaningful", True):
        parts.append(("Not meaningful", f"**{SMOKE_BANNER}**"))
    parts += [
        (
            "What was run",
            f"Image B expanded to {budget['samples']:,} samples of 32 px; MonoGAN (WGAN-GP) trained for "
            f"{budget['gan_epochs']} epochs; linear probes on CIFAR-10 (top-1 %, {budget['probe_epochs']} epochs) for "
            f"its critic and for a random-init encoder of the same architecture. "
            f"Budget `{budget['name']}`: {budget['description']}.",
        ),
        (
            "CIFAR-10 linear probes (top-1 %)",
            (f"Evaluation: {evaluation['context']}. " if evaluation.get("context") else "")
            + (f"Chance: {chance:.1f} %. " if chance is not None else "")
            + "The paper's columns are its Table 3 (same 32 px encoder, same protocol).\n\n"
            + table(main, decimals=decimals, paper=theirs)
            + "\n\nGain over random init (points): "
            + ", ".join(f"{k} {v:+.{decimals}f}" for k, v in gain.items())
            + " (the paper's: "
            + ", ".join(f"{layer} {paper_gain[layer]:+.1f}" for layer in LAYERS)
            + ")",
        ),
    ]
    if "cifar100" in results:
        rows = {
            "random init": results["cifar100"]["random"]["layers"],
            "MonoGAN": results["cifar100"]["monogan"]["layers"],
        }
        parts.append(("CIFAR-100 linear probes (top-1 %)", table(rows, decimals=decimals)))
    if "ablation" in results:
        rows = {"random init": results["random"]["layers"]}
        rows.update({name: r["layers"] for name, r in results["ablation"].items()})
        ablation_paper = {"random init": _paper_layers("3", "random")}
        ablation_paper.update({name: _paper_layers("1", name) for name in results["ablation"]})
        missing = [name for name in results["ablation"] if ablation_paper[name] is None]
        note = (
            f"\n\nThe paper's Table 1 numbers for {', '.join(missing)} could not be read on this machine and are "
            "left out (mono/probes/paper.py); random init is its Table 3 row."
            if missing
            else ""
        )
        parts.append(
            (
                "Augmentation ablation (the paper's Table 1), CIFAR-10 top-1 %",
                table(rows, decimals=decimals, paper=ablation_paper) + note,
            )
        )
    return parts


_CAPTIONS = {
    "samples": "Training samples generated from Image B (mono-shards preview); the number in a tile is its sample "
    "index",
    "gan": "Images generated by the trained MonoGAN (mono-train sample), in the order of their latent codes",
    "training": "The MonoGAN run's curves and its linear probe's accuracy per epoch (mono-train plot)",
    "filters": "First-layer filters of the MonoGAN critic (mono-probe filters), each stretched to its own range",
    "filters_random": "First-layer filters at random initialisation, drawn the same way",
    "accuracy": "Linear probe top-1 per layer (mono-probe compare): ours as solid lines, the paper's matching rows "
    "as hollow diamonds on dashed lines, chance dotted",
}


def _markdown(results: dict, figures: dict[str, Path], run_dir: Path) -> str:
    out = ["# Reproduction: what can we learn from a single image? (CIFAR, MonoGAN)", ""]
    for title, body in _sections(results):
        out += [f"## {title}", "", body, ""]
    out += ["## Pictures", ""]
    for key, path in figures.items():
        out += [f"**{_CAPTIONS[key]}**", "", f"![{_CAPTIONS[key]}]({path.relative_to(run_dir).as_posix()})", ""]
    out += [
        "## How to rerun",
        "",
        "Every command is in `commands.sh`; `mono-repro` with the same arguments resumes.",
        "",
    ]
    return "\n".join(out)


def _html(results: dict, figures: dict[str, Path]) -> str:
    body = ["<h1>Reproduction: what can we learn from a single image? (CIFAR, MonoGAN)</h1>"]
    for title, text in _sections(results):
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(_markdown_block_to_html(text))
    body.append("<h2>Pictures</h2>")
    for key, path in figures.items():
        data = base64.b64encode(path.read_bytes()).decode()
        body.append(
            f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(_CAPTIONS[key])}' "
            f"data-file='{html.escape(path.name)}'>"
            f"<figcaption>{html.escape(_CAPTIONS[key])}</figcaption></figure>"
        )
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
        "td:first-child,th:first-child{text-align:left}"
        # every picture at the same displayed width, whatever its pixel size: comparable scales, pixels kept sharp
        "figure{margin:1em 0}img{width:40em;max-width:100%;height:auto;image-rendering:pixelated}"
        "figcaption{font-size:.9em;color:#444}"
    )
    return (
        f"<!doctype html><meta charset='utf-8'><title>mono reproduction</title><style>{style}</style>\n"
        + "\n".join(body)
        + "\n"
    )


def _markdown_block_to_html(text: str) -> str:
    """Tables and paragraphs of the small markdown this module writes."""
    parts, rows = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                rows.append([c.strip() for c in line.strip("|").split("|")])
            continue
        if rows:
            head, *rest = rows
            parts.append(
                "<table><tr>"
                + "".join(f"<th>{html.escape(c)}</th>" for c in head)
                + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rest)
                + "</table>"
            )
            rows = []
        if line.strip():
            text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(line.replace("`", "")))
            parts.append(f"<p>{text}</p>")
    return "\n".join(parts)
