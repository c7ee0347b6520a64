"""BatchNorm absorption: the frozen trunk the probes read computes what the trained trunk computes."""

import torch
import torch.nn as nn

from mono.learning.models import build_trunk
from mono.probes.features import absorb_batchnorm, freeze_for_probing


def _trained_looking_alexnet() -> nn.Module:
    """An alexnet whose BatchNorms hold non-trivial statistics and affine parameters, as after training."""
    torch.manual_seed(0)
    trunk = build_trunk("alexnet")
    for module in trunk.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.2, 3.0)
            module.weight.data.uniform_(0.5, 2.0)
            module.bias.data.uniform_(-0.3, 0.3)
    return trunk.eval()


def test_absorption_leaves_every_block_output_unchanged():
    trunk = _trained_looking_alexnet()
    x = torch.randn(3, 3, 96, 96)
    with torch.no_grad():
        before = trunk.forward_features(x)
        frozen = freeze_for_probing(trunk)
        after = frozen.forward_features(x)
        assert torch.allclose(frozen(x), trunk(x), rtol=1e-4, atol=1e-5)
    for name in trunk.block_names:
        assert torch.allclose(after[name], before[name], rtol=1e-4, atol=1e-5), name
        assert before[name].abs().max() > 0.1  # the comparison is not between two zero maps


def test_absorption_removes_batchnorm_and_freezes_a_copy():
    trunk = _trained_looking_alexnet()
    original = {k: v.clone() for k, v in trunk.state_dict().items()}
    frozen = freeze_for_probing(trunk)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())
    assert not frozen.training
    assert not any(p.requires_grad for p in frozen.parameters())
    assert all(torch.equal(v, trunk.state_dict()[k]) for k, v in original.items())  # source untouched


def test_absorption_changes_nothing_without_batchnorm():
    torch.manual_seed(1)
    trunk = build_trunk("monogan").eval()
    before = {k: v.clone() for k, v in trunk.state_dict().items()}
    absorb_batchnorm(trunk)
    assert all(torch.equal(v, trunk.state_dict()[k]) for k, v in before.items())
