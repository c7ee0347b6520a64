"""Generated datasets read by the code people already train with, through each library's public API only: timm's
`wds/` reader (through `_info.json`), Hugging Face `datasets` (through the card's front matter)."""

from __future__ import annotations

import json
import shlex

import pytest
import webdataset as wds

from helpers import mono_gen, run_tool
from mono.generator.card import SAMPLE_FIELDS
from mono.generator.shards_cli import main as mono_shards

SAMPLES, SHARD_SIZE = 96, 24  # 4 shards


@pytest.fixture(scope="module")
def three(source_images, tmp_path_factory):
    """A dataset of the three synthetic sources: labels 0, 1, 2 in turn."""
    out = tmp_path_factory.mktemp("consumers") / "three"
    mono_gen("--source", source_images, "--samples", SAMPLES, "--size", 32, "--shard-size", SHARD_SIZE, "--out", out)
    return out


def manifest_of(root):
    return json.loads((root / "manifest.json").read_text())


def test_timm_reads_every_sample_with_its_label(three):
    from timm.data import create_dataset

    dataset = create_dataset("wds/three", root=str(three), split="train")
    samples = list(dataset)
    assert len(samples) == SAMPLES
    assert [label for _, label in samples] == [i % 3 for i in range(SAMPLES)]  # sample i comes from source i mod 3
    assert {image.size for image, _ in samples} == {(32, 32)}


def test_the_card_gives_timms_command_line(three):
    card = (three / "README.md").read_text()
    line = next(line for line in card.splitlines() if line.startswith("python train.py"))
    words = shlex.split(line)
    options = dict(zip(words[2::2], words[3::2]))
    assert options == {
        "--dataset": "wds/three",
        "--data-dir": str(three.resolve()),
        "--train-split": "train",
        "--val-split": "",
        "--num-classes": "3",
        "--workers": "4",  # the 4 shards split evenly
    }


def test_verify_covers_timms_info(three, tmp_path):
    manifest = manifest_of(three)
    assert manifest["timm"]["name"] == "_info.json"
    info = json.loads((three / "_info.json").read_text())
    assert info["splits"]["train"]["filenames"] == [s["name"] for s in manifest["shards"]]
    assert info["splits"]["train"]["shard_lengths"] == [SHARD_SIZE] * 4
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in three.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / "_info.json").write_text((three / "_info.json").read_text().replace("96", "97"))
    result = run_tool("mono.generator.shards_cli", "verify", "-q", copy)
    assert result.returncode == 1 and "_info.json: SHA-256 differs from the manifest" in result.stderr
    (copy / "_info.json").unlink()
    result = run_tool("mono.generator.shards_cli", "verify", "-q", copy)
    assert result.returncode == 1 and "_info.json: missing" in result.stderr


def test_huggingface_reads_named_classes_and_the_parameters(three, huggingface):
    dataset = huggingface.load_dataset(str(three), split="train")
    names = [s["name"] for s in manifest_of(three)["sources"]]
    assert dataset.features["cls"] == huggingface.ClassLabel(names=names)
    assert list(dataset["cls"]) == [i % 3 for i in range(SAMPLES)]
    assert list(dataset["__key__"]) == [f"{i:09d}" for i in range(SAMPLES)]
    shards = wds.WebDataset(str(three / "train-{000000..000003}.tar"), shardshuffle=False).to_tuple("json")
    params = [json.loads(raw) for (raw,) in shards]
    assert [list(p) for p in params] == [list(SAMPLE_FIELDS)] * SAMPLES  # the fields the card declares
    assert list(dataset["json"]) == params
    assert dataset[0]["jpg"].size == (32, 32)


@pytest.mark.parametrize("layout", ["flat", "train"])
def test_huggingface_reads_an_exported_folder_with_named_classes(three, huggingface, tmp_path, layout):
    dest = tmp_path / "folder"
    mono_shards(["export", str(three), "--to", "folder", str(dest), "--layout", layout, "-q"])
    dataset = huggingface.load_dataset(str(dest), split="train")
    names = [s["name"] for s in manifest_of(three)["sources"]]
    assert dataset.features["label"] == huggingface.ClassLabel(names=names)
    assert sorted(dataset["index"]) == list(range(SAMPLES))
    assert all(label == index % 3 for label, index in zip(dataset["label"], dataset["index"]))
    assert set(dataset.column_names) == {"image", "label", *SAMPLE_FIELDS}
