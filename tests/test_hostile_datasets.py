"""Datasets are data: whatever a manifest or a shard says, reading it runs nothing, opens nothing outside
the dataset directory, and a malformed or edited one ends in one line, never a traceback or an OK."""

from __future__ import annotations

import hashlib
import io
import json
import shutil

import pytest

from helpers import assert_one_line_error, mono_gen, run_tool
from mono.generator import beton_format, tar_format
from mono.learning.data import Loader, UserError, open_dataset
from mono.learning.data.tar_reader import iter_samples


@pytest.fixture(scope="module")
def small(source_image, tmp_path_factory):
    """40 samples of 16 px in 2 shards."""
    out = tmp_path_factory.mktemp("hostile") / "ds"
    mono_gen("--image", source_image, "--samples", 40, "--size", 16, "--shard-size", 20, "--out", out)
    return out


def copy_with(small, tmp_path, change) -> tuple:
    """A copy of the dataset whose manifest `change(manifest)` edited in place."""
    root = tmp_path / "ds"
    shutil.copytree(small, root)
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def read_all(location) -> int:
    return read_all_as(location, None)


def read_all_as(location, fmt) -> int:
    dataset = open_dataset(location, format=fmt)
    loader = Loader(dataset, 8)
    loader.set_epoch(0)
    return sum(len(indices) for _, _, indices in loader)


COMMAND = "pipe:touch PWNED;cat train-000000.tar"


def named(small, tmp_path, name):
    """A copy of the dataset whose manifest calls its first shard `name`, with the shard's bytes under that
    name when it can be a file name: exactly what verify checked, and passed, before."""

    def rename(manifest):
        manifest["shards"][0]["name"] = name

    root = copy_with(small, tmp_path, rename)
    if "/" not in name and name != "..":
        shutil.copy(root / "train-000000.tar", root / name)
    return root


@pytest.mark.parametrize(
    "name",
    [
        COMMAND,
        "../train-000000.tar",
        "/etc/hostname",
        "http://127.0.0.1:9/x.tar",
        "sub/train-000000.tar",
        ".hidden.tar",
        "..",
    ],
)
def test_the_reader_refuses_a_shard_name_that_is_not_a_plain_file_name(small, tmp_path, monkeypatch, name):
    root = named(small, tmp_path, name)
    monkeypatch.chdir(root)
    for location in (".", "./", str(root)):
        with pytest.raises(UserError, match="not a plain file name") as error:
            read_all(location)
        assert "\n" not in str(error.value)
    assert not (root / "PWNED").exists(), "nothing ran"


def test_mono_shards_refuses_a_shard_name_that_is_a_command(small, tmp_path):
    root = named(small, tmp_path, COMMAND)
    for args in (
        ["verify", "."],
        ["info", "."],
        ["preview", ".", "-o", tmp_path / "p.png"],
        ["export", ".", "--to", "folder", tmp_path / "f"],
        ["export", ".", "--to", "ffcv"],
    ):
        result = run_tool("mono.generator.shards_cli", *args, cwd=root)
        assert_one_line_error(result, "mono-shards", "malformed manifest", "plain file name")
    assert not (root / "PWNED").exists(), "nothing ran"
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "f").exists() and not (root / "train.beton").exists()


def _drop(key):
    return lambda m: m.pop(key)


def _set(path, value):
    def change(manifest):
        *parents, last = path
        target = manifest
        for part in parents:
            target = target[part]
        target[last] = value

    return change


MALFORMED = {
    "no shards": (_drop("shards"), "shards is missing"),
    "shards not a list": (_set(["shards"], {"name": "train-000000.tar"}), "shards must be a list"),
    "count a string": (_set(["shards", 0, "count"], "20"), "shards[0].count must be an integer"),
    "num_samples negative": (_set(["num_samples"], -40), "num_samples must be an integer"),
    "formats a string": (_set(["formats"], "ffcv"), "formats must be a list"),
    "ffcv without its record": (_set(["formats"], ["webdataset", "ffcv"]), "ffcv is missing"),
    "config not an object": (_set(["config"], "edited"), "config must be an object"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_manifest_is_one_line_for_every_tool(small, tmp_path, case):
    change, message = MALFORMED[case]
    root = copy_with(small, tmp_path, change)
    for args in (
        ["verify", root],
        ["info", root],
        ["preview", root, "-o", tmp_path / "p.png"],
        ["export", root, "--to", "folder", tmp_path / "f"],
    ):
        result = run_tool("mono.generator.shards_cli", *args)
        assert_one_line_error(result, "mono-shards", "malformed manifest", message)
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "f").exists()


@pytest.mark.parametrize(
    "case",
    [
        "no shards",
        "shards not a list",
        "count a string",
        "num_samples negative",
        "formats a string",
        "ffcv without its record",
    ],
)
def test_the_reader_refuses_a_malformed_manifest_in_one_line(small, tmp_path, case):
    root = copy_with(small, tmp_path, MALFORMED[case][0])
    with pytest.raises(UserError, match="unreadable manifest") as error:
        read_all(root)
    assert "\n" not in str(error.value)


EDITED = {
    "quality changed": (_set(["config", "output", "quality"], 95), "config does not match config_sha256"),
    "digest zeroed": (_set(["config_sha256"], "0" * 64), "config does not match config_sha256"),
    "num_classes changed": (_set(["num_classes"], 2), "num_classes is 2, the config makes 1"),
    "num_samples changed": (_set(["num_samples"], 30), "num_samples is 30, the config makes 40"),
    "shard moved": (_set(["shards", 1, "first"], 21), "shards differ from the 2 shards of 20 samples"),
    "source renamed": (_set(["sources", 0, "name"], "other.png"), "sources differ from the config's"),
}


@pytest.mark.parametrize("case", EDITED)
def test_verify_refuses_an_edited_manifest(small, tmp_path, case):
    change, message = EDITED[case]
    root = copy_with(small, tmp_path, change)
    result = run_tool("mono.generator.shards_cli", "verify", "-q", root)
    assert result.returncode == 1 and f"manifest: {message}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "FAILED" in result.stderr.splitlines()[-1]


def test_verify_passes_the_unedited_manifest(small):
    result = run_tool("mono.generator.shards_cli", "verify", small)
    assert result.returncode == 0 and "OK, 2 shards, 40 samples" in result.stdout, result.stderr


def claim_size(root, size: int) -> None:
    """Make the first member of the first shard claim `size` bytes (a valid header otherwise), and record the
    shard's new bytes in the manifest, as a hostile or damaged dataset would look."""
    shard = root / "train-000000.tar"
    data = bytearray(shard.read_bytes())
    data[124:136] = b"%012o" % size  # 12 octal digits, no terminator: up to 64 GiB
    data[148:156] = b" " * 8
    data[148:156] = b"%06o\x00 " % sum(data[:512])
    shard.write_bytes(bytes(data))
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["shards"][0].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))


