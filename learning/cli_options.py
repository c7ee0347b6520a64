"""The options docs/cli.md makes common to the learning side's commands (mono-train, mono-probe, mono-viz,
mono-repro), written once: workers default to auto, -q/--quiet with the old --no-progress as a hidden alias, a
checkpoint given as its file or its run directory. The generator side has its own copy of what it needs (the
dependency rule)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click
from click.core import ParameterSource

CHECKPOINT = "checkpoint.pt"
MAX_LOADERS = 8  # more loaders rarely keep a model busier, and each holds a copy of the input pipeline


def auto_workers(cap: int = MAX_LOADERS) -> int:
    """-j/--workers auto: the CPU cores this process may use (its affinity mask), at most `cap`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cap, cores))


def checkpoint_path(path: Path | str) -> Path:
    """A --ckpt as given, a checkpoint file or the run directory holding checkpoint.pt: the file."""
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


# ---------------------------------------------------------------------------------------------------------------
# click: hidden aliases and the shared options


def _unless_aliased(ctx: click.Context, param: click.Parameter, value):
    """A canonical option left at its default keeps the value a hidden alias of it gave."""
    if ctx.get_parameter_source(param.name) in (ParameterSource.DEFAULT, None) and param.name in ctx.params:
        return ctx.params[param.name]
    return value


def canonical(*decls, **attrs) -> Callable:
    """click.option for an option that has hidden aliases (`alias`): an alias given on the command line sets it."""
    return click.option(*decls, callback=_unless_aliased, **attrs)


def alias(*decls, to: str, convert: Callable = lambda value: value, **attrs) -> Callable:
    """A hidden old spelling of option `to` (docs/cli.md's aliases): given, it sets `to` to convert(value);
    the command never sees it, so it is recorded under the canonical name (and counts as `to` given)."""

    def set_canonical(ctx: click.Context, param: click.Parameter, value):
        if ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
            converted = convert(value)
            if converted is not None:
                ctx.params[to] = converted
                ctx.set_parameter_source(to, ParameterSource.COMMANDLINE)
        return value

    return click.option(*decls, hidden=True, expose_value=False, callback=set_canonical, **attrs)


def workers_option(help: str, cap: int = MAX_LOADERS) -> Callable:
    """-j/--workers N, default auto (auto_workers(cap))."""
    return click.option(
        "-j",
        "--workers",
        type=click.IntRange(min=0),
        default=lambda: auto_workers(cap),
        show_default="auto",
        metavar="N",
        help=f"{help} auto: the CPU cores this process may use, at most {cap}.",
    )


def quiet_option(func: Callable) -> Callable:
    """-q/--quiet: no progress bars or per-step lines (never errors, warnings or the summary); the old
    --progress/--no-progress stay accepted, hidden."""
    func = alias("--progress", to="quiet", is_flag=True, convert=lambda on: False if on else None)(func)
    func = alias("--no-progress", to="quiet", is_flag=True, convert=lambda on: True if on else None)(func)
    return canonical(
        "-q", "--quiet", is_flag=True, help="No progress bars or per-step lines (errors and the summary stay)."
    )(func)


def device_option(func: Callable) -> Callable:
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        help="Where to compute: auto (CUDA if available), cpu, cuda or cuda:N.",
    )(func)
