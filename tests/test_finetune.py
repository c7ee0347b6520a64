"""mono-probe finetune: the network it builds, that it learns, what it keeps, resuming, and its one-line errors."""

import json

import pytest
import torch

import mono.probes.finetune as finetune_module
from helpers import assert_one_line_error, colour_folders, monogan_checkpoint
from mono.learning.checkpoint import load_checkpoint
from mono.learning.models import canonical_arch_args
from mono.probes.data import DataSpec
from mono.probes.finetune import SCHEDULES, FinetuneConfig, compressed, crop_and_flip, run_finetune
from mono.probes.finetune_model import build_network
from mono.probes.sources import load_source


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = colour_folders(tmp_path_factory.mktemp("colours"), train=24, val=12)
    return DataSpec(train=root / "train", val=root / "val")


@pytest.fixture(scope="module")
def source_ckpt(tmp_path_factory):
    return monogan_checkpoint(tmp_path_factory.mktemp("ckpt") / "source.pt")


def _config(out, data, **overrides):
    kwargs = dict(
        out=out, data=data, epochs=4, batch_size=8, lr=0.05, workers=0, threads=1, progress=False, probe_epochs=0
    )
    kwargs.update(overrides)
    return FinetuneConfig(**kwargs)


def _blocks(path):
    state = load_checkpoint(path).state_dict
    return {name: state[f"blocks.{name}.conv.weight"] for name in ("conv1", "conv2", "conv3", "conv4")}


def test_frozen_layers_stay_and_the_rest_learns_a_separable_problem(data, source_ckpt, tmp_path):
    results = run_finetune(_config(tmp_path / "run", data, ckpt=source_ckpt, keep="freeze", block="conv2"))
    assert results["top1"] >= 90.0  # reddish vs bluish: any working network separates them
    history = results["history"]
    assert history[-1]["train"]["loss"] < history[0]["train"]["loss"]
    assert results["network"]["frozen_blocks"] == ["conv1", "conv2"]
    assert results["network"]["trained_blocks"] == ["conv3", "conv4"]
    before, after = _blocks(source_ckpt), _blocks(tmp_path / "run" / "checkpoint.pt")
    assert torch.equal(before["conv1"], after["conv1"]) and torch.equal(before["conv2"], after["conv2"])
    assert not torch.equal(before["conv3"], after["conv3"])  # re-initialised, then trained
    table = (tmp_path / "run" / "results.md").read_text()
    # a tiny evaluation set: labelled not meaningful, no decimals; chance named
    assert f"| {results['top1']:.0f} |" in table and "kept frozen" in table and "Not meaningful" in table
    assert "Chance (top-1): 50.0 % (2 classes)" in table and "evaluation images, protocol cifar" in table
    assert (tmp_path / "run" / "accuracy.png").stat().st_size > 1000
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt").meta["finetune"]["mode"] == "freeze"


def test_init_trains_everything_then_probes_each_layer(data, source_ckpt, tmp_path):
    results = run_finetune(
        _config(tmp_path / "run", data, ckpt=source_ckpt, keep="init", block="conv2", probe_epochs=2)
    )
    before, after = _blocks(source_ckpt), _blocks(tmp_path / "run" / "checkpoint.pt")
    assert not torch.equal(before["conv1"], after["conv1"])  # a starting point, then trained
    assert results["network"]["kept_blocks"] == ["conv1", "conv2"] and results["network"]["frozen_blocks"] == []
    assert list(results["probes"]["layers"]) == ["conv1", "conv2", "conv3", "conv4"]
    probe_run = json.loads((tmp_path / "run" / "probes" / "results.json").read_text())
    assert probe_run["checkpoint"]["sha256"] == results["exported_checkpoint"]["sha256"]
    assert "Linear probes on the fine-tuned trunk" in (tmp_path / "run" / "results.md").read_text()


