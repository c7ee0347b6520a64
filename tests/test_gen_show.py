"""mono-shards show DIR INDEX: a sample's parameters as its shard holds them, and a picture of the sample beside
the region of its source image that it was taken from (issue 17)."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from helpers import assert_one_line_error, mono_gen, run_tool
from mono.generator import show


@pytest.fixture(scope="module")
def dataset(source_images, tmp_path_factory):
    out = tmp_path_factory.mktemp("show") / "three"
    mono_gen("--source", source_images, "--samples", 64, "--size", 32, "--shard-size", 32, "--out", out)
    return out


def shard_member(root, shard: int, name: str) -> bytes:
    with tarfile.open(root / f"train-{shard:06d}.tar") as tar:
        return tar.extractfile(name).read()


def test_the_parameters_printed_are_those_in_the_shard(dataset):
    result = run_tool("mono.generator.shards_cli", "show", dataset, 40)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(shard_member(dataset, 1, "000000040.json"))
    assert json.loads(result.stdout)["index"] == 40


@pytest.mark.parametrize("index", [3, 40])
def test_the_picture_draws_the_crop_on_its_source(dataset, source_images, tmp_path, index):
    out = tmp_path / "sample.png"
    result = run_tool("mono.generator.shards_cli", "show", dataset, index, "-o", out, "--image-dir", source_images)
    assert result.returncode == 0, result.stderr
    params = json.loads(result.stdout)
    picture = np.asarray(Image.open(out).convert("RGB"))
    # The sample, enlarged 8 times (nearest-neighbour), at the top left.
    sample = np.asarray(Image.open(io.BytesIO(shard_member(dataset, index // 32, f"{index:09d}.jpg"))).convert("RGB"))
    assert (picture[show.PAD : show.PAD + 256 : 8, show.PAD : show.PAD + 256 : 8] == sample).all()
    # The source at its right, with the turned crop's edges in the crop colour.
    source = Image.open(source_images / params["source_name"])
    scale = show.source_scale(*source.size)
    corners = show.quadrilateral(params, scale, (256 + 2 * show.PAD, show.PAD))
    for a, b in zip(corners, np.roll(corners, -1, axis=0)):
        for t in (0.3, 0.5, 0.7):  # points along each edge (the corners carry the marker)
            x, y = np.round(a + t * (b - a)).astype(int)
            near = picture[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3)  # the line is 3 px wide, drawn by rounding
            assert (near == show.CROP_COLOUR).all(axis=1).any(), (params, x, y)
    # Pixels well inside the crop are the source's own.
    centre = np.round(corners.mean(axis=0)).astype(int)
    assert tuple(picture[centre[1], centre[0]]) != show.CROP_COLOUR
    assert "and its crop on" in result.stderr


def test_without_the_source_the_sample_is_drawn_alone(dataset, tmp_path):
    out = tmp_path / "alone.png"
    result = run_tool("mono.generator.shards_cli", "show", dataset, 5, "-o", out, "--tile", 64)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["index"] == 5
    lines = result.stderr.strip().splitlines()
    assert "the picture shows the sample alone" in lines[0] and len(lines) == 2
    assert Image.open(out).size == (64 + 2 * show.PAD, 64 + 2 * show.PAD)


def test_an_index_outside_the_dataset_is_one_line(dataset, tmp_path):
    result = run_tool("mono.generator.shards_cli", "show", dataset, 64, "-o", tmp_path / "x.png")
    assert_one_line_error(result, "mono-shards", "no sample 64", "0 to 63")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("flip", [False, True])
def test_the_quadrilateral_is_the_region_the_renderer_samples(flip):
    """The renderer's map from output pixels to the source takes the sample's corners to the drawn corners (the
    marked one first: the sample's top-left)."""
    from mono.generator.geometry import output_to_source

    params = {"angle": -27.3, "crop": {"cx": 300.0, "cy": 110.0, "w": 150.0, "h": 120.0}, "flip": flip}
    crop, size = params["crop"], 32
    m = output_to_source(crop["cx"], crop["cy"], crop["w"], crop["h"], np.deg2rad(params["angle"]), flip, size)
    edges = np.array([[-0.5, -0.5, 1], [size - 0.5, -0.5, 1], [size - 0.5, size - 0.5, 1], [-0.5, size - 0.5, 1]])
    mapped = edges @ np.asarray(m).T  # the outer edges of the corner pixels, in source coordinates
    corners = show.quadrilateral(params, 1.0, (0, 0))
    order = [1, 0, 3, 2] if flip else [0, 1, 2, 3]
    assert np.allclose(mapped, corners[order], atol=1e-6)
