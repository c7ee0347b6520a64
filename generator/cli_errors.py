"""One-line errors for the generator's commands (mono-gen, mono-shards): what the user can fix is reported as
`prog: error: message` with exit status 2, never as a traceback. Library code raises UserError (errors.py)."""

from __future__ import annotations

import signal
import sys

import click

from .errors import UserError


def run_cli(command: click.Command, prog: str, args=None) -> None:
    """Run a click command with one-line errors: `prog: error: message`, exit status 2."""

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        command.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo(f"{prog}: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"{prog}: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except UserError as exc:
        click.echo(f"{prog}: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # the file system refused a path the user gave (an unwritable output, a full disk)
        if exc.filename is None:
            raise
        click.echo(f"{prog}: error: {exc.filename}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted; complete shards are kept, run the same command again to resume", err=True)
        sys.exit(130)