def test_an_interrupted_run_resumes_to_the_same_result(data, source_ckpt, tmp_path, monkeypatch):
    config = dict(ckpt=source_ckpt, keep="freeze", block="conv2", epochs=3)
    whole = run_finetune(_config(tmp_path / "whole", data, **config))
    train_epoch, calls = finetune_module._train_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train_epoch(*args, **kwargs)

    monkeypatch.setattr(finetune_module, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_finetune(_config(tmp_path / "cut", data, **config))
    monkeypatch.setattr(finetune_module, "_train_epoch", train_epoch)
    resumed = run_finetune(_config(tmp_path / "cut", data, **config))
    assert resumed["timing"]["resumed_from_epoch"] == 1
    assert resumed["history"] == whole["history"] and resumed["top1"] == whole["top1"]


def test_scattering_network_trains_only_what_follows_the_transform():
    net = build_network(load_source(None, "scattering", {}, 0), None, None, num_classes=3)
    assert net.trunk.block_names == ["conv3", "conv4"]
    assert net.trunk.blocks["conv3"].conv.in_channels == 243  # 3 colours x 81 coefficients of J=2
    # the rest is today's default monogan: PyTorch's init (biases in +-1/sqrt(fan_in), not zero), conv4 unpadded
    assert net.trunk.arch_args["monogan"] == canonical_arch_args("monogan")
    bias, fan_in = net.trunk.blocks["conv3"].conv.bias, 243 * 3 * 3
    assert torch.count_nonzero(bias) == len(bias) and bias.abs().max() <= fan_in**-0.5
    assert net.trunk.feature_shapes()["output"] == (512, 2, 2)  # 8x8 -> conv3 (stride 2) 4x4 -> conv4 (3x3) 2x2
    assert tuple(net(torch.rand(2, 3, 32, 32)).shape) == (2, 3)
    trainable = {name for name, p in net.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith(("trunk.blocks.", "head.")) for name in trainable)
    assert net.export_trunk(None) is None


def test_schedules_compress_in_proportion():
    assert SCHEDULES["imagenet"].milestones == (30, 60) and SCHEDULES["imagenet"].epochs == 90
    assert compressed(SCHEDULES["imagenet"], 45).milestones == (15, 30)
    assert compressed(SCHEDULES["cifar"], 3).milestones == (1, 2)
    assert compressed(SCHEDULES["cifar"], 30) == SCHEDULES["cifar"]


def test_crop_and_flip_takes_shifted_windows():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).view(2, 3, 8, 8)
    out = crop_and_flip(images, torch.Generator().manual_seed(0), padding=2)
    again = crop_and_flip(images, torch.Generator().manual_seed(0), padding=2)
    assert out.shape == images.shape and out.dtype == torch.uint8 and torch.equal(out, again)
    padded = torch.nn.functional.pad(images, (2,) * 4)
    for i in range(2):
        windows = [padded[i, :, y : y + 8, x : x + 8] for y in range(5) for x in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)


@pytest.fixture(scope="module")
def folder_args(tmp_path_factory):
    root = colour_folders(tmp_path_factory.mktemp("cli"), train=4, val=2)
    return ["--train", root / "train", "--val", root / "val"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--arch", "monogan", "--random-init", "--freeze", "conv2", "--init", "conv2"], "not both"),
        (["--arch", "monogan", "--random-init", "--init", "conv2"], "training from scratch; drop --init"),
        (["--arch", "scattering", "--freeze", "conv3"], "never trained"),
        (
            ["--arch", "monogan", "--random-init", "--freeze", "conv9", "--arch-args", "widths=4,4,4,4"],
            "monogan has no block 'conv9'",
        ),
    ],
)
def test_option_mistakes_are_one_line(probe_cli, folder_args, tmp_path, args, fragment):
    proc = probe_cli("finetune", *args, *folder_args, "--out", tmp_path / "run")
    assert_one_line_error(proc, "mono-probe", fragment)
    assert not (tmp_path / "run").exists()


def test_checkpoint_mistakes_are_one_line(probe_cli, folder_args, source_ckpt, tmp_path):
    proc = probe_cli("finetune", "--ckpt", source_ckpt, *folder_args, "--out", tmp_path / "run")
    assert_one_line_error(proc, "mono-probe", "--freeze BLOCK (Table 4) or --init BLOCK (Table 5)")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    proc = probe_cli("finetune", "--ckpt", junk, "--freeze", "conv2", *folder_args, "--out", tmp_path / "run")
    assert_one_line_error(proc, "mono-probe", "is not a mono checkpoint")
    assert not (tmp_path / "run").exists()


def test_help_has_examples(probe_cli):
    proc = probe_cli("finetune", "--help")
    assert proc.returncode == 0 and "--freeze conv2" in proc.stdout and "--init conv2" in proc.stdout
    assert "mono-probe finetune --arch scattering" in proc.stdout
