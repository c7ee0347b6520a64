"""mono.learning.data: the same batches from every format, any number of workers, local or over HTTP."""

from __future__ import annotations

import collections
import functools
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from helpers import REPO, SMALL, mono_gen, shard_samples, without_ffcv
from mono.generator.shards_cli import main as mono_shards
from mono.learning.data import Loader, UserError, open_dataset
from mono.learning.data.order import buffer_shuffle


@pytest.fixture(scope="module")
def data(source_images, tmp_path_factory):
    """Three source images, 300 samples of 32 px: shards, train.beton, and a folder export."""
    base = tmp_path_factory.mktemp("reader")
    mono_gen("--source", source_images, *SMALL, "--format", "both", "--out", base / "ds")
    mono_shards(["export", str(base / "ds"), "--to", "folder", str(base / "folder"), "-q"])
    return base


def epoch(loader, number=0, indices=None):
    loader.set_epoch(number, indices)
    return [tuple(t.clone() for t in batch) for batch in loader]


def order(batches):
    return torch.cat([indices for _, _, indices in batches]).tolist()


def by_index(batches):
    return {i: image for images, _, indices in batches for image, i in zip(images, indices.tolist())}


def test_every_format_gives_the_same_batches(data):
    runs = {}
    for fmt, where in (("ffcv", "ds"), ("webdataset", "ds"), ("folder", "folder")):
        loader = Loader(open_dataset(data / where, format=fmt), 64, shuffle=True, seed=1, num_workers=2)
        runs[fmt] = epoch(loader, 3)
        assert len(loader) == len(runs[fmt]) == 5 and loader.num_samples == 300
        assert all(x.is_contiguous(memory_format=torch.channels_last) for x, _, _ in runs[fmt]), "no transposing copy"
    reference = shard_samples(data / "ds")
    wds_images = torch.cat([images for images, _, _ in runs["webdataset"]])
    assert sorted(order(runs["webdataset"])) == list(range(300)) and order(runs["webdataset"]) != list(range(300))
    for fmt, batches in runs.items():
        assert [i.tolist() for _, _, i in batches] == [i.tolist() for _, _, i in runs["webdataset"]], fmt
        assert torch.cat([labels for _, labels, _ in batches]).tolist() == [reference[i][1] for i in order(batches)]
        images = torch.cat([images for images, _, _ in batches])
        assert images.dtype == torch.uint8 and images.shape == (300, 3, 32, 32)
        difference = (images.int() - wds_images.int()).abs().float()
        if fmt == "ffcv":  # another libjpeg-turbo build, with its fast IDCT: nearly the same pixels
            assert difference.mean() < 2 and difference.max() <= 16, (difference.mean(), difference.max())
        else:
            assert difference.max() == 0
    # The pixels are those of the shard's JPEG, decoded independently with Pillow.
    index = order(runs["webdataset"])[0]
    pillow = torch.from_numpy(np.array(Image.open(io.BytesIO(reference[index][2])).convert("RGB"))).permute(2, 0, 1)
    assert (pillow.int() - wds_images[0].int()).abs().max() <= 2


def test_stopping_an_ffcv_epoch_early_stops_its_decoding_thread(data):
    loader = Loader(open_dataset(data / "ds", format="ffcv"), 16, shuffle=True, seed=0, num_workers=2)
    loader.set_epoch(0)
    before = set(threading.enumerate())
    for _ in loader:
        started = set(threading.enumerate()) - before
        break  # what a --steps-per-epoch limit does
    assert started, "ffcv decodes in a thread of its own"
    assert not any(thread.is_alive() for thread in started)  # left running, it aborts the interpreter at exit


@pytest.mark.parametrize("fmt", ["webdataset", "folder"])
def test_the_order_depends_on_seed_and_epoch_not_on_workers(data, fmt):
    dataset = open_dataset(data / ("folder" if fmt == "folder" else "ds"), format=fmt)
    runs = [epoch(Loader(dataset, 32, shuffle=True, seed=5, num_workers=w, shuffle_buffer=40), 2) for w in (0, 1, 2)]
    assert all(order(run) == order(runs[0]) for run in runs)
    assert all(torch.equal(a[0], b[0]) for run in runs[1:] for a, b in zip(run, runs[0]))
    loader = Loader(dataset, 32, shuffle=True, seed=5, shuffle_buffer=40)
    assert order(epoch(loader, 2)) == order(runs[0])
    orders = [order(epoch(loader, e)) for e in (0, 1)] + [order(epoch(Loader(dataset, 32, shuffle=True, seed=6), 2))]
    assert all(sorted(o) == list(range(300)) for o in orders)
    assert len({tuple(o) for o in orders + [order(runs[0])]}) == 4, "another epoch or seed, another order"
    assert order(epoch(Loader(dataset, 32, num_workers=2), 7)) == list(range(300)), "unshuffled: index order"


