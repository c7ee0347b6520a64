"""Shared test helpers: the data the tests make for themselves, and how to run the command-line tools.

The suite needs nothing outside the repository: source images and a labelled image folder
are made once per session (tests/synthetic.py), and a skipped test fails the session (tests/no_skips.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from synthetic import write_labelled_folder, write_sources

pytest_plugins = ["no_skips"]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def source_images(tmp_path_factory) -> Path:
    """A folder of three textured source images (stripes.png, shapes.jpg, waves.png), made for the session."""
    return write_sources(tmp_path_factory.mktemp("sources"))


@pytest.fixture(scope="session")
def source_image(source_images) -> Path:
    """One source image, 600×225 px."""
    return source_images / "stripes.png"


@pytest.fixture(scope="session")
def labelled_images(tmp_path_factory) -> Path:
    """A small labelled ImageFolder, train/ and test/, of 4 learnable classes of 32 px JPEGs (CIFAR's layout)."""
    return write_labelled_folder(tmp_path_factory.mktemp("labelled"))


@pytest.fixture
def unwritable_dir(tmp_path) -> Path:
    """A directory in which no file can be created: a read-only one, or for root (whom permissions do not
    stop) sysfs, which refuses new files to everyone."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    folder = Path("/sys")
    try:
        fd, name = tempfile.mkstemp(dir=folder)
    except OSError:
        yield folder
        return
    os.close(fd)
    os.unlink(name)
    pytest.fail("no unwritable directory found for this test (running as root, and /sys accepts files)")


def run_tool(
    module: str, *args, env: dict | None = None, timeout: float = 300, **kwargs
) -> subprocess.CompletedProcess:
    """Run `python -m module args...` as a user would, capturing its output: `module` is a mono.* name, imported
    from the installed package (pip install -e .), not from the repository's folders."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        **kwargs,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, prog: str, *fragments: str) -> None:
    """A user mistake: non-zero exit, exactly one line on stderr naming the problem, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), lines[0]


@pytest.fixture(scope="session")
def probe_cli():
    """Run ``python -m mono.probes.cli ARGS`` in a subprocess."""

    def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_tool("mono.probes.cli", *args, env={"TQDM_DISABLE": "1"}, timeout=timeout, cwd=REPO)

    return run
