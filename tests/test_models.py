"""The trunk architectures: layer geometry, the tap points, the Sobel input, activations and init."""

import math

import pytest
import torch
import torch.nn as nn

from mono.learning.errors import UserError
from mono.learning.models import LEAKY_RELU_SLOPE, build_trunk, canonical_arch_args, parse_arch_args, stored_arch_args


def test_alexnet_blocks_follow_deepcluster_geometry():
    trunk = build_trunk("alexnet").eval()
    assert trunk.block_names == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    convs = [trunk.blocks[name].conv for name in trunk.block_names]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert [c.kernel_size[0] for c in convs] == [11, 5, 3, 3, 3]
    assert [c.stride[0] for c in convs] == [4, 1, 1, 1, 1]
    assert all(isinstance(trunk.blocks[name].norm, nn.BatchNorm2d) for name in trunk.block_names)
    assert sorted(trunk.pools) == ["conv1", "conv2", "conv5"]
    with torch.no_grad():
        feats = trunk.forward_features(torch.randn(2, 3, 224, 224))
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
        "conv1": (96, 55, 55),
        "conv2": (256, 27, 27),
        "conv3": (384, 13, 13),
        "conv4": (384, 13, 13),
        "conv5": (256, 13, 13),
    }


def test_monogan_blocks_are_the_papers_small_encoder():
    trunk = build_trunk("monogan").eval()
    assert trunk.block_names == ["conv1", "conv2", "conv3", "conv4"]
    convs = [trunk.blocks[name].conv for name in trunk.block_names]
    assert [c.kernel_size[0] for c in convs] == [7, 5, 3, 3]
    assert [c.stride[0] for c in convs] == [3, 2, 2, 1]
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)) for m in trunk.modules())
    with torch.no_grad():
        feats = trunk.forward_features(torch.randn(2, 3, 32, 32))
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
        "conv1": (64, 11, 11),
        "conv2": (128, 6, 6),
        "conv3": (256, 3, 3),
        "conv4": (512, 1, 1),
    }


def test_trunk_output_is_the_last_block_after_its_pool():
    x = torch.randn(2, 3, 32, 32)
    monogan = build_trunk("monogan").eval()
    with torch.no_grad():
        assert torch.equal(monogan(x), monogan.forward_features(x)["conv4"])
    alexnet = build_trunk("alexnet").eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        out = alexnet(x)
        assert out.shape == (1, 256, 6, 6)
        assert torch.equal(out, nn.functional.max_pool2d(alexnet.forward_features(x)["conv5"], 3, 2))


def test_feature_shapes_size_heads_without_touching_batchnorm():
    trunk = build_trunk("alexnet").train()
    before = trunk.blocks["conv1"].norm.running_mean.clone()
    shapes = trunk.feature_shapes()
    assert shapes["conv1"] == (96, 55, 55) and shapes["output"] == (256, 6, 6)
    assert trunk.training and torch.equal(trunk.blocks["conv1"].norm.running_mean, before)
    assert build_trunk("monogan").feature_shapes()["output"] == (512, 1, 1)


def test_inputs_too_small_for_the_trunk_name_the_smallest_that_works():
    trunk = build_trunk("alexnet")
    with pytest.raises(UserError, match="at least 63×63 px"):
        trunk.feature_shapes(56)
    assert trunk.feature_shapes(63)["output"][1:] == (1, 1)


def test_forward_features_stops_at_upto():
    trunk = build_trunk("monogan").eval()
    with torch.no_grad():
        feats = trunk.forward_features(torch.randn(1, 3, 32, 32), upto="conv2")
    assert list(feats) == ["conv1", "conv2"]
    with pytest.raises(KeyError):
        trunk.forward_features(torch.randn(1, 3, 32, 32), upto="conv9")


def test_features_are_taken_after_the_activation():
    relu = build_trunk("monogan", activation="relu").eval()
    leaky = build_trunk("monogan").eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert all((f >= 0).all() for f in relu.forward_features(x).values())
        leaky_feats = leaky.forward_features(x)
    assert all((f < 0).any() for f in leaky_feats.values())
    assert isinstance(leaky.blocks["conv1"].act, nn.LeakyReLU)
    assert leaky.blocks["conv1"].act.negative_slope == LEAKY_RELU_SLOPE == 0.2


def test_sobel_input_is_fixed_and_not_stored():
    trunk = build_trunk("alexnet", sobel=True)
    assert trunk.in_channels == 2 and trunk.blocks["conv1"].conv.in_channels == 2
    assert list(trunk.stem.parameters()) == []
    assert not any(key.startswith("stem") for key in trunk.state_dict())
    # a horizontal ramp: constant horizontal gradient, no vertical one (away from the zero-padded border)
    ramp = torch.arange(16.0).repeat(16, 1).expand(1, 3, 16, 16)
    edges = trunk.stem(ramp)[0, :, 2:-2, 2:-2]
    assert torch.allclose(edges[0], torch.full_like(edges[0], -8.0), atol=1e-5)
    assert torch.allclose(edges[1], torch.zeros_like(edges[1]), atol=1e-5)


