"""mono-probe linear --arch-args and --flip from the command line: recorded in results.json, mistakes in one line."""

import json

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    """Two classes of 32-px images (reddish vs bluish noise), 24 training and 8 evaluation images each."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for split, count in (("train", 24), ("val", 8)):
        for cls, channel in (("red", 0), ("blue", 2)):
            (root / split / cls).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 120, (32, 32, 3), dtype=np.uint8)
                pixels[..., channel] += 120
                Image.fromarray(pixels).save(root / split / cls / f"{i}.png")
    return ["--train", root / "train", "--val", root / "val"]


def _results(run):
    return json.loads((run / "results.json").read_text())


def test_arch_args_and_flips_reach_the_trunk_and_the_record(probe_cli, tiny_folders, tmp_path):
    common = [
        "linear",
        "--arch",
        "monogan",
        "--random-init",
        *tiny_folders,
        "--epochs",
        2,
        "--batch-size",
        16,
        "--workers",
        0,
        "--threads",
        1,
        "--no-progress",
    ]
    proc = probe_cli(
        *common,
        "--arch-args",
        "widths=8,16,24,32 init=torch",
        "--activation",
        "relu",
        "--flip",
        "--out",
        tmp_path / "flip",
    )
    assert proc.returncode == 0, proc.stderr
    config = _results(tmp_path / "flip")["config"]
    assert config["arch_args"] == {
        "activation": "relu",
        "widths": [8, 16, 24, 32],
        "padding": [3, 2, 1, 0],
        "init": "torch",
    }
    assert config["flip"] is True
    assert config["feature_dims"] == {"conv1": 8 * 11 * 11, "conv2": 16 * 6 * 6, "conv3": 24 * 9, "conv4": 32}
    proc = probe_cli(
        *common,
        "--arch-args",
        "widths=8,16,24,32 init=torch",
        "--activation",
        "relu",
        "--no-flip",
        "--out",
        tmp_path / "plain",
    )
    assert proc.returncode == 0, proc.stderr
    assert _results(tmp_path / "plain")["config"]["flip"] is False
    flipped, plain = _results(tmp_path / "flip")["history"], _results(tmp_path / "plain")["history"]
    assert flipped[0]["train"] != plain[0]["train"]  # the flipped views were trained on
    # the same command with the other flip setting is a different run, not a continuation
    proc = probe_cli(
        *common,
        "--arch-args",
        "widths=8,16,24,32 init=torch",
        "--activation",
        "relu",
        "--no-flip",
        "--out",
        tmp_path / "flip",
    )
    assert proc.returncode == 2 and "differs in: flip" in proc.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--arch-args", "widths=8,16"], "widths must be 4 integers"),
        (["--arch-args", "depth=5"], "monogan takes no argument 'depth'"),
        (["--arch-args", "activation=relu", "--activation", "relu"], "--activation and --arch-args"),
        (["--arch-args", "oops"], "expected key=value pairs"),
    ],
)
def test_bad_arch_args_are_one_line_errors(probe_cli, tiny_folders, tmp_path, args, fragment):
    proc = probe_cli("linear", "--arch", "monogan", "--random-init", *tiny_folders, *args, "--out", tmp_path / "r")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and fragment in lines[0], proc.stderr
    assert not (tmp_path / "r").exists()
