"""``mono-viz``: pictures of what a trunk learned -- style transfer (the paper's Figure 3), activation
maximisation and top-9 retrieval (Figure 5) -- for any mono checkpoint or a random init.

Cheap checks (options, paths) run before torch is imported, so mistakes are reported at once.
"""

from __future__ import annotations

from pathlib import Path

import click

from mono.learning.cli_errors import run_cli
from mono.learning.cli_options import checkpoint_path, device_option, quiet_option, workers_option
from mono.learning.errors import UserError

PROG = "mono-viz"
CKPT_HELP = "mono checkpoint whose trunk to look into: the file, or the run directory holding checkpoint.pt."


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """Pictures of what a trunk learned, after Asano, Rupprecht & Vedaldi (ICLR 2020), Figures 3 and 5.

    \b
    Examples:
      mono-viz style --ckpt runs/monogan-B/checkpoint.pt --ckpt runs/supervised/checkpoint.pt \\
          --content photo.jpg --style painting.jpg -o fig3.png
      mono-viz maximize --ckpt runs/rotnet-A/checkpoint.pt --layer conv3 --channels 0,5,9 -o max.png
      mono-viz retrieve --ckpt runs/rotnet-A/checkpoint.pt --data IMAGENET/val --layer conv3 \\
          --channels 0,5,9 -o top9.png
    """


def _trunk_options(func):
    func = click.option(
        "--seed",
        type=int,
        default=0,
        show_default=True,
        help="Seeds a random trunk and the optimisation's random draws.",
    )(func)
    func = click.option("--random-init", is_flag=True, help="Use an untrained trunk of --arch.")(func)
    func = click.option(
        "--arch",
        type=click.Choice(["alexnet", "monogan"]),
        help="Architecture of a random trunk (with --random-init) instead of a checkpoint.",
    )(func)
    func = device_option(func)
    return quiet_option(func)


def _check_sources(
    ckpts: tuple[Path, ...], arch: str | None, random_init: bool, several: bool = False
) -> tuple[Path, ...]:
    """The checkpoint files the --ckpt options name (a run directory stands for its checkpoint.pt), checked."""
    ckpts = tuple(checkpoint_path(ckpt) for ckpt in ckpts)
    if not ckpts and arch is None:
        raise UserError("give --ckpt PATH, or --arch alexnet|monogan with --random-init")
    if arch is not None and not random_init:
        raise UserError(f"--arch {arch} builds an untrained trunk; add --random-init")
    if random_init and arch is None:
        raise UserError("--random-init needs --arch alexnet|monogan")
    if not several and ckpts and arch is not None:
        raise UserError("give either --ckpt or --arch with --random-init, not both")
    for ckpt in ckpts:
        if not ckpt.is_file():
            raise UserError(f"--ckpt file not found: {ckpt}" if not ckpt.exists() else f"--ckpt must be a file: {ckpt}")
    return ckpts


def _check_output(out: Path) -> None:
    if not out.parent.is_dir():
        raise UserError(f"-o {out}: no such directory {out.parent}")
    if out.suffix.lower() != ".png":
        raise UserError(f"-o {out}: the picture is written as PNG; name it *.png")


def _caption(ckpt: Path | None, source) -> str:
    if ckpt is None:
        return f"random {source.arch}"
    name = ckpt.parent.name if ckpt.name == "checkpoint.pt" else ckpt.stem
    return f"{name} ({source.arch}, {source.checkpoint['method']})"


def _load(ckpt: Path | None, arch: str | None, seed: int, device_name: str):
    from mono.learning.device import choose_device
    from mono.probes.sources import load_source
    from mono.probes.viz_images import frozen_trunk

    source = load_source(ckpt, arch, {}, seed)
    trunk, normalize = frozen_trunk(source, choose_device(device_name))
    return source, trunk, normalize


