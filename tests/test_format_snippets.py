"""The reading snippets of shards/README.md run exactly as written, and give what they say."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys

import pytest
import webdataset as wds

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
    demo = base / "shards" / "demo"
    mono_gen("--preset", "cifar", "--samples", 400, "--shard-size", 50, "--format", "both", "--out", demo)
    mono_shards(["export", str(demo), "--to", "folder", str(base / "shards" / "demo-folder"), "-q"])
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
    assert tuple(result["images"].shape) == (128, 3, 32, 32) and str(result["images"].dtype) == "torch.uint8"
    assert tuple(result["labels"].shape) == (128, 1) and set(result["labels"].flatten().tolist()) == {0}
    assert sum(len(labels) for _, labels in result["loader"]) == 400, "drop_last=False: every sample"


def test_plain_torchvision(workdir, monkeypatch):
    result = run("With plain torchvision", workdir, monkeypatch)
    assert tuple(result["image"].shape) == (3, 32, 32) and result["label"] == 0
    assert result["dataset"].classes == ["0-grace_hopper"] and len(result["dataset"]) == 400


def test_timm(workdir, monkeypatch):
    result = run("With timm", workdir, monkeypatch)
    assert result["image"].size == (32, 32) and result["label"] == 0 and len(result["dataset"]) == 400


def test_huggingface(workdir, monkeypatch, huggingface):
    result = run("With Hugging Face datasets", workdir, monkeypatch)
    assert result["names"] == ["grace_hopper.jpg"] and result["sample"]["cls"] == 0
    assert result["sample"]["__key__"] == "000000000" and result["sample"]["jpg"].size == (32, 32)
    assert result["sample"]["json"]["index"] == 0 and len(result["dataset"]) == 400
    assert result["folder"].features["label"].names == ["grace_hopper.jpg"] and result["row"]["label"] == 0
    assert result["row"]["image"].size == (32, 32) and len(result["folder"]) == 400


def test_mono_reader(workdir, monkeypatch):
    result = run("With mono's reader", workdir, monkeypatch)
    assert result["dataset"].formats == ("ffcv", "webdataset") and len(result["loader"]) == 4
    assert tuple(result["images"].shape) == (100, 3, 32, 32) and result["indices"].max() < 400


# Under DDP: two processes (gloo) each run the README's snippet from the work directory, and the dataset card's
# from the dataset, then read one more epoch from the snippet's loader and record what they got.
DDP_RUNNER = """
import hashlib, json, os, sys
import torch.distributed as dist

dist.init_process_group("gloo")
seen = {}
for name, cwd, code in json.load(open(sys.argv[1])):
    os.chdir(cwd)
    namespace = {"__name__": "__snippet__"}
    exec(compile(code, name, "exec"), namespace)
    batches = [(images, labels) for images, labels in namespace["loader"]]
    seen[name] = {
        "batches": [namespace["batches"], len(batches)],
        "samples": [[hashlib.sha256(image.numpy().tobytes()).hexdigest(), int(label)]
                    for images, labels in batches for image, label in zip(images, labels)],
    }
json.dump(seen, open(sys.argv[2] % dist.get_rank(), "w"))
dist.destroy_process_group()
"""


def card_snippet(root, marker: str) -> str:
    """The python block of a dataset card that holds `marker`."""
    return next(
        code for code in re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(), re.S) if marker in code
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webdataset_under_ddp_reads_every_sample_once(workdir, tmp_path):
    demo = workdir / "shards" / "demo"
    snippets = [
        ["README", str(workdir), snippet("With webdataset under DDP")],
        ["card", str(demo), card_snippet(demo, "split_by_node")],
    ]
    (tmp_path / "snippets.json").write_text(json.dumps(snippets))
    (tmp_path / "runner.py").write_text(DDP_RUNNER)
    port = free_port()
    ranks = [
        subprocess.Popen(
            [
                sys.executable,
                str(tmp_path / "runner.py"),
                str(tmp_path / "snippets.json"),
                str(tmp_path / "rank%d.json"),
            ],
            env=dict(
                os.environ,
                RANK=str(r),
                LOCAL_RANK=str(r),
                WORLD_SIZE="2",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
                OMP_NUM_THREADS="1",
            ),
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    for rank in ranks:
        _, stderr = rank.communicate(timeout=300)
        assert rank.returncode == 0, stderr
        assert "do not split evenly" not in stderr
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    dataset = wds.WebDataset(str(demo / "train-{000000..000007}.tar"), shardshuffle=False).decode("torchrgb8")
    every = sorted(
        [hashlib.sha256(image.numpy().tobytes()).hexdigest(), int(label)]
        for image, label in dataset.to_tuple("jpg", "cls")
    )
    assert len(every) == 400
    for name in ("README", "card"):
        for rank in seen:
            planned, read = rank[name]["batches"]
            assert planned == read  # with_epoch: the batches of the rank's samples, no more (no repeat), no fewer
        samples = sorted(seen[0][name]["samples"] + seen[1][name]["samples"])
        assert samples == every, f"{name}: the epoch over both ranks is every sample once"
        assert 0 < len(seen[0][name]["samples"]) < 400
