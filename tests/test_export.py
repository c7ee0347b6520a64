"""mono-shards export --to folder: an ImageFolder tree with the shards' JPEG bytes, whole or not at all."""
from __future__ import annotations

import itertools
import json

import pytest
from torchvision.datasets import ImageFolder

from conftest import assert_one_line_error, run_tool
from data_helpers import SMALL, shard_samples
from gen_helpers import mono_gen
from generator import readback
from generator.shards_cli import main as mono_shards


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
    result = run_tool("generator.shards_cli", "export", three, "--to", "folder", dest)
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
    assert run_tool("generator.shards_cli", "verify", "-q", dest).returncode == 0


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
    result = run_tool("generator.shards_cli", "export", three, "--to", "folder", taken)
    assert_one_line_error(result, "mono-shards", "not an empty directory")
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]

    real = readback.iter_images
    monkeypatch.setattr(readback, "iter_images", lambda root: _cut(real(root), 100))
    with pytest.raises(SystemExit) as exit_info:
        mono_shards(["export", str(three), "--to", "folder", str(tmp_path / "dest"), "-q"])
    assert exit_info.value.code == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"], "no partial tree, visible or hidden"

    monkeypatch.undo()
    mono_shards(["export", str(three), "--to", "folder", str(tmp_path / "dest"), "-q"])
    assert len(exported_files(tmp_path / "dest")) == 300
    victim = next((tmp_path / "dest").glob("1-*/000000004.jpg"))  # sample 4 comes from source 4 mod 3
    victim.unlink()
    result = run_tool("generator.shards_cli", "verify", "-q", tmp_path / "dest")
    assert result.returncode == 1 and f"{victim.parent.name}/000000004.jpg: missing" in result.stderr


def _cut(samples, n):
    """The first n samples, then Ctrl-C."""
    yield from itertools.islice(samples, n)
    raise KeyboardInterrupt
