"""``mono-probe``: linear probes on every conv block of a frozen trunk, and comparisons of probe runs.

Cheap checks (options, paths, protocol) run before torch is imported, so mistakes are reported at once.
"""

from __future__ import annotations

from pathlib import Path

import click

from mono.learning.cli_errors import run_cli
from mono.learning.cli_options import checkpoint_path, device_option, quiet_option, workers_option
from mono.learning.errors import UserError

PROG = "mono-probe"
FILTER_TILE = 48  # px: an 11x11 AlexNet filter at 4x, a 3x3 monogan one at 16x


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """Linear probes per layer after Asano, Rupprecht & Vedaldi (ICLR 2020), section 4.1.

    \b
    Examples:
      mono-probe linear --arch monogan --random-init \\
          --train ../shared/datasets/cifar10/train --val ../shared/datasets/cifar10/test --out runs/random-monogan
      mono-probe linear --ckpt ckpt/rotnet.pt --train IMAGENET/train --val IMAGENET/val --out runs/rotnet
      mono-probe compare runs/rotnet runs/bigan --reference runs/supervised -o runs/compare
      mono-probe finetune --ckpt ckpt/monogan.pt --freeze conv2 --train CIFAR/train --val CIFAR/test --out runs/t4
    """


def _check_exists(path: Path | None, option: str, kind: str) -> None:
    if path is None:
        return
    if not path.exists():
        raise UserError(f"{option} {kind} not found: {path}")
    if kind == "file" and not path.is_file():
        raise UserError(f"{option} must be a file, not a directory: {path}")
    if kind == "directory" and not path.is_dir():
        raise UserError(f"{option} must be a directory: {path}")


def _check_trunk_options(ckpt, arch, random_init, sobel, activation, arch_args=None) -> None:
    if ckpt is not None and (arch is not None or random_init):
        raise UserError("give either --ckpt or --arch with --random-init, not both")
    if ckpt is None:
        if arch is None:
            raise UserError("give --ckpt PATH, or --arch alexnet|monogan with --random-init (or --arch scattering)")
        if not random_init and arch != "scattering":
            raise UserError(f"--arch {arch} builds an untrained trunk; add --random-init (or give --ckpt)")
    elif sobel is not None or activation is not None or arch_args:
        raise UserError(
            "--sobel, --activation and --arch-args apply to --random-init; a checkpoint fixes its architecture"
        )
    if arch in ("monogan", "scattering") and sobel:
        raise UserError("--sobel applies to alexnet only")
    _check_exists(ckpt, "--ckpt", "file")


def _check_data_options(train, val, dataset, data_root) -> None:
    folders, torchvision_set = train is not None or val is not None, dataset is not None or data_root is not None
    if folders and torchvision_set:
        raise UserError("give either --train/--val (ImageFolder) or --dataset/--data-root, not both")
    if folders:
        if train is None or val is None:
            raise UserError("--train and --val go together")
        _check_exists(train, "--train", "directory")
        _check_exists(val, "--val", "directory")
    elif torchvision_set:
        if dataset is None or data_root is None:
            raise UserError("--dataset and --data-root go together")
        _check_exists(data_root, "--data-root", "directory")
    else:
        raise UserError("give the data: --train DIR --val DIR, or --dataset cifar10|cifar100 --data-root DIR")


def _options(*decorators):
    """Several click options as one decorator, applied in the order listed (as they show in --help)."""

    def apply(func):
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


_ckpt_option = click.option(
    "--ckpt",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="mono checkpoint (docs/checkpoints.md): the file, or the run directory holding checkpoint.pt.",
)

_random_trunk_options = _options(
    click.option("--random-init", is_flag=True, help="Use an untrained trunk of --arch (init seeded by --seed)."),
    click.option(
        "--arch-args",
        metavar="'KEY=VALUE ...'",
        help="Other arguments of a random trunk, e.g. 'widths=64,128,256,512 init=wgan_gp padding=3,2,1,1' "
        "for monogan (docs/probes.md lists them and their defaults).",
    ),
)