@pytest.mark.parametrize("fmt", ["ffcv", "webdataset", "folder"])
def test_an_epoch_multiset_with_repeats_is_honoured(data, fmt):
    picks = np.random.default_rng(0).choice(300, size=250, replace=True)  # as DeepCluster's UnifLabelSampler
    dataset = open_dataset(data / ("folder" if fmt == "folder" else "ds"), format=fmt)
    loader = Loader(dataset, 64, shuffle=True, seed=2, num_workers=2)
    batches = epoch(loader, 1, picks)
    assert len(loader) == len(batches) == 4 and loader.num_samples == 250
    assert collections.Counter(order(batches)) == collections.Counter(picks.tolist())
    assert order(epoch(Loader(dataset, 64), 0, picks)) == sorted(picks.tolist())
    with pytest.raises(ValueError):
        loader.set_epoch(0, [0, 300])


def test_ranks_partition_the_epoch_as_documented(data):
    dataset = open_dataset(data / "ds", format="webdataset")
    for length, world, batch in ((300, 3, 64), (251, 2, 32), (7, 4, 2)):
        picks = np.arange(length) % 300
        shares = []
        for rank in range(world):
            loader = Loader(dataset, batch, shuffle=True, seed=9, rank=rank, world_size=world, num_workers=1)
            shares.append(order(epoch(loader, 4, picks)))
            assert len(shares[-1]) == loader.num_samples == (rank + 1) * length // world - rank * length // world
        assert sorted(sum(shares, [])) == sorted(picks.tolist()), "every sample exactly once over the ranks"
        full_batches = length // world // batch
        for rank in range(world):
            loader = Loader(dataset, batch, shuffle=True, seed=9, rank=rank, world_size=world, drop_last=True)
            batches = epoch(loader, 4, picks)
            assert len(batches) == len(loader) == full_batches and all(len(i) == batch for _, _, i in batches)


def test_per_sample_and_batch_transforms(data):
    crop = v2.Compose([v2.RandomResizedCrop(16, antialias=True), v2.RandomHorizontalFlip()])
    dataset = open_dataset(data / "ds")
    assert dataset.format == "ffcv"
    runs = []
    for workers in (0, 2):
        loader = Loader(
            dataset, 50, shuffle=True, transform=crop, batch_transform=lambda x: x.float() / 255, num_workers=workers
        )
        assert loader.format == "webdataset", "FFCV has no per-sample transform: the next format serves"
        runs.append(epoch(loader, 1))
    images = torch.cat([x for x, _, _ in runs[0]])
    assert images.shape == (300, 3, 16, 16) and images.dtype == torch.float32 and 0 <= images.min() < images.max() <= 1
    assert all(torch.equal(a[0], b[0]) for a, b in zip(*runs)), "random augmentations do not depend on the workers"
    first, second = by_index(runs[0]), by_index(epoch(loader, 2))
    assert sum(not torch.equal(first[i], second[i]) for i in first) > 250, "another epoch, other augmentations"
    with pytest.raises(UserError, match="per-sample transform"):
        Loader(open_dataset(data / "ds", format="ffcv"), 8, transform=crop)
    ffcv = Loader(dataset, 100, batch_transform=lambda x: x[:, :, :8, :8])
    assert ffcv.format == "ffcv" and next(iter(ffcv))[0].shape == (100, 3, 8, 8)


