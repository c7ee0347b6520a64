"""Shared test helpers: where the shared data lives, and how to run the command-line tools."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PAPER_IMAGES = SHARED / "images"
CIFAR10 = SHARED / "datasets" / "cifar10"


@pytest.fixture(scope="session")
def paper_images() -> Path:
    if not (PAPER_IMAGES / "animals.png").is_file():
        pytest.skip(f"the paper's images are not in {PAPER_IMAGES}")
    return PAPER_IMAGES


def run_tool(module: str, *args, env: dict | None = None, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m module args...` as a user would, capturing its output."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True, text=True, env=full_env, timeout=timeout, **kwargs,
    )  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess, prog: str, *fragments: str) -> None:
    """A user mistake: non-zero exit, exactly one line on stderr naming the problem, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), lines[0]


@pytest.fixture(scope="session")
def probe_cifar10() -> Path:
    """The CIFAR-10 ImageFolder copy beside the repository (../shared/datasets/cifar10), or skip."""
    if not (CIFAR10 / "train").is_dir() or not (CIFAR10 / "test").is_dir():
        pytest.skip(f"CIFAR-10 copy not found at {CIFAR10}")
    return CIFAR10


@pytest.fixture(scope="session")
def probe_cli():
    """Run ``python -m probes.cli ARGS`` in a subprocess with the repository on PYTHONPATH."""

    def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_tool("probes.cli", *args, env={"TQDM_DISABLE": "1"}, timeout=timeout, cwd=REPO)

    return run


def invoke_viz(*args):
    """Run ``mono-viz ARGS`` in this process (click's test runner): quicker than a subprocess, same one-line
    error handling, for checks that need no fresh interpreter."""
    from click.testing import CliRunner

    from probes.viz_cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="mono-viz")


def assert_one_line_viz_error(result, *fragments: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("mono-viz: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
