"""learning.errors: user mistakes become one line and exit code 2; programming errors still raise."""

import click
import pytest
from click.testing import CliRunner

from learning.errors import OneLineErrorGroup, UserError, reports_user_errors


@click.group(cls=OneLineErrorGroup)
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


def _invoke(*args: str, prog: str = "mono-train"):
    return CliRunner().invoke(tool, list(args), prog_name=prog)


def test_user_error_is_one_line_with_the_program_name():
    result = _invoke("act", "user")
    assert result.exit_code == 2
    assert result.stderr == "mono-train: error: the frobnicator is missing\n"


def test_missing_file_is_a_user_error():
    result = _invoke("act", "file", prog="mono-probe")
    assert result.exit_code == 2
    assert result.stderr == "mono-probe: error: No such file or directory: /nonexistent/dir/file.txt\n"


def test_usage_errors_are_one_line_too():
    result = _invoke("act", "user", "--count", "many")
    assert result.exit_code == 2
    assert result.stderr.startswith("mono-train: error: Invalid value for '--count'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_programming_errors_are_not_swallowed():
    for kind, exc in (("bug", RuntimeError), ("oserror", OSError)):
        result = _invoke("act", kind)
        assert isinstance(result.exception, exc) and result.exit_code == 1


def test_success_and_help_exit_normally():
    assert _invoke("act", "fine", "--count", "3").output == "ok 3\n"
    assert _invoke("--help").exit_code == 0


def test_decorator_for_a_single_command():
    @click.command()
    @reports_user_errors
    def single() -> None:
        raise UserError("bad input")

    result = CliRunner().invoke(single, [], prog_name="mono-gen")
    assert result.exit_code == 2
    assert result.stderr == "mono-gen: error: bad input\n"


def test_user_error_is_a_value_error():
    with pytest.raises(ValueError):
        raise UserError("x")
