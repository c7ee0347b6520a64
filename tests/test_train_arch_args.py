"""mono-train monogan --arch-args: the critic's trunk is built as asked and the checkpoint says so."""

from __future__ import annotations

import pytest

from helpers import assert_one_line_error, run_tool, tiny_dataset, train
from mono.generator.sources import embedded_default
from mono.learning.checkpoint import load_trunk


@pytest.fixture(scope="module")
def data32(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("arch32"), embedded_default(), samples=64, size=32)


def test_the_critic_trunk_takes_arch_args(data32, tmp_path):
    run = tmp_path / "run"
    train(
        "monogan",
        "--data",
        data32,
        "--out",
        run,
        "--epochs",
        1,
        "--workers",
        0,
        "--quiet",
        "--batch-size",
        16,
        "--n-critic",
        2,
        "--gen-width",
        8,
        "--steps-per-epoch",
        2,
        "--arch-args",
        "widths=8,16,24,32 activation=relu init=torch",
    )
    trunk, ckpt = load_trunk(run / "checkpoint.pt")
    assert ckpt.arch_args == {"activation": "relu", "widths": [8, 16, 24, 32], "padding": [3, 2, 1, 0], "init": "torch"}
    assert [block.conv.out_channels for block in trunk.blocks.values()] == [8, 16, 24, 32]


def test_bad_arch_args_are_one_line_errors(data32, tmp_path):
    result = run_tool("mono.trainers.monogan", "--data", data32, "--out", tmp_path / "run", "--arch-args", "widths=1,2")
    assert_one_line_error(result, "mono-train monogan", "widths must be 4 integers")
    assert not (tmp_path / "run").exists()
