"""Top-9 retrieval: the true top images on a constructed case, and one-line errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import SMALL_MONOGAN, assert_one_line_viz_error, invoke_viz, monogan_checkpoint, run_tool
from mono.learning.checkpoint import save_checkpoint
from mono.learning.models import build_trunk


@pytest.fixture(scope="module")
def colour_ramp(tmp_path_factory):
    """20 flat images, image i with red 12i and blue 240 - 12i: redness and blueness order them exactly."""
    root = tmp_path_factory.mktemp("ramp")
    for i in range(20):
        pixels = np.zeros((32, 32, 3), dtype=np.uint8)
        pixels[..., 0], pixels[..., 2] = 12 * i, 240 - 12 * i
        Image.fromarray(pixels).save(root / f"img{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def colour_detector(tmp_path_factory):
    """A monogan whose conv1 channel 0 reads the red input and channel 1 the blue one (centre taps)."""
    torch.manual_seed(0)
    trunk = build_trunk("monogan", **SMALL_MONOGAN)
    with torch.no_grad():
        conv = trunk.blocks["conv1"].conv
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0, 3, 3] = 1.0
        conv.weight[1, 2, 3, 3] = 1.0
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "detector.pt",
        trunk,
        arch="monogan",
        arch_args=SMALL_MONOGAN,
        normalization={"mean": [0.5] * 3, "std": [0.5] * 3},
        method="constructed",
        dataset_manifest_sha256=None,
        epoch=0,
        meta={},
    )


def test_retrieval_returns_the_true_top_images(colour_ramp, colour_detector, tmp_path):
    out = tmp_path / "top.png"
    proc = run_tool(
        "mono.probes.viz_cli",
        "retrieve",
        "--ckpt",
        colour_detector,
        "--data",
        colour_ramp,
        "--layer",
        "conv1",
        "--channels",
        "0,1",
        "--workers",
        0,
        "--no-progress",
        "-o",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    top = json.loads(out.with_suffix(".json").read_text())["top"]
    names = {c: [hit["path"].rsplit("/", 1)[1] for hit in hits] for c, hits in top.items()}
    assert names["0"] == [f"img{i:02d}.png" for i in range(19, 10, -1)]  # the nine reddest, reddest first
    assert names["1"] == [f"img{i:02d}.png" for i in range(9)]  # the nine bluest
    scores = [hit["score"] for hit in top["0"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(2 * 228 / 255 - 1, abs=1e-4)
    with Image.open(out) as picture:  # two rows of nine tiles
        assert picture.width > 9 * 64 and 2 * 64 < picture.height < 3 * 64 + 100


def test_retrieve_mistakes_are_one_line(colour_ramp, tmp_path):
    ckpt = monogan_checkpoint(tmp_path / "c.pt")
    (tmp_path / "empty").mkdir()
    result = invoke_viz(
        "retrieve",
        "--ckpt",
        ckpt,
        "--data",
        tmp_path / "empty",
        "--layer",
        "conv1",
        "--channels",
        0,
        "-o",
        tmp_path / "out.png",
    )
    assert_one_line_viz_error(result, "holds no images")
    result = invoke_viz(
        "retrieve",
        "--ckpt",
        ckpt,
        "--data",
        colour_ramp,
        "--layer",
        "conv5",
        "--channels",
        0,
        "-o",
        tmp_path / "out.png",
    )
    assert_one_line_viz_error(result, "monogan has no block 'conv5'")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bad.png").write_bytes(b"not a png")
    result = invoke_viz(
        "retrieve",
        "--ckpt",
        ckpt,
        "--data",
        tmp_path / "broken",
        "--layer",
        "conv1",
        "--channels",
        0,
        "--workers",
        0,
        "--no-progress",
        "-o",
        tmp_path / "out.png",
    )
    assert_one_line_viz_error(result, "cannot read image", "bad.png")
    assert not (tmp_path / "out.png").exists()
    help_text = invoke_viz("retrieve", "--help").output
    assert "mono-viz retrieve --ckpt" in help_text and "Examples" in help_text