@cli.command()
@click.option("--ckpt", type=click.Path(path_type=Path), metavar="PATH", help=CKPT_HELP)
@_trunk_options
@click.option("--layer", required=True, help="Block to look into, e.g. conv3.")
@click.option("--channels", required=True, metavar="C,C,...", help="Channels of --layer, e.g. 0,5,9.")
@click.option("--size", type=click.IntRange(min=8), help="Side of the rendered images [default: the trunk's input].")
@click.option("--steps", type=click.IntRange(min=1), default=512, show_default=True, help="Adam steps (Lucid's 512).")
@click.option(
    "--lr", type=click.FloatRange(min=0, min_open=True), default=0.05, show_default=True, help="Adam's learning rate."
)
@click.option(
    "--tile", type=click.IntRange(min=16), default=128, show_default=True, metavar="PX", help="Pixels per image shown."
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    metavar="FILE.png",
    help="Picture to write; the activations go to the same name with .json.",
)
def maximize(ckpt, arch, random_init, seed, device, quiet, layer, channels, size, steps, lr, tile, out) -> None:
    """Render an input that maximises each channel's mean activation (the paper's Figure 5, left).

    Lucid's recipe (the paper used Lucid): a Fourier-space, colour-decorrelated image parameterisation,
    random padding, jitter, scaling and rotation at every step, Adam with learning rate 0.05. One image per
    channel, side by side, each labelled with its layer and channel; the .json beside the PNG holds every
    channel's mean activation before and after.

    \b
    Examples:
      mono-viz maximize --ckpt runs/monogan-B/checkpoint.pt --layer conv3 --channels 0,5,9 -o max.png
      mono-viz maximize --arch alexnet --random-init --layer conv5 --channels 1,2 --steps 256 -o random.png
    """
    (ckpt,) = _check_sources((ckpt,) if ckpt else (), arch, random_init) or (None,)
    _check_output(out)
    from mono.probes.viz_images import (
        check_channels,
        check_layer,
        labelled_sheet,
        parse_channels,
        save_json,
        save_png,
        to_uint8,
    )
    from mono.probes.viz_maximize import maximize_channels

    wanted = parse_channels(channels)
    source, trunk, normalize = _load(ckpt, arch, seed, device)
    check_channels(trunk, check_layer(trunk, layer), wanted)
    size = size or trunk.input_size
    images, activations = maximize_channels(
        trunk, normalize, layer, wanted, size, steps=steps, lr=lr, seed=seed, progress=not quiet
    )
    tiles = [(f"{layer} ch {c}", image) for c, image in zip(wanted, to_uint8(images))]
    save_png(out, labelled_sheet([(f"{_caption(ckpt, source)}: activation maximisation", tiles)], tile))
    save_json(
        out.with_suffix(".json"),
        {
            "checkpoint": source.checkpoint
            and {"path": source.checkpoint["path"], "sha256": source.checkpoint["sha256"]},
            "arch": source.arch,
            "layer": layer,
            "channels": wanted,
            "size": size,
            "steps": steps,
            "lr": lr,
            "seed": seed,
            "mean_activation": {
                str(c): {"before": b, "after": a}
                for c, b, a in zip(wanted, activations["before"], activations["after"])
            },
        },
    )
    click.echo(
        f"{out}: {layer} channels {', '.join(map(str, wanted))}, mean activation "
        + ", ".join(f"{b:.3g} -> {a:.3g}" for b, a in zip(activations["before"], activations["after"]))
    )


