"""Whole datasets: byte-identical whatever the workers or shard split, resumable, readable, verifiable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from helpers import assert_one_line_error, mono_gen, run_tool, shard_bytes
from mono.generator.config import default_shard_size

SMALL = ["--samples", 600, "--size", 32, "--shard-size", 100]


@pytest.fixture(scope="module")
def reference(source_image, tmp_path_factory):
    """A 600×225 source image, 600 samples in 6 shards, made by one worker in one go."""
    out = tmp_path_factory.mktemp("ref") / "b"
    mono_gen("--image", source_image, *SMALL, "--out", out)
    return out


def test_same_bytes_whatever_the_number_of_workers(reference, source_image, tmp_path):
    out = tmp_path / "two-workers"
    mono_gen("--image", source_image, *SMALL, "--workers", 2, "--out", out)
    assert shard_bytes(out) == shard_bytes(reference)
    assert len(shard_bytes(out)) == 6
    assert (
        json.loads((out / "manifest.json").read_text())["shards"]
        == json.loads((reference / "manifest.json").read_text())["shards"]
    )


def test_shard_ranges_made_apart_give_the_same_dataset(reference, source_image, tmp_path):
    # Two "machines", each with its own directory, then merged as a user would copy them together.
    image = source_image
    for part, shards in (("a", "0:2"), ("b", "2:6")):
        mono_gen("--image", image, *SMALL, "--shards", shards, "--out", tmp_path / part)
        assert not (tmp_path / part / "manifest.json").exists()  # incomplete on its own
    merged = tmp_path / "merged"
    shutil.copytree(tmp_path / "a", merged)
    for shard in (tmp_path / "b").glob("train-*.tar"):
        shutil.copy(shard, merged / shard.name)
    mono_gen("--image", image, *SMALL, "--out", merged)  # nothing left to render: finalises
    assert shard_bytes(merged) == shard_bytes(reference)
    assert not (merged / ".mono-gen").exists()
    assert run_tool("mono.generator.shards_cli", "verify", "-q", merged).returncode == 0


def test_an_interrupted_run_resumes_to_identical_bytes(source_image, tmp_path):
    args = ["--image", source_image, "--samples", 6000, "--size", 64, "--shard-size", 200]
    reference = tmp_path / "ref"
    mono_gen(*args, "--out", reference)

    out = tmp_path / "killed"
    env = dict(os.environ)
    command = [
        sys.executable,
        "-m",
        "mono.generator.cli",
        *map(str, args),
        "--workers",
        "1",
        "--quiet",
        "--out",
        str(out),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(out.glob("train-*.tar"))) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # no chance to clean up: a half-written shard stays behind
    process.wait()
    present = len(list(out.glob("train-*.tar")))
    assert 3 <= present < 30, "the run should have been killed mid-way"
    assert not (out / "manifest.json").exists()

    mono_gen(*args, "--out", out)
    assert shard_bytes(out) == shard_bytes(reference)
    assert not (out / ".mono-gen").exists()


def test_a_different_configuration_is_refused_in_the_same_directory(reference, source_image, tmp_path):
    result = run_tool(
        "mono.generator.cli", "--image", source_image, *SMALL, "--seed", 1, "--workers", 1, "--out", reference
    )
    assert_one_line_error(result, "mono-gen", "different configuration")
    # An unrelated non-empty directory is not used either.
    (tmp_path / "notes.txt").write_text("mine")
    result = run_tool("mono.generator.cli", "--image", source_image, *SMALL, "--out", tmp_path)
    assert_one_line_error(result, "mono-gen", "not empty")
    # The same configuration again is fine: nothing to do.
    result = run_tool("mono.generator.cli", "--image", source_image, *SMALL, "--workers", 1, "--out", reference)
    assert result.returncode == 0 and "already complete" in result.stderr


def test_plain_webdataset_reads_the_shards(reference):
    manifest = json.loads((reference / "manifest.json").read_text())
    pattern = str(reference / manifest["shard_pattern"])
    dataset = wds.WebDataset(pattern, shardshuffle=False).decode("pil").to_tuple("__key__", "jpg", "cls", "json")
    keys = []
    for key, image, label, params in dataset:
        keys.append(key)
        assert image.size == (32, 32) and image.mode == "RGB"
        assert label == 0 and params["source"] == 0 and params["index"] == int(key)
        assert set(params) >= {"angle", "crop", "flip", "brightness", "contrast", "saturation", "hue"}
    assert keys == [f"{i:09d}" for i in range(600)]


def test_manifest_and_card_describe_the_dataset(reference):
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["num_samples"] == 600 and manifest["image_size"] == 32 and manifest["num_classes"] == 1
    assert manifest["sources"][0]["name"] == "stripes.png" and manifest["sources"][0]["samples"] == 600
    assert manifest["config"]["protocol"]["max_angle"] == 35.0 and manifest["config"]["protocol"]["beta"] == 0.001
    assert [s["count"] for s in manifest["shards"]] == [100] * 6
    card = (reference / "README.md").read_text()
    assert manifest["command"] in card and "import webdataset" in card
    for shard in manifest["shards"]:
        assert f"{shard['sha256']}  {shard['name']}" in card


def test_verify_catches_a_damaged_shard(reference, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(reference, copy)
    assert run_tool("mono.generator.shards_cli", "verify", copy).returncode == 0
    shard = copy / "train-000003.tar"
    data = bytearray(shard.read_bytes())
    data[5000] ^= 0xFF
    shard.write_bytes(bytes(data))
    result = run_tool("mono.generator.shards_cli", "verify", "-q", copy)
    assert result.returncode == 1 and "train-000003.tar" in result.stderr and "SHA-256" in result.stderr
    (copy / "train-000001.tar").unlink()
    result = run_tool("mono.generator.shards_cli", "verify", "-q", copy)
    assert result.returncode == 1 and "train-000001.tar: missing" in result.stderr


def test_info_and_preview(reference, tmp_path):
    result = run_tool("mono.generator.shards_cli", "info", reference)
    assert result.returncode == 0 and "600 of 32×32 px" in result.stdout and "stripes.png" in result.stdout
    grid = tmp_path / "grid.png"
    result = run_tool("mono.generator.shards_cli", "preview", reference, "-o", grid, "-n", 12, "--columns", 4)
    assert result.returncode == 0, result.stderr
    assert Image.open(grid).size == (4 * 98 + 2, 3 * 98 + 2), "32 px samples drawn at 96 px by default"
    result = run_tool(
        "mono.generator.shards_cli", "preview", reference, "-o", grid, "-n", 12, "--columns", 4, "--tile", 32
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(grid).size == (4 * 34 + 2, 3 * 34 + 2)
    result = run_tool("mono.generator.shards_cli", "verify", tmp_path / "nothing-here")
    assert_one_line_error(result, "mono-shards", "no such dataset directory")


def test_several_sources_share_the_samples_evenly(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    colours = {"a.png": (200, 30, 30), "b.jpg": (30, 200, 30), "sub/c.png": (30, 30, 200), "sub/d.png": (90, 90, 90)}
    for name, colour in colours.items():
        Image.new("RGB", (120, 90), colour).save(folder / name)
    out = tmp_path / "out"
    mono_gen(
        "--source", folder, "--n", 3, "--seed", 4, "--samples", 10, "--size", 16, "--augment", "none", "--out", out
    )
    manifest = json.loads((out / "manifest.json").read_text())
    chosen = [s["name"] for s in manifest["sources"]]
    assert len(chosen) == 3 and set(chosen) <= set(colours)
    assert [s["samples"] for s in manifest["sources"]] == [4, 3, 3]
    labels = [label for (label,) in wds.WebDataset(str(out / "train-000000.tar"), shardshuffle=False).to_tuple("cls")]
    assert np.bincount([int(x) for x in labels]).tolist() == [4, 3, 3]
    # Each label's image has its source's colour: labels and files agree.
    for image, label in (
        wds.WebDataset(str(out / "train-000000.tar"), shardshuffle=False).decode("rgb8").to_tuple("jpg", "cls")
    ):
        expected = colours[chosen[int(label)]]
        assert np.abs(image.reshape(-1, 3).mean(0) - expected).max() < 4
    # Another seed chooses differently (all 4 choose-3 subsets are possible, so try a few seeds).
    choices = set()
    for seed in range(6):
        mono_gen(
            "--source", folder, "--n", 3, "--seed", seed, "--samples", 3, "--size", 16, "--out", tmp_path / f"s{seed}"
        )
        choices.add(
            tuple(s["name"] for s in json.loads((tmp_path / f"s{seed}" / "manifest.json").read_text())["sources"])
        )
    assert len(choices) > 1


def test_augment_none_gives_copies_of_the_whole_image(source_image, tmp_path):
    out = tmp_path / "none"
    mono_gen("--image", source_image, "--augment", "none", "--samples", 5, "--size", 64, "--out", out)
    images = [
        np.asarray(i, np.float64)
        for (i,) in wds.WebDataset(str(out / "train-000000.tar"), shardshuffle=False).decode("rgb8").to_tuple("jpg")
    ]
    assert all(np.array_equal(images[0], im) for im in images[1:])
    source = Image.open(source_image).convert("RGB")
    whole = np.asarray(source.resize((64, 64), Image.BOX), np.float64)
    aliased = np.asarray(source.resize((64, 64), Image.NEAREST), np.float64)
    error = np.abs(images[0] - whole).mean()  # includes JPEG's own error, about 8 on this busy image
    assert error < 15 and error < 0.6 * np.abs(aliased - whole).mean()


@pytest.mark.parametrize(
    ("samples", "target", "size", "count"),
    [
        (50_000, 1_000, 782, 64),  # --preset cifar (50 shards of 1,000 before)
        (1_281_167, 5_000, 5_005, 256),  # --preset imagenet (257 shards of 5,000 before)
        (10_000, 1_000, 157, 64),
        (4_031, 1_000, 63, 64),
        (100_000_000, 5_000, 5_123, 19_520),  # the multiple of 64 nearest d/target that can be made
        (300, 1_000, 1_000, 1),  # too small for 64 shards: the preset's size
    ],
)
def test_default_shard_counts_are_multiples_of_64(samples, target, size, count):
    assert default_shard_size(samples, target) == size
    assert -(-samples // size) == count


def test_the_default_shard_size_is_in_the_command_and_info(source_image, tmp_path):
    out = tmp_path / "default"
    mono_gen("--image", source_image, "--preset", "cifar", "--samples", 4100, "--size", 8, "--out", out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["shards"]) == 64 and manifest["config"]["output"]["shard_size"] == 65
    assert "--shard-size 65" in manifest["command"]  # a later default cannot change what the command makes
    info = run_tool("mono.generator.shards_cli", "info", out)
    assert "ranks × workers that split the 64 shards evenly: 1, 2, 4, 8, 16, 32, 64" in info.stdout


def test_embedded_default_image_needs_nothing_but_the_install(tmp_path):
    result = run_tool(
        "mono.generator.cli", "--preset", "cifar", "--samples", 50, "--workers", 1, "--out", tmp_path / "demo"
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert manifest["sources"][0]["origin"] == "embedded" and manifest["image_size"] == 32


def test_every_file_gets_the_permissions_of_the_umask(source_image, tmp_path):
    out = tmp_path / "group"
    result = run_tool(
        "mono.generator.cli",
        "--image",
        source_image,
        "--samples",
        40,
        "--size",
        16,
        "--shard-size",
        20,
        "--format",
        "both",
        "--workers",
        1,
        "-q",
        "--out",
        out,
        preexec_fn=lambda: os.umask(0o002),
    )  # a group-shared dataset
    assert result.returncode == 0, result.stderr
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    files = {"manifest.json", "README.md", "_info.json", "train.beton", "train-000000.tar", "train-000001.tar"}
    assert set(modes) == files
    assert set(modes.values()) == {0o664}, modes
    result = run_tool(
        "mono.generator.shards_cli",
        "export",
        out,
        "--to",
        "folder",
        tmp_path / "folder",
        "-q",
        preexec_fn=lambda: os.umask(0o002),
    )
    assert result.returncode == 0, result.stderr
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "folder").rglob("*") if p.is_file()} == {0o664}


def test_an_unwritable_preview_is_one_line(reference, unwritable_dir):
    result = run_tool("mono.generator.shards_cli", "preview", reference, "-o", unwritable_dir / "grid.png")
    assert_one_line_error(result, "mono-shards", str(unwritable_dir / "grid.png"))
