"""FFCV output: train.beton holds the shards' exact JPEG bytes, is deterministic, resumes, and is verified."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import (
    SMALL,
    assert_one_line_error,
    beton_samples,
    make_dataset,
    run_tool,
    shard_bytes,
    shard_samples,
    without_ffcv,
)
from mono.generator.beton_format import BetonWriter


@pytest.fixture(scope="module")
def both(source_image, tmp_path_factory):
    """One source image, 300 samples of 32 px in 3 shards, and train.beton."""
    return make_dataset(tmp_path_factory.mktemp("ffcv") / "both", source_image)


def manifest_of(root):
    return json.loads((root / "manifest.json").read_text())


def test_sample_i_of_the_beton_is_sample_i_of_the_shards_byte_for_byte(both):
    shards = shard_samples(both)
    assert [index for index, _, _ in shards] == list(range(300))
    assert beton_samples(both / "train.beton") == [(label, jpeg) for _, label, jpeg in shards]
    manifest = manifest_of(both)
    record = manifest["ffcv"]
    data = (both / "train.beton").read_bytes()
    assert record["name"] == "train.beton" and record["fields"] == {"image": "jpeg", "label": "int"}
    assert record["bytes"] == len(data) and record["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["formats"] == ["webdataset", "ffcv"] and "--format both" in manifest["command"]
    assert f"{record['sha256']}  train.beton" in (both / "README.md").read_text()


def test_same_beton_whatever_the_workers_or_the_route_to_it(both, source_image, tmp_path):
    image = source_image
    expected = (both / "train.beton").read_bytes()

    alone = make_dataset(tmp_path / "alone", image, "--workers", 2, fmt="ffcv")
    assert (alone / "train.beton").read_bytes() == expected
    assert shard_bytes(alone) == {}, "with --format ffcv alone the shards are only an intermediate"
    assert manifest_of(alone)["formats"] == ["ffcv"] and "--format ffcv" in manifest_of(alone)["command"]

    added = make_dataset(tmp_path / "added", image, fmt="webdataset")
    shards = shard_bytes(added)
    assert not (added / "train.beton").exists() and manifest_of(added)["formats"] == ["webdataset"]
    make_dataset(added, image, fmt="ffcv")  # a later run adds the .beton and keeps the shards
    assert (added / "train.beton").read_bytes() == expected and shard_bytes(added) == shards == shard_bytes(both)

    exported = make_dataset(tmp_path / "exported", image, fmt="webdataset")
    result = run_tool("mono.generator.shards_cli", "export", exported, "--to", "ffcv", "-q")
    assert result.returncode == 0, result.stderr
    assert (exported / "train.beton").read_bytes() == expected

    manifests = [manifest_of(d) for d in (both, alone, added, exported)]
    assert len({m["config_sha256"] for m in manifests}) == 1, "the output format is not part of the configuration"
    assert all(m["ffcv"] == manifests[0]["ffcv"] and m["shards"] == manifests[0]["shards"] for m in manifests)
    assert not any(p.name.startswith(".") for d in (both, alone, added, exported) for p in d.iterdir())


def test_the_shards_of_an_ffcv_only_dataset_come_back_identical(both, source_image, tmp_path):
    alone = make_dataset(tmp_path / "alone", source_image, fmt="ffcv")
    make_dataset(alone, source_image, fmt="webdataset")
    assert shard_bytes(alone) == shard_bytes(both)
    assert manifest_of(alone)["formats"] == ["webdataset", "ffcv"]
    assert run_tool("mono.generator.shards_cli", "verify", "-q", alone).returncode == 0


def test_shards_rendered_again_must_be_the_ones_the_manifest_lists(source_image, tmp_path):
    image = source_image
    alone = make_dataset(tmp_path / "alone", image, fmt="ffcv")
    manifest = manifest_of(alone)
    manifest["shards"][1]["sha256"] = "0" * 64  # as if another mono-gen version had made the .beton
    (alone / "manifest.json").write_text(json.dumps(manifest))
    result = run_tool("mono.generator.cli", "--image", image, *SMALL, "--workers", 1, "-q", "--out", alone)
    assert_one_line_error(result, "mono-gen", "train-000001.tar", "different bytes")
    assert sorted(p.name for p in alone.iterdir()) == ["README.md", "manifest.json", "train.beton"], "left as it was"


def test_an_interrupted_beton_is_written_again(both, source_image, tmp_path, monkeypatch):
    image, out = source_image, tmp_path / "interrupted"
    add = BetonWriter.add

    def interrupt_midway(self, *args):
        if self.count == 150:
            raise KeyboardInterrupt
        add(self, *args)

    monkeypatch.setattr(BetonWriter, "add", interrupt_midway)
    with pytest.raises(AssertionError, match="exited with 130"):
        make_dataset(out, image)
    monkeypatch.undo()
    assert len(shard_bytes(out)) == 3, "complete shards are kept for the next run"
    assert not (out / "manifest.json").exists() and not (out / "train.beton").exists()
    assert not list(out.glob(".train.beton*")), "no partial .beton is left behind"

    (out / ".train.beton.x1y2z3.tmp").write_bytes(b"what a run killed with SIGKILL leaves")
    make_dataset(out, image)
    assert (out / "train.beton").read_bytes() == (both / "train.beton").read_bytes()
    assert not list(out.glob(".*")), "temporary files and run state are gone"


def test_verify_catches_a_damaged_or_missing_beton(both, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(both, copy)
    beton = copy / "train.beton"
    data = bytearray(beton.read_bytes())
    data[manifest_of(copy)["ffcv"]["page_size"] + 700] ^= 0x01  # one bit inside the first JPEG
    beton.write_bytes(bytes(data))
    result = run_tool("mono.generator.shards_cli", "verify", "-q", copy)
    assert result.returncode == 1 and "train.beton: SHA-256 differs" in result.stderr
    beton.unlink()
    result = run_tool("mono.generator.shards_cli", "verify", "-q", copy)
    assert result.returncode == 1 and "train.beton: missing" in result.stderr


def test_writing_ffcv_output_needs_no_ffcv(both, source_image, tmp_path):
    env = without_ffcv(tmp_path)
    blocked = subprocess.run([sys.executable, "-c", "import ffcv"], env={**os.environ, **env}, capture_output=True)
    assert blocked.returncode != 0, "the hook should make ffcv unimportable"
    out = tmp_path / "made-without-ffcv"
    result = run_tool(
        "mono.generator.cli",
        "--image",
        source_image,
        *SMALL,
        "--format",
        "ffcv",
        "--workers",
        1,
        "-q",
        "--out",
        out,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "train.beton").read_bytes() == (both / "train.beton").read_bytes()
    assert run_tool("mono.generator.shards_cli", "verify", "-q", out, env=env).returncode == 0


def test_format_mistakes_are_one_line_errors(both, source_image, tmp_path):
    result = run_tool(
        "mono.generator.cli", "--image", source_image, *SMALL, "--format", "tfrecord", "--out", tmp_path / "x"
    )
    assert_one_line_error(result, "mono-gen", "--format")
    result = run_tool("mono.generator.shards_cli", "export", both, "--to", "ffcv", tmp_path / "somewhere")
    assert_one_line_error(result, "mono-shards", "no destination")
    alone = make_dataset(tmp_path / "alone", source_image, fmt="ffcv")
    result = run_tool("mono.generator.shards_cli", "export", alone, "--to", "ffcv")
    assert_one_line_error(result, "mono-shards", "no shards")


def test_an_interrupted_beton_is_not_written_again_from_changed_shards(source_image, tmp_path, monkeypatch):
    out = tmp_path / "interrupted"
    add = BetonWriter.add

    def interrupt_midway(self, *args):
        if self.count == 150:
            raise KeyboardInterrupt
        add(self, *args)

    monkeypatch.setattr(BetonWriter, "add", interrupt_midway)
    with pytest.raises(AssertionError, match="exited with 130"):
        make_dataset(out, source_image, fmt="ffcv")
    monkeypatch.undo()
    shard = out / "train-000002.tar"
    data = bytearray(shard.read_bytes())
    data[512 + 300] ^= 0x01  # inside a JPEG: the archive still reads, its bytes are no longer those rendered
    shard.write_bytes(bytes(data))
    result = run_tool(
        "mono.generator.cli", "--image", source_image, *SMALL, "--format", "ffcv", "--workers", 1, "-q", "--out", out
    )
    assert_one_line_error(result, "mono-gen", "train-000002.tar", "differ from the SHA-256", "delete it")
    assert not (out / "train.beton").exists() and not (out / "manifest.json").exists()
    shard.unlink()  # what the message suggests: the shard is rendered again, and the run completes
    make_dataset(out, source_image, fmt="ffcv")
    assert run_tool("mono.generator.shards_cli", "verify", "-q", out).returncode == 0
