"""Command-line options every trainer shares, and one-line errors for them (learning.cli_errors)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from learning.cli_errors import run_cli
from learning.errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (`prog: error: ...`, exit 2), like the other mono tools."""

    def error(self, message: str):  # noqa: D401 - argparse's name
        self.exit(2, f"{self.prog}: error: {message}\n")


def trainer_parser(
    prog: str,
    description: str,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    workers: int = 8,
    seed: int = 0,
    examples: str = "",
) -> ArgumentParser:
    """The options common to every trainer, with the method's own defaults."""
    parser = ArgumentParser(
        prog=prog, description=description, epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    data = parser.add_argument_group("data and run")
    data.add_argument("--data", required=True, help="dataset directory, URL or shard pattern (see shards/README.md)")
    data.add_argument("--out", required=True, type=Path, help="run directory: checkpoint.pt, metrics.csv, tensorboard/")
    data.add_argument(
        "--format",
        choices=["ffcv", "webdataset", "folder"],
        default=None,
        help="on-disk format to read (default: the fastest present)",
    )
    data.add_argument(
        "--workers", type=int, default=workers, help=f"data loading workers per process (default {workers})"
    )
    data.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    data.add_argument(
        "--seed", type=int, default=seed, help=f"seed for initialisation, data order and augmentation (default {seed})"
    )
    data.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto", help="default: CUDA when available")
    data.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="also keep checkpoint-epochNNNN.pt every N epochs (default: only the latest)",
    )
    data.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        metavar="N",
        help="stop each epoch after N batches (quick checks and benchmarks)",
    )
    data.add_argument("--quiet", action="store_true", help="no progress bars")
    data.add_argument(
        "--record-samples", type=Path, default=None, help=argparse.SUPPRESS
    )  # tests: indices seen per rank
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=int, default=epochs, help=f"default {epochs}")
    optim.add_argument("--batch-size", type=int, default=batch_size, help=f"per process (default {batch_size})")
    optim.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {lr})")
    return parser


def check_common(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.lr <= 0:
        raise UserError(f"--lr must be positive, got {args.lr}")
    if args.workers < 0 or args.seed < 0 or args.save_every < 0:
        raise UserError("--workers, --seed and --save-every must not be negative")
    if args.steps_per_epoch is not None and args.steps_per_epoch < 1:
        raise UserError("--steps-per-epoch must be at least 1")


def run_trainer(
    get_args_parser: Callable[[], argparse.ArgumentParser],
    train: Callable[[argparse.Namespace], None],
    argv: Sequence[str] | None,
) -> None:
    """A trainer's main: parse its options, train, and always leave the process group."""
    from .distributed import shutdown

    args = get_args_parser().parse_args(argv)
    try:
        train(args)
    finally:
        shutdown()


def run_main(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None, prog: str) -> None:
    """Run a trainer's main with mono's one-line errors (learning.cli_errors): user mistakes and file-system
    errors that name a path (an unwritable --out, a full disk while saving a checkpoint) are one line, exit 2."""
    run_cli(
        lambda: main(argv), prog, interrupted="interrupted; rerun with --resume to continue from the last checkpoint"
    )
