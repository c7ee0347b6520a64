"""Probe heads and protocols: the paper's pooled dimensions, the schedule, protocol/architecture checks."""

import pytest
import torch
import torch.nn as nn

from mono.learning.errors import UserError
from mono.learning.models import build_trunk
from mono.probes.features import freeze_for_probing
from mono.probes.heads import build_probes
from mono.probes.protocols import PROTOCOLS, Schedule, check_protocol


def test_alexnet_layers_pool_to_the_papers_dimensions_for_224_inputs():
    trunk = freeze_for_probing(build_trunk("alexnet"))
    probes = build_probes(trunk, PROTOCOLS["imagenet"], num_classes=1000)
    assert [p.in_features for p in probes.probes.values()] == [9600, 9216, 9600, 9600, 9216]
    with torch.no_grad():
        reduced = probes.reduce(trunk.forward_features(torch.randn(2, 3, 224, 224)))
        logits = probes.classify(reduced)
    assert [z[0].numel() for z in reduced.values()] == [9600, 9216, 9600, 9600, 9216]
    assert all(out.shape == (2, 1000) for out in logits.values())
    assert all(isinstance(p.reduce, nn.MaxPool2d) for p in probes.probes.values())


def test_cifar_protocol_keeps_every_dimension():
    trunk = freeze_for_probing(build_trunk("monogan"))
    probes = build_probes(trunk, PROTOCOLS["cifar"], num_classes=10)
    assert probes.layers == ["conv1", "conv2", "conv3", "conv4"]
    assert [p.in_features for p in probes.probes.values()] == [64 * 121, 128 * 36, 256 * 9, 512]
    probe = probes.probes["conv1"]
    assert isinstance(probe.reduce, nn.Identity)
    assert isinstance(probe.norm, nn.BatchNorm2d) and not probe.norm.affine
    assert torch.count_nonzero(probe.linear.bias) == 0


def test_schedule_divides_the_rate_by_5_at_epochs_5_15_25():
    schedule = Schedule()
    assert (schedule.epochs, schedule.momentum, schedule.lr) == (36, 0.9, 0.01)
    rates = [schedule.lr_at(e) for e in range(36)]
    assert rates[:5] == [0.01] * 5
    assert rates[5:15] == pytest.approx([0.002] * 10)
    assert rates[15:25] == pytest.approx([0.0004] * 10)
    assert rates[25:] == pytest.approx([0.00008] * 11)


def test_each_architecture_accepts_only_its_protocol():
    assert check_protocol("alexnet", "imagenet").input_size == 224
    assert check_protocol("monogan", "cifar").input_size == 32
    with pytest.raises(UserError, match="alexnet needs the imagenet protocol"):
        check_protocol("alexnet", "cifar")
    with pytest.raises(UserError, match="monogan needs the cifar protocol"):
        check_protocol("monogan", "imagenet")
    with pytest.raises(UserError, match="unknown protocol 'places'"):
        check_protocol("alexnet", "places")