_data_options = _options(
    click.option(
        "--train",
        "train_dir",
        type=click.Path(path_type=Path),
        metavar="DIR",
        help="ImageFolder tree of training images.",
    ),
    click.option(
        "--val",
        "val_dir",
        type=click.Path(path_type=Path),
        metavar="DIR",
        help="ImageFolder tree of evaluation images (same classes).",
    ),
    click.option("--dataset", type=click.Choice(["cifar10", "cifar100"]), help="A torchvision dataset instead."),
    click.option(
        "--data-root",
        type=click.Path(path_type=Path),
        metavar="DIR",
        help="Root holding the torchvision dataset's files (never downloaded).",
    ),
    click.option(
        "--protocol",
        type=click.Choice(["imagenet", "cifar"]),
        help="imagenet: 224 crops, 10-crop evaluation; cifar: native 32 px [default: imagenet for alexnet, "
        "cifar for monogan].",
    ),
)

_limit_options = _options(
    click.option(
        "--train-limit",
        type=click.IntRange(min=1),
        metavar="N",
        help="Use N training images, evenly spread over the (class-sorted) split [default: all].",
    ),
    click.option(
        "--val-limit", type=click.IntRange(min=1), metavar="N", help="Likewise for evaluation images [default: all]."
    ),
)

_run_options = _options(
    click.option(
        "--seed",
        type=int,
        default=0,
        show_default=True,
        help="Seeds a random trunk, the new layers, data order, augmentation and dropout.",
    ),
    workers_option("Data-loading worker processes."),
    click.option("--threads", type=click.IntRange(min=1), help="torch CPU threads [default: torch's choice]."),
    device_option,
    click.option("--label", help="Name of the run in reports [default: method and architecture]."),
)


def _run_dir_options(what: str):
    """-o/--out DIR, --resume and -q/--quiet of a resumable probe run writing `what`."""
    return _options(
        click.option(
            "-o",
            "--out",
            type=click.Path(path_type=Path),
            required=True,
            metavar="DIR",
            help=f"Run directory: {what}; the same command again continues the run.",
        ),
        click.option(
            "--resume",
            is_flag=True,
            help="Insist on continuing a run in DIR (rerunning the same command continues anyway).",
        ),
        quiet_option,
    )


@cli.command()
@_ckpt_option
@click.option(
    "--arch",
    type=click.Choice(["alexnet", "monogan", "scattering"]),
    help="Architecture to build (with --random-init); scattering is fixed and needs no --random-init.",
)
@_random_trunk_options
@click.option("--sobel/--no-sobel", default=None, help="alexnet with the fixed Sobel input layer (random init only).")
@click.option(
    "--activation",
    type=click.Choice(["relu", "leaky_relu"]),
    help="Activation of a random trunk [default: the architecture's, see docs/probes.md].",
)
@click.option(
    "--flip/--no-flip",
    default=None,
    help="Random horizontal flips of the training images [default: on; the imagenet protocol "
    "always flips]. With the cifar protocol, features of both orientations are cached.",
)
@_data_options
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=36,
    show_default=True,
    help="Epochs; lr 0.01 divided by 5 at epochs 5, 15, 25.",
)
@click.option("--batch-size", type=click.IntRange(min=2), default=192, show_default=True, help="Images per step.")
@click.option(
    "--lr", type=click.FloatRange(min=0, min_open=True), default=0.01, show_default=True, help="Initial learning rate."
)
@click.option(
    "--weight-decay", type=click.FloatRange(min=0), default=1e-5, show_default=True, help="Weight decay of the probes."
)
@_limit_options
@_run_options
@_run_dir_options("results.json, results.md, accuracy.png and the resumable state")
def linear(
    ckpt,
    arch,
    random_init,
    arch_args,
    sobel,
    activation,
    flip,
    train_dir,
    val_dir,
    dataset,
    data_root,
    protocol,
    epochs,
    batch_size,
    lr,
    weight_decay,
    train_limit,
    val_limit,
    seed,
    workers,
    threads,
    device,
    label,
    out,
    resume,
    quiet,
) -> None:
    """Train a linear probe on every conv block of a frozen trunk and report top-1/top-5 per layer.

    All probes train together with SGD (momentum 0.9), lr 0.01 divided by 5 at epochs 5, 15 and 25.
    The imagenet protocol (alexnet) trains on random 224 crops of images resized to 256 and evaluates
    10 crops; the cifar protocol (monogan) computes features of the native 32x32 images once.

    \b
    Examples:
      # random-init monogan on the CIFAR-10 copy (about 6 minutes on 2 CPU cores)
      mono-probe linear --arch monogan --random-init \\
          --train ../shared/datasets/cifar10/train --val ../shared/datasets/cifar10/test \\
          --out runs/random-monogan
      # a trained alexnet checkpoint on ImageNet
      mono-probe linear --ckpt ckpt/rotnet.pt --train IMAGENET/train --val IMAGENET/val --out runs/rotnet
      # torchvision's CIFAR-100 files
      mono-probe linear --ckpt ckpt/gan.pt --dataset cifar100 --data-root data --out runs/gan-c100
      # the scattering transform (J=2) in place of conv1-conv2 (the paper's Table 2(b) baseline)
      mono-probe linear --arch scattering --train CIFAR/train --val CIFAR/test --out runs/scattering
    """
    from mono.learning.models import canonical_arch_args, parse_arch_args
    from mono.probes.protocols import check_protocol, default_protocol, sized_for_protocol

    ckpt = ckpt and checkpoint_path(ckpt)
    _check_trunk_options(ckpt, arch, random_init, sobel, activation, arch_args)
    _check_data_options(train_dir, val_dir, dataset, data_root)
    extra_args = parse_arch_args(arch_args or "")
    for name, value in (("sobel", sobel), ("activation", activation)):
        if value is not None:
            if name in extra_args:
                raise UserError(f"--{name} and --arch-args {name}=... both given; give one")
            extra_args[name] = value
    if arch is not None:
        extra_args = sized_for_protocol(arch, extra_args, protocol)
        check_protocol(arch, protocol or default_protocol(arch, extra_args), extra_args)
        canonical_arch_args(arch, **extra_args)

    from mono.probes.data import DataSpec
    from mono.probes.linear import LinearConfig, run_linear
    from mono.probes.protocols import Schedule

    cfg = LinearConfig(
        out=out,
        data=DataSpec(
            train=train_dir, val=val_dir, dataset=dataset, root=data_root, train_limit=train_limit, val_limit=val_limit
        ),
        ckpt=ckpt,
        arch=arch,
        arch_args=extra_args,
        protocol=protocol,
        flip=flip,
        schedule=Schedule(epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=batch_size),
        seed=seed,
        workers=workers,
        threads=threads,
        device=device,
        label=label,
        progress=not quiet,
        resume=resume,
    )
    results = run_linear(cfg)
    click.echo(
        f"{results['label']}: "
        + ", ".join(f"{k} {v['top1']:.2f}" for k, v in results["layers"].items())
        + f" (top-1 %); reports in {out}"
    )


