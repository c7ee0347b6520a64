"""mono-repro: reproduce the paper's CIFAR experiments end to end, with the pictures that go with them."""

from __future__ import annotations

import dataclasses
import json
import platform
import re
from pathlib import Path

import click

from mono.learning import atomic
from mono.learning.cli_errors import run_cli
from mono.learning.cli_options import workers_option
from mono.learning.errors import UserError

from . import report, table3
from .budgets import BUDGETS
from .pipeline import Pipeline

# The paper's Table 1: MonoGAN on Image B with each combination of jitter, rotation and scale.
# `all` is the full protocol (with flips); the other rows leave flips out so that each names exactly
# what it uses.
ABLATION = {
    "none": "none",
    "jitter": "jitter",
    "rotation": "rotation",
    "scale": "scale",
    "rotation+jitter": "rotation,jitter",
    "rotation+scale": "rotation,scale",
    "jitter+scale": "jitter,scale",
    "all": "all",
}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """Reproduce the paper's experiments end to end.

    \b
    Examples:
      mono-repro cifar --cifar10 ../shared/datasets/cifar10 -o runs/repro-cpu
      mono-repro cifar --cifar10 ../shared/datasets/cifar10 --table 3 -o runs/table3-cpu
    """


@cli.command()
@click.option(
    "--cifar10",
    "cifar10",
    required=True,
    type=click.Path(path_type=Path),
    help="CIFAR-10 in ImageFolder layout: DIR/train/<class>/*, DIR/test/<class>/*.",
)
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Run directory; the same command again continues where the last one stopped.",
)
@click.option(
    "--budget",
    type=click.Choice(list(BUDGETS)),
    default="cpu",
    show_default=True,
    help="smoke: seconds (tests); cpu: about 20 minutes on 2 cores; gpu: one short GPU session; paper: the paper's "
    "schedule (GPU).",
)
@click.option(
    "--gan-epochs",
    type=click.IntRange(min=1),
    help="MonoGAN epochs instead of the budget's (bench/gpu_run.sh sets it from a measured throughput).",
)
@click.option(
    "--table",
    type=click.Choice(["3"]),
    help="Run the paper's Table 3 instead: random init, supervised, RotNet, GAN and DeepCluster on CIFAR-10, and "
    "RotNet, MonoGAN and DeepCluster on the image, probed beside the paper's numbers (DIR/table3/results.md).",
)
@click.option("--ablation", is_flag=True, help="Also run the 8 augmentation combinations of the paper's Table 1.")
@click.option(
    "--ablation-rows",
    default=",".join(ABLATION),
    show_default=True,
    metavar="LIST",
    help="The rows of Table 1 to run with --ablation (a comma-separated subset).",
)
@click.option(
    "--cifar100", type=click.Path(path_type=Path), help="CIFAR-100 in ImageFolder layout, to probe on it too."
)
@click.option("--image", default="B", show_default=True, help="Source image (the paper uses B for CIFAR).")
@click.option("--image-dir", type=click.Path(path_type=Path), help="Where the paper's images are (see mono-gen).")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seeds the datasets, the trainings and the probes."
)
@workers_option("Processes that load data in each step (the probes use at most 2).")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to train and probe: auto (CUDA if available), cpu or cuda.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or step lines (errors and the summary stay).")
def cifar(
    cifar10,
    out,
    budget,
    gan_epochs,
    table,
    ablation,
    ablation_rows,
    cifar100,
    image,
    image_dir,
    seed,
    workers,
    device,
    quiet,
):
    """Image B -> 32 px dataset -> MonoGAN -> CIFAR-10 linear probes, against a random-init encoder.

    \b
    Examples:
      mono-repro cifar --cifar10 ../shared/datasets/cifar10 --out runs/repro-cpu
      mono-repro cifar --cifar10 data/cifar10 --budget paper --ablation --cifar100 data/cifar100 --out runs/repro
      mono-repro cifar --cifar10 data/cifar10 --budget gpu --gan-epochs 200 --out runs/repro-gpu
      mono-repro cifar --cifar10 ../shared/datasets/cifar10 --table 3 --budget cpu --out runs/table3-cpu
    """
    plan = BUDGETS[budget] if gan_epochs is None else dataclasses.replace(BUDGETS[budget], gan_epochs=gan_epochs)
    rows = [r.strip() for r in ablation_rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ABLATION]
    if unknown or not rows:
        raise UserError(
            f"--ablation-rows: unknown row(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(ABLATION)}"
        )
    for name, split in (("--cifar10", cifar10), ("--cifar100", cifar100)):
        if split is not None and not ((split / "train").is_dir() and (split / "test").is_dir()):
            raise UserError(f"{name} {split}: expected train/ and test/ folders (ImageFolder layout)")
    if table and (ablation or cifar100 is not None):
        raise UserError("--table 3 runs the table alone; run --ablation and --cifar100 without --table")
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "budget": json.loads(json.dumps(plan.to_dict())),
        "image": image,
        "seed": seed,
        "cifar10": str(cifar10.resolve()),
        "cifar100": str(cifar100.resolve()) if cifar100 else None,
        "ablation": rows if ablation else [],
        "table": table,
        "platform": platform.platform(),
    }
    saved = out / "config.json"
    if saved.exists() and json.loads(saved.read_text())["budget"] != config["budget"]:
        raise UserError(f"{out} holds a reproduction with another budget; use another --out")
    atomic.write_text(saved, json.dumps(config, indent=2) + "\n")
    steps = Pipeline(out, quiet)
    decimals = 0 if plan.name == "smoke" else 2  # the smoke budget's numbers mean nothing: no false precision
    smoke_note = (
        " (smoke budget: checks that every step runs; the numbers mean nothing)" if plan.name == "smoke" else ""
    )
    progress = ["--quiet"] if quiet else []
    common_train = ["--seed", seed, "--workers", workers, "--device", device, *progress]
    source = ["--image", image] + (["--image-dir", image_dir] if image_dir else [])
    tag = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(image).name)  # an image file's name, never a path out of --out

    def generate(name: str, augment: str) -> Path:
        data = out / "data" / f"{tag}-{name}"
        steps.run(
            f"generate {name}",
            "mono.generator.cli",
            [
                *source,
                "--preset",
                "cifar",
                "--samples",
                plan.samples,
                "--augment",
                augment,
                "--seed",
                seed,
                "--workers",
                workers,
                "--quiet",
                "--out",
                data,
            ],
            done=lambda: (data / "manifest.json").exists(),
        )
        return data

    def experiment(name: str, augment: str) -> Path:
        data, run = generate(name, augment), out / "train" / f"monogan-{name}"
        resume = ["--resume"] if (run / "checkpoint.pt").exists() else []
        steps.run(
            f"train MonoGAN on {name}",
            "mono.trainers.cli",
            [
                "monogan",
                "--data",
                data,
                "--out",
                run,
                "--epochs",
                plan.gan_epochs,
                "--batch-size",
                plan.gan_batch,
                *plan.gan_options,
                *common_train,
                *resume,
            ],
        )
        return run

    def probe(name: str, trunk_args: list, dataset: Path, label: str) -> Path:
        target = out / "probe" / name
        limits = []
        if plan.probe_train_limit:
            limits += ["--train-limit", plan.probe_train_limit, "--val-limit", plan.probe_val_limit]
        steps.run(
            f"probe {name}",
            "mono.probes.cli",
            [
                "linear",
                *trunk_args,
                "--train",
                dataset / "train",
                "--val",
                dataset / "test",
                "--protocol",
                "cifar",
                "--epochs",
                plan.probe_epochs,
                *limits,
                "--seed",
                seed,
                "--workers",
                min(workers, 2),
                "--device",
                device,
                "--label",
                label,
                "--out",
                target,
                *(["--quiet"] if quiet else []),
            ],
            done=lambda: (target / "results.json").exists(),
        )
        return target

    if table == "3":
        image_label = f"Image {image}" if re.fullmatch(r"[A-Za-z]", image) else tag
        results = table3.run(
            out,
            plan,
            steps,
            cifar10=cifar10,
            image_data=generate("all", "all"),
            image_label=image_label,
            common_train=common_train,
            probe=probe,
            config=config,
        )
        gaps = results["mono_minus_full"]
        click.echo(
            "mono-repro: Table 3, mono minus full data at conv1: "
            + ", ".join(f"{m} {d['conv1']:+.{decimals}f}" for m, d in gaps.items())
            + f"; report: {out / 'table3' / 'results.md'}"
            + smoke_note
        )
        return

    run_all = experiment("all", "all")
    checkpoint = run_all / "checkpoint.pt"
    random_args = ["--arch", "monogan", "--random-init"]
    results = {"config": config}
    probe_random = probe("random-cifar10", random_args, cifar10, "random init")
    probe_monogan = probe("monogan-all-cifar10", ["--ckpt", checkpoint], cifar10, "MonoGAN, Image B")
    results["random"] = {"layers": report.load_layers(probe_random)}
    results["monogan"] = {"layers": report.load_layers(probe_monogan), "checkpoint": str(checkpoint)}
    results["monogan"]["gain_over_random"] = report.effect(results["random"]["layers"], results["monogan"]["layers"])
    results["meaningful"] = plan.name != "smoke"  # the smoke budget checks that every step runs, nothing more
    results["evaluation"] = report.evaluation(probe_random)
    results["chance_top1"] = results["evaluation"]["chance_top1"]

    if cifar100 is not None:
        r100 = probe("random-cifar100", random_args, cifar100, "random init")
        m100 = probe("monogan-all-cifar100", ["--ckpt", checkpoint], cifar100, "MonoGAN, Image B")
        results["cifar100"] = {
            "random": {"layers": report.load_layers(r100)},
            "monogan": {"layers": report.load_layers(m100)},
        }

    if ablation:
        results["ablation"] = {}
        for name in rows:
            augment = ABLATION[name]
            run = run_all if name == "all" else experiment(name, augment)
            target = (
                probe_monogan
                if name == "all"
                else probe(f"monogan-{name}-cifar10", ["--ckpt", run / "checkpoint.pt"], cifar10, f"MonoGAN, {name}")
            )
            results["ablation"][name] = {"augment": augment, "layers": report.load_layers(target)}

    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    # The ablation's rows go into the accuracy plot too ("all" is the main MonoGAN run, drawn once).
    ablated = [out / "probe" / f"monogan-{name}-cifar10" for name in results.get("ablation", {}) if name != "all"]
    compared = [probe_random, probe_monogan, *ablated]
    steps.run("accuracy plot", "mono.probes.cli", ["compare", *compared, "-o", out / "compare"])
    steps.run(
        "sample preview",
        "mono.generator.shards_cli",
        ["preview", out / "data" / f"{tag}-all", "-o", figures / "samples.png", "-n", 64, "--tile", 64],
    )
    steps.run("GAN samples", "mono.trainers.cli", ["sample", run_all, "-o", figures / "gan-samples.png"])
    steps.run(
        "training curves",
        "mono.trainers.cli",
        ["plot", run_all, "-o", figures / "training.png", "--probe", probe_monogan],
    )
    steps.run("critic filters", "mono.probes.cli", ["filters", "--ckpt", checkpoint, "-o", figures / "filters.png"])
    steps.run(
        "random filters",
        "mono.probes.cli",
        ["filters", "--arch", "monogan", "--random-init", "--seed", seed, "-o", figures / "filters-random.png"],
    )
    atomic.write_bytes(figures / "accuracy.png", (out / "compare" / "comparison.png").read_bytes())
    results["seconds"] = steps.timings
    report.write(
        out,
        results,
        {
            "samples": figures / "samples.png",
            "gan": figures / "gan-samples.png",
            "training": figures / "training.png",
            "filters": figures / "filters.png",
            "filters_random": figures / "filters-random.png",
            "accuracy": figures / "accuracy.png",
        },
    )
    gain = results["monogan"]["gain_over_random"]
    click.echo(
        "mono-repro: CIFAR-10 top-1 gain of MonoGAN over random init: "
        + ", ".join(f"{k} {v:+.{decimals}f}" for k, v in gain.items())
        + f"; report: {out / 'report.html'}"
        + smoke_note
    )


def main(argv=None) -> None:
    run_cli(lambda: cli.main(argv, prog_name="mono-repro", standalone_mode=False), "mono-repro")


if __name__ == "__main__":
    main()
