"""Shared fixtures of the probe tests (names start with ``probe_``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CIFAR10_COPY = REPO_ROOT.parent / "shared" / "datasets" / "cifar10"


@pytest.fixture(scope="session")
def probe_cifar10() -> Path:
    """The CIFAR-10 ImageFolder copy beside the repository (../shared/datasets/cifar10), or skip."""
    if not (CIFAR10_COPY / "train").is_dir() or not (CIFAR10_COPY / "test").is_dir():
        pytest.skip(f"CIFAR-10 copy not found at {CIFAR10_COPY}")
    return CIFAR10_COPY


@pytest.fixture(scope="session")
def probe_cli():
    """Run ``python -m probes.cli ARGS`` in a subprocess with the repository on PYTHONPATH."""

    def run(*args: str | os.PathLike, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TQDM_DISABLE": "1"}
        return subprocess.run([sys.executable, "-m", "probes.cli", *map(str, args)], capture_output=True,
                              text=True, env=env, cwd=REPO_ROOT, timeout=timeout)

    return run