def test_the_shuffle_buffer_bounds_what_a_streaming_reader_holds():
    stream = np.arange(20_000)
    out = buffer_shuffle(stream, 500, np.random.default_rng(0))
    assert sorted(out.tolist()) == stream.tolist()
    position = np.empty_like(out)
    position[out] = np.arange(len(out))
    # A sample comes out no earlier than 499 places before it went in: a reader following the stream
    # never needs one it has not read yet by more than the buffer...
    assert (position >= stream - 499).all()
    # ...while samples do travel: some far beyond the buffer's width, in both directions.
    assert (position - stream).max() > 2_000 and (position - stream).min() < -400


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    """A local HTTP server: (directory it serves, its base URL)."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(tmp_path))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_dataset_streams_over_http(data, http_root):
    served, url = http_root
    shutil.copytree(data / "ds", served / "ds", ignore=shutil.ignore_patterns("train.beton"))
    local = epoch(Loader(open_dataset(data / "ds", format="webdataset"), 64, shuffle=True, seed=4), 1)
    remote = open_dataset(f"{url}/ds/")
    assert remote.formats == ("webdataset",) and remote.num_samples == 300 and remote.num_classes == 3
    batches = epoch(Loader(remote, 64, shuffle=True, seed=4, num_workers=2), 1)
    assert all(torch.equal(a, b) for x, y in zip(local, batches) for a, b in zip(x, y))
    subset = open_dataset(f"{url}/ds/train-{{000000..000001}}.tar")
    assert subset.num_samples == 200
    assert sorted(order(epoch(Loader(subset, 64, shuffle=True, num_workers=2)))) == list(range(200))

    with pytest.raises(UserError, match="not a shard of the dataset"):
        open_dataset(f"{url}/ds/train-{{000000..000003}}.tar")
    with pytest.raises(UserError, match="cannot download the dataset's manifest"):
        open_dataset(f"{url}/elsewhere/")
    (served / "ds" / "train-000002.tar").unlink()
    with pytest.raises(UserError, match="train-000002.tar: download failed") as error:
        epoch(Loader(remote, 64, num_workers=2))
    assert "\n" not in str(error.value)


def test_mistakes_are_one_line_errors(data, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "manifest.json").write_text("{not json")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    (tmp_path / "unfinished" / ".mono-gen").mkdir(parents=True)
    (tmp_path / "unfinished" / "train-000000.tar").write_bytes(b"")
    cases = {
        tmp_path / "nowhere": "no such dataset",
        tmp_path / "empty": "empty directory",
        tmp_path / "garbled": "unreadable manifest",
        tmp_path / "foreign": "not a mono dataset manifest",
        tmp_path / "unfinished": "incomplete dataset",
    }
    for where, message in cases.items():
        with pytest.raises(UserError, match=message) as error:
            open_dataset(where)
        assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="holds no webdataset data"):
        open_dataset(data / "folder", format="webdataset")
    with pytest.raises(UserError, match="unknown dataset format"):
        open_dataset(data / "ds", format="tfrecord")
    broken = tmp_path / "broken"
    shutil.copytree(data / "ds", broken)
    shard = broken / "train-000001.tar"
    shard.write_bytes(shard.read_bytes()[:30000])
    with pytest.raises(UserError, match="train-000001.tar: archive truncated") as error:
        epoch(Loader(open_dataset(broken, format="webdataset"), 64, num_workers=2))
    assert "\n" not in str(error.value) and "mono-shards verify" in str(error.value)


def test_without_ffcv_the_reader_falls_back_or_says_how_to_install(data, tmp_path):
    script = f"""
import sys
from mono.learning.data import Loader, UserError, open_dataset
from mono.learning.data.order import buffer_shuffle
dataset = open_dataset({str(data / "ds")!r})
print(dataset.format, len(Loader(dataset, 64)))
try:
    dataset = Loader(open_dataset({str(data / "ds")!r}, format="ffcv"), 64)
except UserError as exc:
    sys.exit(f"error: {{exc}}")
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **without_ffcv(tmp_path)},
    )
    assert result.stdout.split() == ["webdataset", "5"]
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "needs the optional ffcv package" in result.stderr and "pip install 'mono[ffcv]'" in result.stderr


def test_a_plain_image_folder_is_read_with_imagefolder_labels(tmp_path):
    for label, (name, colour) in enumerate([("cat", (200, 40, 40)), ("dog", (40, 40, 200))]):
        (tmp_path / name).mkdir()
        for k in range(3 + label):
            Image.new("RGB", (20 + k, 16), colour).save(tmp_path / name / f"{k}.png")
    dataset = open_dataset(tmp_path)
    assert dataset.formats == ("folder",) and dataset.num_samples == 7 and dataset.class_names == ("cat", "dog")
    assert dataset.image_size is None, "mixed sizes"
    batches = epoch(Loader(dataset, 4, shuffle=True, transform=v2.Resize((8, 8), antialias=True)))
    labels = torch.cat([y for _, y, _ in batches])
    images = torch.cat([x for x, _, _ in batches])
    assert sorted(order(batches)) == list(range(7)) and labels.tolist() == [int(i >= 3) for i in order(batches)]
    assert all(image[0].float().mean() > image[2].float().mean() for image, label in zip(images, labels) if label == 0)