def _check_keep_options(ckpt, arch, freeze, init) -> tuple[str | None, str | None]:
    """("freeze"|"init"|None, block) from --freeze/--init, or a UserError for combinations that mean nothing."""
    if freeze and init:
        raise UserError("give --freeze BLOCK or --init BLOCK, not both")
    if ckpt is not None and not (freeze or init):
        raise UserError(
            "say which layers of the checkpoint to keep: --freeze BLOCK (Table 4) or --init BLOCK (Table 5)"
        )
    if arch == "scattering" and (init or (freeze and freeze != "conv2")):
        raise UserError(
            "the scattering transform stands in for conv1-conv2 and is never trained: "
            "use --arch scattering alone or with --freeze conv2"
        )
    if ckpt is None and arch != "scattering" and init:
        raise UserError("--init with --random-init is training from scratch; drop --init")
    return ("freeze", freeze) if freeze else ("init", init) if init else (None, None)


@cli.command()
@_ckpt_option
@click.option(
    "--arch",
    type=click.Choice(["alexnet", "monogan", "scattering"]),
    help="A random trunk of this architecture (with --random-init), or the fixed scattering transform.",
)
@_random_trunk_options
@click.option(
    "--freeze",
    metavar="BLOCK",
    help="Keep conv1..BLOCK of the source frozen (BatchNorm absorbed) and "
    "re-initialise and train the rest: the paper's Table 4 (--freeze conv2).",
)
@click.option(
    "--init",
    metavar="BLOCK",
    help="Initialise conv1..BLOCK from the source and train the whole network, "
    "then probe it linearly: the paper's Table 5 (--init conv2).",
)
@_data_options
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    help="Compress the protocol's schedule to N epochs, milestones in proportion "
    "[default: imagenet 90 (lr / 10 at 30, 60), cifar 30 (lr / 10 at 15, 25)].",
)
@click.option("--batch-size", type=click.IntRange(min=2), help="Images per step [default: imagenet 256, cifar 128].")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Initial learning rate [default: 0.01].")
@click.option("--weight-decay", type=click.FloatRange(min=0), help="Weight decay [default: imagenet 1e-4, cifar 5e-4].")
@click.option(
    "--probe-epochs",
    type=click.IntRange(min=0),
    default=36,
    show_default=True,
    help="After --init or training from scratch: linear probes of this many epochs on the result (0: none).",
)
@_limit_options
@_run_options
@_run_dir_options("results.json, results.md, accuracy.png, checkpoint.pt, probes/, resumable state")
def finetune(
    ckpt,
    arch,
    random_init,
    arch_args,
    freeze,
    init,
    train_dir,
    val_dir,
    dataset,
    data_root,
    protocol,
    epochs,
    batch_size,
    lr,
    weight_decay,
    probe_epochs,
    train_limit,
    val_limit,
    seed,
    workers,
    threads,
    device,
    label,
    out,
    resume,
    quiet,
) -> None:
    """Train a network whose first layers come from a trunk, with labels, and report its top-1/top-5.

    The paper's section 4.3: with --freeze conv2, conv1-conv2 stay as the source learned them and the rest
    of the network is re-initialised and trained (Table 4); with --init conv2 they only initialise it and
    everything trains, after which linear probes measure what each layer became (Table 5). --arch scattering
    puts the fixed scattering transform in place of conv1-conv2 (Table 4's baseline); --arch ARCH
    --random-init alone trains the whole network from scratch and writes its trunk to RUN_DIR/checkpoint.pt
    (a supervised trunk). AlexNet gets DeepCluster's classifier head, monogan one linear layer.

    \b
    Examples:
      # Table 4 on CIFAR-10: a MonoGAN critic's conv1-conv2, frozen; random and scattering rows
      mono-probe finetune --ckpt runs/monogan-B/checkpoint.pt --freeze conv2 \\
          --train ../shared/datasets/cifar10/train --val ../shared/datasets/cifar10/test --out runs/ft-monogan
      mono-probe finetune --arch monogan --random-init --freeze conv2 --train ... --val ... --out runs/ft-random
      mono-probe finetune --arch scattering --train ... --val ... --out runs/ft-scattering
      # Table 5: conv1-conv2 as initialisation, everything trained, then linear probes on every layer
      mono-probe finetune --ckpt runs/monogan-B/checkpoint.pt --init conv2 --train ... --val ... --out runs/init
      # a supervised trunk, trained from scratch, short schedule
      mono-probe finetune --arch monogan --random-init --epochs 5 --train ... --val ... --out runs/supervised
      # ImageNet, AlexNet: pytorch/examples' supervised schedule (90 epochs), 10-crop evaluation
      mono-probe finetune --ckpt runs/rotnet-A/checkpoint.pt --freeze conv2 --train IMAGENET/train \\
          --val IMAGENET/val --out runs/rotnet-A/table4
    """
    ckpt = ckpt and checkpoint_path(ckpt)
    _check_trunk_options(ckpt, arch, random_init, None, None, arch_args)
    keep, block = _check_keep_options(ckpt, arch, freeze, init)
    _check_data_options(train_dir, val_dir, dataset, data_root)
    from mono.learning.models import canonical_arch_args, parse_arch_args
    from mono.probes.protocols import check_protocol, default_protocol, sized_for_protocol

    extra_args = parse_arch_args(arch_args or "")
    if arch is not None:
        extra_args = sized_for_protocol(arch, extra_args, protocol)
        check_protocol(arch, protocol or default_protocol(arch, extra_args), extra_args)
        canonical_arch_args(arch, **extra_args)

    from mono.probes.data import DataSpec
    from mono.probes.finetune import FinetuneConfig, run_finetune

    results = run_finetune(
        FinetuneConfig(
            out=out,
            data=DataSpec(
                train=train_dir,
                val=val_dir,
                dataset=dataset,
                root=data_root,
                train_limit=train_limit,
                val_limit=val_limit,
            ),
            ckpt=ckpt,
            arch=arch,
            arch_args=extra_args,
            keep=keep,
            block=block,
            protocol=protocol,
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            probe_epochs=probe_epochs,
            seed=seed,
            workers=workers,
            threads=threads,
            device=device,
            label=label,
            progress=not quiet,
            resume=resume,
        )
    )
    probes = results["probes"]
    click.echo(
        f"{results['label']}: top-1 {results['top1']:.2f} %"
        + (", probes " + ", ".join(f"{k} {v['top1']:.2f}" for k, v in probes["layers"].items()) if probes else "")
        + f"; reports in {out}"
    )


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="RUN_DIR...")
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    metavar="RUN_DIR",
    help="Run the others are shown relative to (e.g. supervised), as in the paper's Figure 6.",
)
@click.option(
    "--metric", type=click.Choice(["top1", "top5"]), default="top1", show_default=True, help="Accuracy to compare."
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    metavar="DIR",
    help="Directory for comparison.md, comparison.png and comparison.json.",
)
def compare(run_dirs, reference, metric, out) -> None:
    """Put several probe runs in one table and one plot.

    Runs on different data or protocols are refused; differing epochs or train/val limits are warned about.

    \b
    Example:
      mono-probe compare runs/rotnet-1img runs/rotnet-imagenet --reference runs/supervised -o runs/fig6
    """
    from mono.probes.results import compare_runs

    summary = compare_runs(run_dirs, out, reference=reference, metric=metric)
    for warning in summary["warnings"]:
        click.echo(f"{PROG}: warning: {warning}", err=True)
    click.echo(f"compared {len(summary['runs'])} runs; wrote {out}/comparison.md and comparison.png")


