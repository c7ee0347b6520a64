"""The scattering trunk: kymatio's transform with the trunk interface, its shapes, and probes on it."""

import json

import pytest
import torch

from helpers import assert_one_line_error
from helpers import colour_folders as colour_folders_in
from mono.learning.errors import UserError
from mono.learning.models import build_trunk, canonical_arch_args
from mono.learning.scattering import ScatteringTrunk, scattering_channels
from mono.probes.heads import build_probes
from mono.probes.protocols import PROTOCOLS


@pytest.fixture(scope="module")
def scattering32():
    return build_trunk("scattering")


def test_channel_counts_follow_the_scattering_orders():
    # 1 + J*L, then L*L*J*(J-1)/2 more: the counts of Oyallon et al. (81 at J=2, 417 at J=4 with L=8)
    assert scattering_channels(2, 8, max_order=1) == 17
    assert scattering_channels(2, 8) == 81
    assert scattering_channels(4, 8) == 417


def test_output_shapes_at_32_px(scattering32):
    shapes = {"conv1": (3 * 17, 8, 8), "conv2": (3 * 81, 8, 8)}
    assert scattering32.feature_shapes() == {**shapes, "output": shapes["conv2"]}
    features = scattering32.forward_features(torch.rand(2, 3, 32, 32))
    assert {name: tuple(f.shape[1:]) for name, f in features.items()} == shapes
    assert tuple(scattering32(torch.rand(2, 3, 32, 32)).shape) == (2, 243, 8, 8)
    assert list(scattering32.forward_features(torch.rand(1, 3, 32, 32), upto="conv1")) == ["conv1"]


def test_conv1_is_the_first_order_part_of_conv2(scattering32):
    x = torch.rand(2, 3, 32, 32)
    features = scattering32.forward_features(x)
    per_colour = features["conv2"].view(2, 3, 81, 8, 8)
    assert torch.equal(features["conv1"].view(2, 3, 17, 8, 8), per_colour[:, :, :17])
    # order 0 is the local average: a constant image gives a constant order-0 map and no wavelet energy
    flat = scattering32.forward_features(torch.full((1, 3, 32, 32), 0.5))["conv2"].view(3, 81, 8, 8)
    assert flat[:, 0].std() < 1e-4 and flat[:, 1:].abs().max() < 1e-4


def test_the_224_px_setting_uses_j4_and_keeps_14_px_maps():
    assert canonical_arch_args("scattering", size=224) == {"size": 224, "J": 4, "L": 8}
    trunk = ScatteringTrunk.__new__(ScatteringTrunk)  # shapes are arithmetic: no need for 224-px filters
    trunk.J, trunk.L, trunk.input_size = 4, 8, 224
    assert trunk.feature_shapes()["conv2"] == (3 * 417, 14, 14)
    # the imagenet protocol max-pools each layer to the square grid closest to ~9k dimensions
    probes = build_probes(trunk, PROTOCOLS["imagenet"], num_classes=10)
    assert {name: p.in_features for name, p in probes.probes.items()} == {"conv1": 99 * 10 * 10, "conv2": 1251 * 3 * 3}


def test_nothing_is_learned_or_stored(scattering32):
    assert list(scattering32.parameters()) == [] and scattering32.state_dict() == {}
    assert len(list(scattering32.buffers())) > 0  # the filters still move with .to(device)


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"size": 64}, "size must be 32"),
        ({"J": 6}, r"divisible by 2\^J"),
        ({"L": 0}, "L must be an integer >= 1"),
        ({"widths": [1, 2, 3, 4]}, "scattering takes no argument 'widths'"),
    ],
)
def test_bad_arguments(args, fragment):
    with pytest.raises(UserError, match=fragment):
        canonical_arch_args("scattering", **args)


def test_wrong_image_size_is_a_user_error(scattering32):
    with pytest.raises(UserError, match="takes 32x32 images"):
        scattering32(torch.rand(1, 3, 40, 40))
    with pytest.raises(UserError, match="size=224"):
        scattering32.feature_shapes(224)


@pytest.fixture(scope="module")
def colour_folders(tmp_path_factory):
    root = colour_folders_in(tmp_path_factory.mktemp("colours"))
    return ["--train", root / "train", "--val", root / "val"]


def test_linear_probes_on_the_scattering(probe_cli, colour_folders, tmp_path):
    proc = probe_cli(
        "linear",
        "--arch",
        "scattering",
        *colour_folders,
        "--epochs",
        3,
        "--batch-size",
        8,
        "--workers",
        0,
        "--threads",
        1,
        "--no-progress",
        "--out",
        tmp_path / "run",
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["feature_dims"] == {"conv1": 51 * 64, "conv2": 243 * 64}
    assert results["config"]["arch_args"] == {"size": 32, "J": 2, "L": 8}
    assert results["layers"]["conv1"]["top1"] == 100.0  # colour is in the order-0 averages
    assert "fixed, not learned" in (tmp_path / "run" / "results.md").read_text()


def test_scattering_for_the_other_protocol_is_one_line(probe_cli, colour_folders, tmp_path):
    proc = probe_cli(
        "linear",
        "--arch",
        "scattering",
        "--arch-args",
        "size=32",
        "--protocol",
        "imagenet",
        *colour_folders,
        "--out",
        tmp_path / "run",
    )
    assert_one_line_error(proc, "mono-probe", "needs the cifar protocol", "size=224")
    assert not (tmp_path / "run").exists()