@cli.command()
@click.option(
    "--ckpt",
    type=click.Path(path_type=Path),
    multiple=True,
    metavar="PATH",
    help="mono checkpoint whose trunk gives the features (the file, or the run directory holding checkpoint.pt); "
    "repeat it to compare trunks side by side.",
)
@_trunk_options
@click.option("--content", type=click.Path(path_type=Path), required=True, metavar="IMG", help="Content image.")
@click.option("--style", type=click.Path(path_type=Path), required=True, metavar="IMG", help="Style image.")
@click.option(
    "--size",
    type=click.IntRange(min=16),
    default=224,
    show_default=True,
    help="Both images are resized to this shorter side.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Loss evaluations of L-BFGS (the PyTorch tutorial's 300).",
)
@click.option("--content-layer", metavar="BLOCK", help="[default: the trunk's second-to-last block]")
@click.option("--style-layers", metavar="B,B,...", help="[default: every block]")
@click.option(
    "--style-weight", type=click.FloatRange(min=0), default=1e6, show_default=True, help="Weight of the style loss."
)
@click.option(
    "--content-weight",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Weight of the content loss.",
)
@click.option(
    "--tv-weight",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Weight of a total-variation penalty against pixel noise (not in the tutorial).",
)
@click.option(
    "--tile",
    type=click.IntRange(min=16),
    default=224,
    show_default=True,
    metavar="PX",
    help="Pixels per image in a comparison sheet.",
)
@click.option(
    "--inputs/--no-inputs",
    default=True,
    show_default=True,
    help="Show the content and style images in a comparison sheet.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    metavar="FILE.png",
    help="The stylised image; with several trunks a labelled sheet (content, style, one result per "
    "trunk). The losses go to the same name with .json.",
)
def style(
    ckpt,
    arch,
    random_init,
    seed,
    device,
    quiet,
    content,
    style,
    size,
    steps,
    content_layer,
    style_layers,
    style_weight,
    content_weight,
    tv_weight,
    tile,
    inputs,
    out,
) -> None:
    """Transfer the style of one image onto another through a trunk's features (the paper's Figure 3).

    Gatys et al. (2016) as in PyTorch's tutorial, which the paper followed: starting from the content image,
    L-BFGS matches one layer's features to the content's and the Gram matrices of several layers to the
    style's (weights 1 and 10^6). Any trunk works: one trained on a single image, a supervised one, a random
    one (--arch ... --random-init, alone or beside checkpoints).

    \b
    Examples:
      mono-viz style --ckpt runs/monogan-B/checkpoint.pt --content photo.jpg --style painting.jpg -o out.png
      # Figure 3: single-image trunk vs supervised trunk vs random, side by side
      mono-viz style --ckpt runs/monogan-B/checkpoint.pt --ckpt runs/supervised/checkpoint.pt \\
          --arch monogan --random-init --content photo.jpg --style painting.jpg -o fig3.png
    """
    ckpt = _check_sources(ckpt, arch, random_init, several=True)
    _check_output(out)
    for path, role in ((content, "--content"), (style, "--style")):
        if not path.is_file():
            raise UserError(f"{role} image not found: {path}")
    import torchvision.transforms.functional as TF

    from mono.probes.viz_images import check_layer, labelled_sheet, load_image, save_json, save_png, to_uint8
    from mono.probes.viz_style import default_layers, style_transfer

    def tensor(path: Path, role: str):
        image = TF.resize(load_image(path, role), size)
        return TF.to_tensor(image).unsqueeze(0)

    content_image, style_image = tensor(content, "content"), tensor(style, "style")
    sources = [(path, *_load(path, None, seed, device)) for path in ckpt]
    if arch is not None:
        sources.append((None, *_load(None, arch, seed, device)))
    results, report = [], []
    for path, source, trunk, normalize in sources:
        default_content, default_style = default_layers(trunk)
        c_layer = check_layer(trunk, content_layer or default_content)
        s_layers = (
            [check_layer(trunk, name.strip()) for name in style_layers.split(",")] if style_layers else default_style
        )
        image, losses = style_transfer(
            trunk,
            normalize,
            content_image.to(normalize.device),
            style_image.to(normalize.device),
            c_layer,
            s_layers,
            steps=steps,
            style_weight=style_weight,
            content_weight=content_weight,
            tv_weight=tv_weight,
            progress=not quiet,
        )
        results.append((_caption(path, source), image))
        report.append(
            {
                "trunk": _caption(path, source),
                "checkpoint": source.checkpoint and source.checkpoint["path"],
                "content_layer": c_layer,
                "style_layers": s_layers,
                "losses": losses,
            }
        )
        click.echo(f"{_caption(path, source)}: loss {losses['initial']['loss']:.4g} -> {losses['final']['loss']:.4g}")
    if len(results) == 1:
        from PIL import Image

        picture = Image.fromarray(to_uint8(results[0][1])[0])
    else:
        tiles = [("content", to_uint8(content_image)[0]), ("style", to_uint8(style_image)[0])] if inputs else []
        tiles += [(caption, to_uint8(image)[0]) for caption, image in results]
        picture = labelled_sheet([(None, tiles)], tile)
    save_png(out, picture)
    save_json(
        out.with_suffix(".json"),
        {
            "content": str(content),
            "style": str(style),
            "size": size,
            "steps": steps,
            "style_weight": style_weight,
            "content_weight": content_weight,
            "tv_weight": tv_weight,
            "results": report,
        },
    )
    click.echo(f"wrote {out}")