@cli.command()
@click.argument("ckpt_argument", required=False, type=click.Path(path_type=Path), metavar="[CKPT]")
@_ckpt_option
@click.option(
    "--arch", type=click.Choice(["alexnet", "monogan"]), help="Draw an untrained trunk instead (with --random-init)."
)
@click.option("--random-init", is_flag=True, help="Use a random trunk of --arch (init seeded by --seed).")
@click.option("--sobel/--no-sobel", default=None, help="alexnet with the fixed Sobel input layer (random init only).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds a random trunk's initialisation.")
@click.option("--columns", type=click.IntRange(min=1), help="Filters per row [default: a square grid].")
@click.option(
    "--tile",
    type=click.IntRange(min=1),
    default=FILTER_TILE,
    show_default=True,
    metavar="PX",
    help="Side of one filter in pixels (a whole multiple of the filter's), enlarged nearest-neighbour.",
)
@click.option("--scale", type=click.IntRange(min=1), hidden=True)  # the old spelling: screen pixels per filter pixel
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), metavar="FILE.png", help="Image to write.")
def filters(ckpt_argument, ckpt, arch, random_init, sobel, seed, columns, tile, scale, out) -> None:
    """Draw the first-layer filters as a grid, each normalised on its own (the paper's Figure 2).

    The picture is titled (whose filters, which layer, what the two halves of a Sobel trunk's tiles are) and
    its tiles are numbered by output channel. The checkpoint is --ckpt PATH; a positional CKPT, the old
    spelling, is still accepted.

    \b
    Examples:
      mono-probe filters --ckpt runs/monogan-B -o conv1.png
      mono-probe filters --arch alexnet --random-init --tile 64 -o conv1-random.png
    """
    if ckpt_argument is not None and ckpt is not None:
        raise UserError("give the checkpoint once: --ckpt PATH (the positional CKPT is its old spelling)")
    ckpt = ckpt or ckpt_argument
    ckpt = ckpt and checkpoint_path(ckpt)
    if ckpt is None and arch is None:
        raise UserError("give a checkpoint, or --arch alexnet|monogan with --random-init")
    _check_trunk_options(ckpt, arch, random_init, sobel, None)
    if not out.parent.is_dir():
        raise UserError(f"-o {out}: no such directory {out.parent}")
    import io

    import torch

    from mono.learning.atomic import write_bytes
    from mono.learning.checkpoint import load_trunk
    from mono.learning.models import build_trunk
    from mono.probes.filters import describe_filters, first_layer_filters, labelled_filter_grid

    if ckpt is not None:
        trunk, loaded = load_trunk(ckpt)
        whose = f"{loaded.method}-trained {loaded.arch} (epoch {loaded.epoch})"
    else:
        torch.manual_seed(seed)
        trunk = build_trunk(arch, **({"sobel": sobel} if sobel is not None else {}))
        whose = f"random-init {arch} (seed {seed})"
    weights = first_layer_filters(trunk)
    buffer = io.BytesIO()
    title = describe_filters(trunk, weights, whose)
    factor = scale or max(1, tile // weights.shape[-1])
    labelled_filter_grid(weights, title, columns=columns, scale=factor).save(buffer, format="PNG")
    write_bytes(out, buffer.getvalue(), fsync=False)
    click.echo(f"{out}: {weights.shape[0]} filters of {weights.shape[2]}x{weights.shape[3]}x{weights.shape[1]}")


def main(argv=None) -> None:
    run_cli(lambda: cli.main(argv, prog_name=PROG, standalone_mode=False), PROG)


if __name__ == "__main__":
    main()