HUGE = 0o777777777777  # 64 GiB − 1


def test_a_member_claiming_64_gib_is_one_line_not_a_memory_error(small, tmp_path):
    root = copy_with(small, tmp_path, lambda m: None)
    claim_size(root, HUGE)
    claim = f"claims {HUGE:,} bytes"
    result = run_tool("mono.generator.shards_cli", "verify", "-q", root)
    assert result.returncode == 1 and claim in result.stderr and "Traceback" not in result.stderr, result.stderr
    for args in (
        ["preview", root, "-o", tmp_path / "p.png"],
        ["export", root, "--to", "folder", tmp_path / "f", "-q"],
        ["export", root, "--to", "ffcv", "-q"],
    ):
        assert_one_line_error(run_tool("mono.generator.shards_cli", *args), "mono-shards", claim)
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "f").exists() and not (root / "train.beton").exists()
    with pytest.raises(UserError, match=claim) as error:
        read_all(root)
    assert "\n" not in str(error.value)


class Unseekable(io.RawIOBase):
    """A stream of unknown length, as a download is."""

    def __init__(self, data: bytes):
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_stream_of_unknown_length_is_read_by_what_arrives(small, tmp_path):
    root = copy_with(small, tmp_path, lambda m: None)
    claim_size(root, HUGE)
    data = (root / "train-000000.tar").read_bytes()
    with pytest.raises(ValueError, match="more than any sample's image"):
        list(iter_samples(io.BufferedReader(Unseekable(data)), lambda i: True, "stream"))
    with pytest.raises(ValueError, match="archive truncated inside member 000000000.jpg"):
        list(tar_format.iter_members(io.BufferedReader(Unseekable(data))))


def relabel(root, label: bytes) -> None:
    """Give the first sample of the first shard the label `label`, keeping the shard a valid archive and its
    manifest record true: a consistent dataset whose label names no class."""
    shard = root / "train-000000.tar"
    with open(shard, "rb") as f:
        samples = list(tar_format.group_samples(tar_format.iter_members(f)))
    samples[0][1]["cls"] = label  # sample 000000000
    data = b"".join(tar_format.sample(key, list(files.items())) for key, files in samples) + tar_format.END_OF_ARCHIVE
    shard.write_bytes(data)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["shards"][0].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.mark.parametrize("label", [b"7", b"-1"])
def test_a_label_outside_the_classes_is_one_line_not_a_wrong_folder(small, tmp_path, label):
    root = copy_with(small, tmp_path, lambda m: None)
    relabel(root, label)
    outside = f"label {int(label)}, outside the dataset's classes 0..0"
    result = run_tool("mono.generator.shards_cli", "verify", "-q", root)
    assert result.returncode == 1 and f"label {int(label)} outside 0..0" in result.stderr, result.stderr
    for args in (["export", root, "--to", "folder", tmp_path / "f", "-q"], ["export", root, "--to", "ffcv", "-q"]):
        assert_one_line_error(run_tool("mono.generator.shards_cli", *args), "mono-shards", outside)
    assert not (tmp_path / "f").exists() and not (root / "train.beton").exists()
    with pytest.raises(UserError, match=outside) as error:
        read_all(root)
    assert "\n" not in str(error.value)


def test_the_ffcv_reader_refuses_a_label_outside_the_classes(source_image, tmp_path):
    root = tmp_path / "both"
    mono_gen(
        "--image", source_image, "--samples", 40, "--size", 16, "--shard-size", 20, "--format", "both", "--out", root
    )
    samples = list(beton_format.iter_beton(root / "train.beton"))
    with open(root / "train.beton", "r+b") as f:  # the same file, the first sample labelled 7 of 1 class
        writer = beton_format.BetonWriter(f, len(samples), beton_format.page_size_for(16))
        for k, (label, jpeg) in enumerate(samples):
            writer.add(jpeg, 16, 16, 7 if k == 0 else label)
        writer.close()
    with pytest.raises(UserError, match=r"labels outside the dataset's classes 0\.\.0") as error:
        read_all_as(root, "ffcv")
    assert "\n" not in str(error.value)
