"""The tests' fixtures: the data they make for themselves, an unwritable directory, the probe command.

The suite needs nothing outside the repository: source images and a labelled image folder are made once per
session (tests/synthetic.py), and a skipped test fails the session (tests/no_skips.py). Helpers that tests
import are in tests/helpers.py.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import REPO, run_tool
from synthetic import write_labelled_folder, write_sources

pytest_plugins = ["no_skips"]


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


@pytest.fixture(scope="session")
def probe_cli():
    """Run ``python -m mono.probes.cli ARGS`` in a subprocess."""

    def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_tool("mono.probes.cli", *args, env={"TQDM_DISABLE": "1"}, timeout=timeout, cwd=REPO)

    return run
