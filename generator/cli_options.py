"""Hidden aliases for old option spellings (docs/cli.md), the generator side's copy of mono.learning.cli_options
(the two sides may not import each other)."""

from __future__ import annotations

from collections.abc import Callable

import click
from click.core import ParameterSource


def _unless_aliased(ctx: click.Context, param: click.Parameter, value):
    """A canonical option left at its default keeps the value a hidden alias of it gave."""
    if ctx.get_parameter_source(param.name) in (ParameterSource.DEFAULT, None) and param.name in ctx.params:
        return ctx.params[param.name]
    return value


def canonical(*decls, **attrs) -> Callable:
    """click.option for an option that has hidden aliases (`alias`): an alias given on the command line sets it."""
    return click.option(*decls, callback=_unless_aliased, **attrs)


def alias(*decls, to: str, **attrs) -> Callable:
    """A hidden old spelling of option `to`: given, it sets `to` (and counts as `to` given on the command line);
    the command never sees it, so the dataset records the canonical name."""

    def set_canonical(ctx: click.Context, param: click.Parameter, value):
        if ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
            ctx.params[to] = value
            ctx.set_parameter_source(to, ParameterSource.COMMANDLINE)
        return value

    return click.option(*decls, hidden=True, expose_value=False, callback=set_canonical, **attrs)