def test_alexnet_init_is_deepclusters():
    torch.manual_seed(0)
    trunk = build_trunk("alexnet")
    for block in trunk.blocks.values():
        conv = block.conv
        expected = math.sqrt(2.0 / (conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels))
        assert conv.weight.std().item() == pytest.approx(expected, rel=0.05)
        assert torch.count_nonzero(conv.bias) == 0
        assert torch.equal(block.norm.weight, torch.ones_like(block.norm.weight))


def test_monogan_wgan_gp_init_is_tflib_he_uniform():
    torch.manual_seed(0)
    trunk = build_trunk("monogan", init="wgan_gp")
    for block in trunk.blocks.values():
        conv = block.conv
        k = conv.kernel_size[0] * conv.kernel_size[1]
        bound = math.sqrt(3 * 4.0 / (conv.in_channels * k + conv.out_channels * k / conv.stride[0] ** 2))
        assert conv.weight.abs().max().item() <= bound
        assert conv.weight.abs().max().item() > 0.95 * bound
        assert conv.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
        assert torch.count_nonzero(conv.bias) == 0


def test_init_follows_the_seed():
    torch.manual_seed(3)
    a = build_trunk("monogan").state_dict()
    torch.manual_seed(3)
    b = build_trunk("monogan").state_dict()
    torch.manual_seed(4)
    c = build_trunk("monogan").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["blocks.conv1.conv.weight"], c["blocks.conv1.conv.weight"])


@pytest.mark.parametrize(
    "arch, args, message",
    [
        ("vgg16", {}, "unknown architecture 'vgg16'"),
        ("monogan", {"sobel": True}, "monogan takes no argument 'sobel'"),
        ("alexnet", {"activation": "tanh"}, "unknown activation 'tanh'"),
        ("alexnet", {"sobel": "yes"}, "sobel must be true or false"),
        ("monogan", {"widths": [64, 128, 256]}, "widths must be 4 integers >= 1"),
        ("monogan", {"widths": [64, 0, 256, 512]}, "widths must be 4 integers >= 1"),
        ("monogan", {"padding": [3, 2, 1, -1]}, "padding must be 4 integers >= 0"),
        ("monogan", {"padding": [0, 0, 0, 0]}, "leaves no conv4 output"),
        ("monogan", {"init": "xavier"}, "unknown init 'xavier'"),
        ("alexnet", {"init": "torch"}, "alexnet takes no argument 'init'"),
    ],
)
def test_bad_architecture_arguments_are_user_errors(arch, args, message):
    with pytest.raises(UserError, match=message):
        build_trunk(arch, **args)


def test_canonical_arch_args_fill_defaults():
    assert canonical_arch_args("alexnet") == {"sobel": False, "activation": "relu"}
    assert set(canonical_arch_args("monogan")) == {"activation", "widths", "padding", "init"}
    assert build_trunk("alexnet", sobel=True).arch_args == {"sobel": True, "activation": "relu"}
    assert build_trunk("monogan", widths=(8, 16, 24, 32)).arch_args["widths"] == [8, 16, 24, 32]


def test_arguments_missing_from_an_old_checkpoint_keep_their_old_meaning():
    # checkpoints written before widths, padding and init existed stored only the activation
    assert stored_arch_args("monogan", {"activation": "leaky_relu"}) == {
        "activation": "leaky_relu",
        "widths": [64, 128, 256, 512],
        "padding": [3, 2, 1, 1],
        "init": "wgan_gp",
    }
    assert stored_arch_args("monogan", {"activation": "relu", "init": "torch"})["init"] == "torch"


def test_monogan_widths_and_padding_shape_the_features():
    trunk = build_trunk("monogan", widths=[96, 256, 384, 384], padding=[0, 2, 1, 1]).eval()
    with torch.no_grad():
        feats = trunk.forward_features(torch.randn(2, 3, 32, 32))
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
        "conv1": (96, 9, 9),
        "conv2": (256, 5, 5),
        "conv3": (384, 3, 3),
        "conv4": (384, 3, 3),
    }


def test_monogan_default_init_is_pytorchs_with_random_biases():
    torch.manual_seed(0)
    trunk = build_trunk("monogan")
    assert trunk.arch_args["init"] == "torch"
    for block in trunk.blocks.values():
        conv = block.conv
        bound = 1 / math.sqrt(conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1])
        # kaiming_uniform_(a=sqrt(5)) draws weights from U(-bound, bound); biases from the same range
        assert conv.weight.abs().max().item() <= bound and conv.weight.abs().max().item() > 0.95 * bound
        assert conv.bias.abs().max().item() <= bound and torch.count_nonzero(conv.bias) == conv.out_channels


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", {}),
        ("widths=96,256,384,384 init=torch", {"widths": [96, 256, 384, 384], "init": "torch"}),
        ("sobel=true activation=relu", {"sobel": True, "activation": "relu"}),
        ("  padding=0,2,1,1  ", {"padding": [0, 2, 1, 1]}),
    ],
)
def test_arch_args_parse_from_the_command_line(text, expected):
    assert parse_arch_args(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("widths", "expected key=value pairs"),
        ("widths=", "expected key=value pairs"),
        ("widths=a,b", "widths must be integers separated by commas"),
    ],
)
def test_bad_arch_args_text_is_a_user_error(text, message):
    with pytest.raises(UserError, match=message):
        parse_arch_args(text)
