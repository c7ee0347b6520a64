"""Activation maximisation: Lucid's parameterisation and transforms, and that the optimisation does its job."""

import json

import pytest
import torch
from PIL import Image

from helpers import (
    SMALL_MONOGAN,
    assert_one_line_error,
    assert_one_line_viz_error,
    invoke_viz,
    monogan_checkpoint,
    run_tool,
)
from mono.learning.models import build_trunk
from mono.probes.features import freeze_for_probing
from mono.probes.transforms import Normalizer
from mono.probes.viz_maximize import FourierImage, _random_transform, channel_means, maximize_channels


def _trunk():
    """A small random trunk with WGAN-GP's init: under PyTorch's default init (monogan's default) every layer
    shrinks its input, conv3 responds ~50x more weakly, and 20 steps raise it by a third, not several-fold."""
    torch.manual_seed(0)
    trunk = build_trunk("monogan", **SMALL_MONOGAN, init="wgan_gp")
    return freeze_for_probing(trunk), Normalizer([0.5] * 3, [0.5] * 3)


def test_fourier_images_are_valid_and_start_near_grey():
    images = FourierImage(3, 32, torch.Generator().manual_seed(0))()
    assert images.shape == (3, 3, 32, 32)
    assert 0 < images.min() and images.max() < 1 and (images - 0.5).abs().max() < 0.1


def test_random_transforms_move_the_image_but_keep_the_batch():
    images = torch.rand(2, 3, 32, 32)
    out = _random_transform(images, torch.Generator().manual_seed(1))
    assert out.shape[:2] == (2, 3) and 28 <= out.shape[-1] <= 40 and out.shape[-1] == out.shape[-2]


def test_maximisation_raises_the_target_activation():
    trunk, normalize = _trunk()
    channels = [0, 3, 7]
    images, activations = maximize_channels(trunk, normalize, "conv3", channels, size=32, steps=20, progress=False)
    assert images.shape == (3, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    before, after = torch.tensor(activations["before"]), torch.tensor(activations["after"])
    assert (after > 2 * before + 0.05).all(), activations
    noise = torch.rand(3, 3, 32, 32)  # and beyond what plain noise images reach
    with torch.no_grad():
        assert (after > channel_means(trunk, normalize, noise, "conv3", channels)).all()
        assert torch.allclose(channel_means(trunk, normalize, images, "conv3", channels), after, atol=1e-4)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--layer", "conv9", "--channels", "0"], "monogan has no block 'conv9'"),
        (["--layer", "conv1", "--channels", "3,8"], "conv1 of monogan has 8 channels (0-7)"),
        (["--layer", "conv1", "--channels", "a,b"], "--channels must be integers"),
        (["--layer", "conv1", "--channels", "1,1"], "distinct non-negative"),
    ],
)
def test_layer_and_channel_mistakes_are_one_line(tmp_path, args, fragment):
    result = invoke_viz("maximize", "--ckpt", monogan_checkpoint(tmp_path / "c.pt"), *args, "-o", tmp_path / "x.png")
    assert_one_line_viz_error(result, fragment)
    assert not list(tmp_path.glob("x.*"))


def test_checkpoint_and_output_mistakes_are_one_line(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    proc = run_tool(
        "mono.probes.viz_cli",
        "maximize",
        "--ckpt",
        junk,
        "--layer",
        "conv1",
        "--channels",
        "0",
        "-o",
        tmp_path / "out.png",
    )
    assert_one_line_error(proc, "mono-viz", "is not a mono checkpoint")
    result = invoke_viz("maximize", "--ckpt", junk, "--layer", "conv1", "--channels", "0", "-o", tmp_path / "no/x.png")
    assert_one_line_viz_error(result, "no such directory")
    result = invoke_viz(
        "maximize", "--arch", "monogan", "--layer", "conv1", "--channels", "0", "-o", tmp_path / "x.png"
    )
    assert_one_line_viz_error(result, "add --random-init")
    assert not list(tmp_path.glob("*.png"))


def test_maximize_writes_a_labelled_picture_and_the_activations(tmp_path):
    result = invoke_viz(
        "maximize",
        "--ckpt",
        monogan_checkpoint(tmp_path / "c.pt"),
        "--layer",
        "conv2",
        "--channels",
        "1,2",
        "--steps",
        3,
        "--tile",
        64,
        "--no-progress",
        "-o",
        tmp_path / "max.png",
    )
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "max.json").read_text())
    assert record["channels"] == [1, 2] and set(record["mean_activation"]) == {"1", "2"}
    with Image.open(tmp_path / "max.png") as picture:
        assert picture.width >= 2 * 64 and picture.height > 64
    help_text = invoke_viz("maximize", "--help").output
    assert "mono-viz maximize --ckpt" in help_text and "Examples" in help_text
