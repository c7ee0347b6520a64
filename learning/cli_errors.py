"""One-line errors for the learning side's commands: mono-train, mono-probe and mono-repro.

A mistake the user can fix ends the program with one readable line, ``<prog>: error: <what went wrong>``, on
stderr and exit status 2, never with a traceback. Library code raises UserError (errors.py); `run_cli` turns it,
click's usage errors and file-system errors that name a path (a missing file, an unwritable directory, a full
disk) into that line. Programming errors still raise. The generator side has its own (generator/cli_errors.py),
as the two sides may not import each other.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from .errors import UserError

__all__ = ["EXIT_INTERRUPTED", "EXIT_USER_ERROR", "describe_os_error", "run_cli"]

EXIT_USER_ERROR = 2
"""Exit code for user mistakes, the same code click and argparse use for usage errors."""

EXIT_INTERRUPTED = 130


def run_cli(main: Callable[[], Any], prog: str, interrupted: str = "interrupted") -> None:
    """Call `main()` with mono's error convention: what the user can fix is one line and exit status 2;
    Ctrl-C prints `<prog>: <interrupted>` and exits 130.

    `main` runs an argparse program, or a click command as ``command.main(argv, prog_name=prog,
    standalone_mode=False)``, so that click's own errors come here too.
    """
    try:
        main()
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        print(f"{prog}: {interrupted}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        _fail(prog, exc.format_message(), exc.exit_code)
    except UserError as exc:
        _fail(prog, str(exc))
    except OSError as exc:
        message = describe_os_error(exc)
        if message is None:  # no path named: not the user's to fix
            raise
        _fail(prog, message)


def describe_os_error(err: OSError) -> str | None:
    """One line for a file-system error that names a path (the user's to fix), else None."""
    if err.filename is None:
        return None
    reason = err.strerror or type(err).__name__
    target = f"{err.filename} -> {err.filename2}" if err.filename2 else str(err.filename)
    return f"{reason}: {target}"


def _fail(prog: str, message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]  # messages should be one line
    print(f"{prog}: error: {lines[0] if lines else 'unknown error'}", file=sys.stderr)
    sys.exit(code)
