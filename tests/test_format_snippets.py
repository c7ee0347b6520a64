"""The reading snippets of shards/README.md run exactly as written, and give what they say."""

from __future__ import annotations

import re

import pytest

from helpers import REPO, mono_gen
from mono.generator.shards_cli import main as mono_shards

README = REPO / "shards" / "README.md"


def snippet(heading: str) -> str:
    """The first python block under a `### heading` of shards/README.md."""
    text = README.read_text()
    section = text.split(f"\n### {heading}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A directory holding shards/demo and shards/demo-folder, made as the README says."""
    base = tmp_path_factory.mktemp("snippets")
    mono_gen("--preset", "cifar", "--samples", 300, "--format", "both", "--out", base / "shards" / "demo")
    mono_shards(["export", str(base / "shards" / "demo"), "--to", "folder", str(base / "shards" / "demo-folder"), "-q"])
    return base


def run(heading: str, workdir, monkeypatch) -> dict:
    monkeypatch.chdir(workdir)
    namespace = {"__name__": "__snippet__"}
    exec(compile(snippet(heading), f"shards/README.md: {heading}", "exec"), namespace)
    return namespace


def test_plain_webdataset(workdir, monkeypatch):
    result = run("With plain webdataset", workdir, monkeypatch)
    assert result["image"].size == (32, 32) and result["label"] == 0


def test_plain_ffcv(workdir, monkeypatch):
    result = run("With plain ffcv", workdir, monkeypatch)
    assert tuple(result["images"].shape) == (100, 3, 32, 32) and str(result["images"].dtype) == "torch.uint8"
    assert tuple(result["labels"].shape) == (100, 1) and set(result["labels"].flatten().tolist()) == {0}


def test_plain_torchvision(workdir, monkeypatch):
    result = run("With plain torchvision", workdir, monkeypatch)
    assert tuple(result["image"].shape) == (3, 32, 32) and result["label"] == 0
    assert result["dataset"].classes == ["0-grace_hopper"] and len(result["dataset"]) == 300


def test_mono_reader(workdir, monkeypatch):
    result = run("With mono's reader", workdir, monkeypatch)
    assert result["dataset"].formats == ("ffcv", "webdataset") and len(result["loader"]) == 3
    assert tuple(result["images"].shape) == (100, 3, 32, 32) and result["indices"].max() < 300
