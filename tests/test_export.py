"""mono-shards export --to folder: an ImageFolder tree with the shards' JPEG bytes, whole or not at all."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest
from torchvision.datasets import ImageFolder

from helpers import SMALL, assert_one_line_error, mono_gen, run_tool, shard_samples
from mono.generator import samples
from mono.generator.shards_cli import main as mono_shards


@pytest.fixture(scope="module")
def three(source_images, tmp_path_factory):
    """Three source images as three classes: 300 samples of 32 px, shards and train.beton."""
    out = tmp_path_factory.mktemp("export") / "three"
    mono_gen("--source", source_images, *SMALL, "--format", "both", "--out", out)
    return out


def exported_files(dest):
    return {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*.jpg")}


def test_folder_export_copies_the_bytes_into_an_imagefolder_tree(three, tmp_path):
    dest = tmp_path / "folder"
    result = run_tool("mono.generator.shards_cli", "export", three, "--to", "folder", dest)
    assert result.returncode == 0, result.stderr
    sources = json.loads((three / "manifest.json").read_text())["sources"]
    classes = [f"{s['index']}-{s['name'].rsplit('.', 1)[0]}" for s in sources]  # the documented naming
    assert sorted(name[2:] for name in classes) == ["shapes", "stripes", "waves"]
    assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == classes
    samples = shard_samples(three)
    assert exported_files(dest) == {f"{classes[label]}/{index:09d}.jpg": jpeg for index, label, jpeg in samples}
    # torchvision numbers class folders in sorted order: its labels are the source indices.
    folder = ImageFolder(str(dest))
    assert folder.classes == classes
    assert [label for _, label in folder.samples] == sorted(label for _, label, _ in samples)
    assert all(int(path.rsplit("/", 1)[1][:9]) % 3 == label for path, label in folder.samples)
    assert run_tool("mono.generator.shards_cli", "verify", "-q", dest).returncode == 0


def test_folder_export_from_the_beton_alone_gives_the_same_tree(three, source_images, tmp_path):
    alone = tmp_path / "alone"
    mono_gen("--source", source_images, *SMALL, "--format", "ffcv", "--out", alone)
    assert not list(alone.glob("*.tar"))
    mono_shards(["export", str(alone), "--to", "folder", str(tmp_path / "from-beton"), "-q"])
    mono_shards(["export", str(three), "--to", "folder", str(tmp_path / "from-shards"), "-q"])
    assert exported_files(tmp_path / "from-beton") == exported_files(tmp_path / "from-shards")


def test_folder_export_is_whole_or_absent(three, tmp_path, monkeypatch):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = run_tool("mono.generator.shards_cli", "export", three, "--to", "folder", taken)
    assert_one_line_error(result, "mono-shards", "not an empty directory")
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]

    real = samples.iter_images
    monkeypatch.setattr(samples, "iter_images", lambda root: _cut(real(root), 100))
    with pytest.raises(SystemExit) as exit_info:
        mono_shards(["export", str(three), "--to", "folder", str(tmp_path / "dest"), "-q"])
    assert exit_info.value.code == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"], "no partial tree, visible or hidden"

    monkeypatch.undo()
    mono_shards(["export", str(three), "--to", "folder", str(tmp_path / "dest"), "-q"])
    assert len(exported_files(tmp_path / "dest")) == 300
    victim = next((tmp_path / "dest").glob("1-*/000000004.jpg"))  # sample 4 comes from source 4 mod 3
    victim.unlink()
    result = run_tool("mono.generator.shards_cli", "verify", "-q", tmp_path / "dest")
    assert result.returncode == 1 and f"{victim.parent.name}/000000004.jpg: missing" in result.stderr


def _cut(samples, n):
    """The first n samples, then Ctrl-C."""
    yield from itertools.islice(samples, n)
    raise KeyboardInterrupt


def flip_a_jpeg_byte(shard: Path) -> None:
    """Change one byte inside the first sample's JPEG: the archive stays readable, its SHA-256 changes."""
    data = bytearray(shard.read_bytes())
    data[512 + 300] ^= 0x01
    shard.write_bytes(bytes(data))


def test_export_refuses_a_shard_whose_bytes_changed(three, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(three, copy)
    flip_a_jpeg_byte(copy / "train-000001.tar")
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    result = run_tool("mono.generator.shards_cli", "export", copy, "--to", "folder", tmp_path / "dest", "-q")
    assert_one_line_error(result, "mono-shards", "train-000001.tar", "differ from the SHA-256 manifest.json records")
    (copy / "train.beton").unlink()
    del before["train.beton"]
    result = run_tool("mono.generator.shards_cli", "export", copy, "--to", "ffcv", "-q")
    assert_one_line_error(result, "mono-shards", "train-000001.tar", "differ from the SHA-256 manifest.json records")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"], "no folder, visible or hidden"
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before, "no .beton, manifest unchanged"


def test_export_from_a_changed_beton_is_refused(three, tmp_path):
    alone = tmp_path / "alone"
    shutil.copytree(three, alone)
    manifest = json.loads((alone / "manifest.json").read_text())
    manifest["formats"] = ["ffcv"]
    (alone / "manifest.json").write_text(json.dumps(manifest))
    for shard in alone.glob("*.tar"):
        shard.unlink()
    beton = alone / "train.beton"
    data = bytearray(beton.read_bytes())
    data[manifest["ffcv"]["page_size"] + 700] ^= 0x01  # inside the first JPEG
    beton.write_bytes(bytes(data))
    result = run_tool("mono.generator.shards_cli", "export", alone, "--to", "folder", tmp_path / "dest", "-q")
    assert_one_line_error(result, "mono-shards", "train.beton", "differ from the SHA-256 manifest.json records")
    assert not (tmp_path / "dest").exists()


def test_verify_on_an_export_checks_every_file_s_content(three, tmp_path):
    dest = tmp_path / "dest"
    mono_shards(["export", str(three), "--to", "folder", str(dest), "-q"])
    sums = (dest / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 300 and all(len(line.split("  ")[0]) == 64 for line in sums)
    victim = next(dest.glob("*/000000007.jpg"))
    data = bytearray(victim.read_bytes())
    data[200] ^= 0x01  # same size, same name: only the content tells
    victim.write_bytes(bytes(data))
    result = run_tool("mono.generator.shards_cli", "verify", "-q", dest)
    name = f"{victim.parent.name}/000000007.jpg"
    assert result.returncode == 1 and f"{name}: SHA-256 differs from SHA256SUMS" in result.stderr, result.stderr
    (dest / "SHA256SUMS").write_text("".join(line + "\n" for line in sums if not line.endswith(name)))
    result = run_tool("mono.generator.shards_cli", "verify", "-q", dest)
    assert result.returncode == 1 and "SHA256SUMS: SHA-256 differs from the manifest" in result.stderr, result.stderr


def test_an_unwritable_destination_is_one_line_naming_it(three, unwritable_dir):
    result = run_tool("mono.generator.shards_cli", "export", three, "--to", "folder", unwritable_dir / "dest", "-q")
    assert_one_line_error(result, "mono-shards", f"{unwritable_dir / 'dest'}: cannot write")
