"""Style transfer: the tutorial's Gram matrix, and that the optimisation lowers its loss."""

import json

import torch
from PIL import Image

from helpers import SMALL_MONOGAN, assert_one_line_viz_error, invoke_viz, monogan_checkpoint
from mono.learning.models import build_trunk
from mono.probes.features import freeze_for_probing
from mono.probes.transforms import Normalizer
from mono.probes.viz_style import default_layers, gram, style_transfer, total_variation


def test_gram_is_normalised_by_the_feature_size():
    assert torch.allclose(gram(torch.ones(1, 2, 3, 3)), torch.full((2, 2), 0.5))


def test_style_transfer_lowers_its_loss():
    torch.manual_seed(0)
    trunk = freeze_for_probing(build_trunk("monogan", **SMALL_MONOGAN))
    content = torch.linspace(0, 1, 48).view(1, 1, 1, 48).expand(1, 3, 48, 48).clone()  # a smooth ramp
    style = (torch.arange(40).view(1, 1, 40, 1) // 4 % 2).float().expand(1, 3, 40, 40).clone()  # stripes
    style[:, 1] = 0.2
    assert default_layers(trunk) == ("conv3", ["conv1", "conv2", "conv3", "conv4"])
    image, losses = style_transfer(
        trunk,
        Normalizer([0.5] * 3, [0.5] * 3),
        content,
        style,
        "conv3",
        ["conv1", "conv2", "conv3", "conv4"],
        steps=20,
        progress=False,
    )
    assert image.shape == content.shape and 0 <= image.min() and image.max() <= 1
    assert losses["initial"]["content"] == 0.0  # it starts from the content image
    assert losses["final"]["loss"] < 0.5 * losses["initial"]["loss"], losses
    assert losses["final"]["style"] < losses["initial"]["style"]


def test_total_variation_weight_smooths_the_result():
    assert total_variation(torch.full((1, 3, 8, 8), 0.3)) == 0
    assert total_variation((torch.arange(64).view(1, 1, 8, 8) % 2).float()) == 1.0  # vertical stripes
    torch.manual_seed(0)
    trunk = freeze_for_probing(build_trunk("monogan", **SMALL_MONOGAN))
    content = torch.linspace(0.2, 0.8, 40).view(1, 1, 1, 40).expand(1, 3, 40, 40).clone()
    style = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0))  # its Gram matrices ask for noise
    normalize = Normalizer([0.5] * 3, [0.5] * 3)
    plain, _ = style_transfer(trunk, normalize, content, style, "conv3", ["conv1", "conv2"], steps=10, progress=False)
    smooth, losses = style_transfer(
        trunk, normalize, content, style, "conv3", ["conv1", "conv2"], steps=10, tv_weight=1e4, progress=False
    )
    assert total_variation(smooth) < 0.5 * total_variation(plain)
    assert "tv" in losses["final"]


def test_style_compares_trunks_side_by_side(tmp_path):
    ckpt = monogan_checkpoint(tmp_path / "c.pt")
    for name, colour in (("content.png", (200, 30, 30)), ("style.png", (20, 20, 220))):
        Image.new("RGB", (40, 30), colour).save(tmp_path / name)
    result = invoke_viz(
        "style",
        "--ckpt",
        ckpt,
        "--arch",
        "monogan",
        "--random-init",
        "--content",
        tmp_path / "content.png",
        "--style",
        tmp_path / "style.png",
        "--size",
        32,
        "--steps",
        3,
        "--tile",
        48,
        "--no-progress",
        "-o",
        tmp_path / "out.png",
    )
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out.png") as sheet:  # content, style and two results side by side
        assert sheet.width >= 4 * 48
    record = json.loads((tmp_path / "out.json").read_text())
    assert [r["trunk"] for r in record["results"]] == ["c (monogan, test)", "random monogan"]
    result = invoke_viz(
        "style",
        "--ckpt",
        ckpt,
        "--content",
        tmp_path / "content.png",
        "--style",
        tmp_path / "style.png",
        "--size",
        32,
        "--steps",
        2,
        "--no-progress",
        "-o",
        tmp_path / "one.png",
    )
    with Image.open(tmp_path / "one.png") as single:  # one trunk: the stylised image itself, content-sized
        assert single.size == (42, 32)
    result = invoke_viz(
        "style",
        "--ckpt",
        ckpt,
        "--ckpt",
        ckpt,
        "--content",
        tmp_path / "content.png",
        "--style",
        tmp_path / "style.png",
        "--size",
        32,
        "--steps",
        2,
        "--tile",
        48,
        "--no-inputs",
        "--no-progress",
        "-o",
        tmp_path / "two.png",
    )
    with Image.open(tmp_path / "two.png") as sheet:  # the two results only
        assert 2 * 48 <= sheet.width < 3 * 48
    help_text = invoke_viz("style", "--help").output
    assert "mono-viz style --ckpt" in help_text and "Examples" in help_text


def test_style_mistakes_are_one_line(tmp_path):
    ckpt = monogan_checkpoint(tmp_path / "c.pt")
    Image.new("RGB", (40, 30)).save(tmp_path / "content.png")
    result = invoke_viz(
        "style",
        "--ckpt",
        ckpt,
        "--content",
        tmp_path / "content.png",
        "--style",
        tmp_path / "absent.png",
        "-o",
        tmp_path / "out.png",
    )
    assert_one_line_viz_error(result, "--style image not found")
    (tmp_path / "style.txt").write_text("not an image")
    result = invoke_viz(
        "style",
        "--ckpt",
        ckpt,
        "--content",
        tmp_path / "content.png",
        "--style",
        tmp_path / "style.txt",
        "--content-layer",
        "conv2",
        "-o",
        tmp_path / "out.png",
    )
    assert_one_line_viz_error(result, "cannot read style image")
    result = invoke_viz(
        "style",
        "--ckpt",
        ckpt,
        "--content",
        tmp_path / "content.png",
        "--style",
        tmp_path / "content.png",
        "--content-layer",
        "conv7",
        "-o",
        tmp_path / "out.png",
    )
    assert_one_line_viz_error(result, "monogan has no block 'conv7'")
    assert not (tmp_path / "out.png").exists()
