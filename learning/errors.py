"""User-facing errors for mono's command-line tools.

A mistake the user can fix (a missing file, a foreign checkpoint, an option that does not fit) must end the
program with one readable line, ``<prog>: error: <what went wrong>``, on stderr and exit code 2, never with a
traceback. Library code raises :class:`UserError`; the command-line layer turns it (and file-system errors
that name a path, such as a missing file) into that line. Programming errors still raise normally.

Two ways to get that behaviour in a click program:

* ``@click.group(cls=OneLineErrorGroup)`` for a command group: user errors raised by any subcommand, and
  click's own usage errors, become one line;
* ``@reports_user_errors`` on a single command's callback.

The program name is read from the click context, so the same code serves ``mono-probe`` and ``mono-train``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

__all__ = ["EXIT_USER_ERROR", "OneLineErrorGroup", "UserError", "fail", "reports_user_errors"]

EXIT_USER_ERROR = 2
"""Exit code for user mistakes, the same code click uses for usage errors."""

EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


class UserError(ValueError):
    """A mistake the user can fix; its message is shown as one line, without a traceback."""


def _program_name(fallback: str | None = None) -> str:
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().info_name:
        return ctx.find_root().info_name
    return fallback or os.path.basename(sys.argv[0]) or "mono"


def _one_line(message: str) -> str:
    """Collapse a message to its first non-empty line (messages should already be one line)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def describe_os_error(err: OSError) -> str | None:
    """One line for a file-system error that names a path (the user's to fix), else None."""
    if err.filename is None:
        return None
    reason = err.strerror or type(err).__name__
    target = f"{err.filename} -> {err.filename2}" if err.filename2 else str(err.filename)
    return f"{reason}: {target}"


def fail(message: str, *, code: int = EXIT_USER_ERROR, prog: str | None = None) -> NoReturn:
    """Print ``<prog>: error: <message>`` on stderr and exit with ``code``."""
    click.echo(f"{prog or _program_name()}: error: {_one_line(message)}", err=True)
    sys.exit(code)


def _report(exc: BaseException, prog: str | None = None) -> NoReturn | None:
    """Exit with one line if ``exc`` is a user mistake; return None to let the caller re-raise it."""
    if isinstance(exc, UserError):
        fail(str(exc), prog=prog)
    if isinstance(exc, OSError):
        message = describe_os_error(exc)
        if message is not None:
            fail(message, prog=prog)
    return None


def reports_user_errors(func: F) -> F:
    """Decorate a click callback so that user errors end the program with one line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (UserError, OSError) as exc:
            _report(exc)
            raise

    return wrapper  # type: ignore[return-value]


class OneLineErrorGroup(click.Group):
    """A click group whose user mistakes, click's usage errors included, end in one line on stderr.

    ``--help`` and normal exits behave as usual; Ctrl-C prints ``<prog>: interrupted`` and exits 130.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (UserError, OSError) as exc:
            _report(exc)
            raise

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        prog = prog_name or os.path.basename(sys.argv[0])
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            ctx_prog = exc.ctx.find_root().info_name if getattr(exc, "ctx", None) else None
            fail(exc.format_message(), code=exc.exit_code, prog=ctx_prog or prog)
        except click.Abort:
            fail("interrupted", code=EXIT_INTERRUPTED, prog=prog)
        except (UserError, OSError) as exc:  # raised while parsing, e.g. by an option callback
            _report(exc, prog=prog)
            raise
        sys.exit(rv if isinstance(rv, int) else 0)
