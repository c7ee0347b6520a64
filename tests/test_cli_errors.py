"""mono.learning.cli_errors: user mistakes become one line and exit code 2; programming errors still raise."""

import click
import pytest

from mono.learning.cli_errors import run_cli
from mono.learning.errors import UserError


@click.group()
def tool() -> None:
    """A stand-in for mono-train or mono-probe."""


@tool.command()
@click.argument("kind")
@click.option("--count", type=int, default=1)
def act(kind: str, count: int) -> None:
    if kind == "user":
        raise UserError("the frobnicator is missing\n(second line never shown)")
    if kind == "file":
        open("/nonexistent/dir/file.txt")
    if kind == "oserror":
        raise OSError("device is on fire")  # no file name: not the user's to fix
    if kind == "bug":
        raise RuntimeError("a bug")
    click.echo(f"ok {count}")


def _run(command: click.Command, args: list[str], prog: str) -> None:
    """The command as mono's entry points run it."""
    run_cli(lambda: command.main(args, prog_name=prog, standalone_mode=False), prog)


def _invoke(capsys, *args: str, prog: str = "mono-train", command: click.Command = tool) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a run of `command`."""
    code = 0
    try:
        _run(command, list(args), prog)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_user_error_is_one_line_with_the_program_name(capsys):
    code, _, err = _invoke(capsys, "act", "user")
    assert code == 2
    assert err == "mono-train: error: the frobnicator is missing\n"


def test_missing_file_is_a_user_error(capsys):
    code, _, err = _invoke(capsys, "act", "file", prog="mono-probe")
    assert code == 2
    assert err == "mono-probe: error: No such file or directory: /nonexistent/dir/file.txt\n"


def test_usage_errors_are_one_line_too(capsys):
    code, _, err = _invoke(capsys, "act", "user", "--count", "many")
    assert code == 2
    assert err.startswith("mono-train: error: Invalid value for '--count'")
    assert len(err.strip().splitlines()) == 1


def test_programming_errors_are_not_swallowed():
    for kind, exc in (("bug", RuntimeError), ("oserror", OSError)):
        with pytest.raises(exc):
            _run(tool, ["act", kind], "mono-train")


def test_success_and_help_exit_normally(capsys):
    assert _invoke(capsys, "act", "fine", "--count", "3")[1] == "ok 3\n"
    assert _invoke(capsys, "--help")[0] == 0


def test_a_single_command_too(capsys):
    @click.command()
    def single() -> None:
        raise UserError("bad input")

    code, _, err = _invoke(capsys, prog="mono-gen", command=single)
    assert code == 2
    assert err == "mono-gen: error: bad input\n"


def test_user_error_is_a_value_error():
    with pytest.raises(ValueError):
        raise UserError("x")