@cli.command()
@click.option("--ckpt", type=click.Path(path_type=Path), metavar="PATH", help=CKPT_HELP)
@_trunk_options
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    required=True,
    metavar="DIR",
    help="Folder of images (an ImageFolder tree or flat), searched recursively.",
)
@click.option("--layer", required=True, help="Block to look into, e.g. conv3.")
@click.option("--channels", required=True, metavar="C,C,...", help="Channels of --layer, e.g. 0,5,9.")
@click.option("--top", type=click.IntRange(min=1), default=9, show_default=True, help="Images per channel.")
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True, help="Images per batch.")
@workers_option("Image-decoding worker processes.")
@click.option(
    "--tile", type=click.IntRange(min=16), default=64, show_default=True, metavar="PX", help="Pixels per image shown."
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    metavar="FILE.png",
    help="Picture to write: one row per channel; the paths and scores go to the same name with .json.",
)
def retrieve(
    ckpt, arch, random_init, seed, device, quiet, data, layer, channels, top, batch_size, workers, tile, out
) -> None:
    """Show the images of a folder that activate each channel most (the paper's Figure 5, right).

    Each image is scored by the channel's spatial maximum on the trunk's evaluation view of it (AlexNet: the
    224-px centre crop of the image resized to 256; monogan: the 32-px image). One row per channel, best
    first, each image captioned with its score; the .json beside the PNG lists paths and scores.

    \b
    Examples:
      mono-viz retrieve --ckpt runs/monogan-B/checkpoint.pt --data ../shared/datasets/cifar10/test \\
          --layer conv3 --channels 0,5,9 -o top9.png
      mono-viz retrieve --ckpt runs/rotnet-A/checkpoint.pt --data IMAGENET/val --layer conv5 --channels 7 -o r.png
    """
    (ckpt,) = _check_sources((ckpt,) if ckpt else (), arch, random_init) or (None,)
    _check_output(out)
    from mono.probes.viz_images import check_channels, check_layer, labelled_sheet, parse_channels, save_json, save_png
    from mono.probes.viz_retrieve import FolderImages, list_images, top_images

    wanted = parse_channels(channels)
    paths = list_images(data)
    source, trunk, normalize = _load(ckpt, arch, seed, device)
    check_channels(trunk, check_layer(trunk, layer), wanted)
    dataset = FolderImages(paths, trunk.input_size)
    best = top_images(
        trunk, normalize, dataset, layer, wanted, k=top, batch_size=batch_size, workers=workers, progress=not quiet
    )
    rows = [
        (f"{layer} channel {c}", [(f"{score:.3g}", dataset[i][0].permute(1, 2, 0).numpy()) for i, score in hits])
        for c, hits in best.items()
    ]
    save_png(out, labelled_sheet(rows, tile))
    save_json(
        out.with_suffix(".json"),
        {
            "checkpoint": source.checkpoint
            and {"path": source.checkpoint["path"], "sha256": source.checkpoint["sha256"]},
            "arch": source.arch,
            "layer": layer,
            "data": str(data.resolve()),
            "images": len(paths),
            "score": "spatial maximum of the channel",
            "top": {str(c): [{"path": str(paths[i]), "score": score} for i, score in hits] for c, hits in best.items()},
        },
    )
    click.echo(f"{out}: top {top} of {len(paths)} images for {layer} channels {', '.join(map(str, wanted))}")


def main(argv=None) -> None:
    run_cli(lambda: cli.main(argv, prog_name=PROG, standalone_mode=False), PROG)


if __name__ == "__main__":
    main()
