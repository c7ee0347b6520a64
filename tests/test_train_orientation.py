"""mono-train tells its user where a run stands: a header once the data is open, the whole run's remaining time,
and at the end the checkpoint and the command that probes it; paper-scale defaults refused on tiny data name
values that work (issue 17)."""

from __future__ import annotations

import re
import shlex

import pytest

from helpers import TINY, assert_one_line_error, run_tool, tiny_dataset, train
from mono.learning.errors import UserError

NARROW = ["--arch-args", "widths=8,16,24,32"]
FAST = ["--epochs", 2, "--batch-size", 16, "--workers", 0, *NARROW]
METHODS = {
    "rotnet": ["--arch", "monogan"],
    "deepcluster": ["--arch", "monogan", "--k", 4, "--pca", 8],
    "supervised": ["--arch", "monogan", "--lr", 0.01],
    "monogan": ["--gen-width", 8, "--n-critic", 2],
    "bigan": ["--arch", "monogan", "--gen-width", 8, "--disc-width", 8, "--latent-dim", 16],
}


@pytest.fixture(scope="module")
def data32(source_images, tmp_path_factory):
    from helpers import mono_gen

    out = tmp_path_factory.mktemp("orient") / "three"
    mono_gen("--source", source_images, "--samples", 64, "--size", 32, "--shard-size", 32, "--out", out)
    return out


@pytest.mark.parametrize("method", list(METHODS))
def test_a_run_says_what_it_trains_and_ends_with_the_next_command(method, data32, tmp_path, capsys):
    run = tmp_path / "run"
    train(method, "--data", data32, "--out", run, *FAST, *METHODS[method])
    out = capsys.readouterr().out
    assert f"mono-train {method}: cpu (CPU), fp32; data {data32}: 64 samples of 32 px" in out
    per_epoch = 64 // 16 if method != "deepcluster" else 64 // 16  # --reassign 1: one pass over the clusters
    assert f"{per_epoch} steps per epoch of 16 per process, 2 epochs = {2 * per_epoch} steps -> {run}" in out
    assert f"mono-train {method}: checkpoint: {run / 'checkpoint.pt'}" in out
    (next_line,) = [line for line in out.splitlines() if line.startswith("next: ")]
    words = shlex.split(next_line[len("next: ") :])
    assert words[:2] == ["mono-probe", "linear"]
    assert words[words.index("--ckpt") + 1] == str(run / "checkpoint.pt")
    assert (run / "checkpoint.pt").is_file()
    assert words[words.index("--protocol") + 1] == "cifar"  # the 32 px trunk
    assert "--train" in words and "--val" in words and "--out" in words


def test_quiet_hides_the_header_and_keeps_the_checkpoint_and_next_command(data32, tmp_path, capsys):
    run = tmp_path / "run"
    train("rotnet", "--data", data32, "--out", run, *FAST, *METHODS["rotnet"], "--quiet")
    out = capsys.readouterr().out
    assert "steps per epoch" not in out
    assert f"mono-train rotnet: checkpoint: {run / 'checkpoint.pt'}" in out
    assert any(line.startswith("next: mono-probe linear") for line in out.splitlines())


def test_the_epoch_lines_carry_the_whole_runs_remaining_time(data32, tmp_path, capsys):
    train("rotnet", "--data", data32, "--out", tmp_path / "run", *FAST, *METHODS["rotnet"], "--epochs", 3)
    epochs = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rotnet: epoch")]
    assert len(epochs) == 3
    assert all(re.search(r"run ends in \d+", line) for line in epochs[:2]), epochs
    assert "run ends in" not in epochs[2]  # the last epoch's line: nothing remains


def test_a_resumed_run_counts_the_steps_done(data32, tmp_path, capsys):
    run = tmp_path / "run"
    train("rotnet", "--data", data32, "--out", run, *FAST, *METHODS["rotnet"], "--epochs", 1)
    capsys.readouterr()
    train("rotnet", "--data", data32, "--out", run, *FAST, *METHODS["rotnet"], "--resume")
    out = capsys.readouterr().out
    assert "4 steps per epoch of 16 per process, 2 epochs = 8 steps (4 done)" in out
    assert f"checkpoint: {run / 'checkpoint.pt'}" in out


def test_an_alexnet_run_names_the_imagenet_probe(source_image, tmp_path, capsys):
    data = tiny_dataset(tmp_path, source_image, samples=16)
    loud = [a for a in TINY if a != "--quiet"]  # the header is orientation, which --quiet hides
    train("rotnet", "--data", data, "--out", tmp_path / "run", *loud, "--steps-per-epoch", 1)
    out = capsys.readouterr().out
    assert "1 steps per epoch of 8 per process, 1 epochs = 1 steps" in out
    (next_line,) = [line for line in out.splitlines() if line.startswith("next: ")]
    assert f"--ckpt {tmp_path / 'run' / 'checkpoint.pt'}" in next_line and "--protocol" not in next_line


@pytest.mark.parametrize(
    ("method", "args", "expected"),
    [
        ("rotnet", ["--crop", 224], "--crop 224 is larger than the dataset's 32 px images ({data}); alexnet needs "
         "crops of at least 63 px: use --arch monogan for such small images"),
        ("rotnet", ["--arch", "monogan", "--crop", 48], "--crop 48 is larger than the dataset's 32 px images padded by "
         "4 ({data}); use --crop 32 (at most 40)"),
        ("deepcluster", ["--arch", "monogan", "--k", 10000], "--k 10000 clusters need at least 10,000 samples; "
         "{data} has 64: try --k 6"),
        ("supervised", ["--arch", "monogan", "--batch-size", 1000], "--batch-size 1000 is larger than the 64 samples "
         "of {data}: no epoch has a full batch; use --batch-size 16 (at most 64)"),
        ("monogan", ["--image-size", 64], "--image-size 64 is larger than the dataset's 32 px images; use "
         "--image-size 32 or less"),
        ("bigan", [], "--image-size 128 is larger than the dataset's 32 px images; alexnet needs at least 63 px: "
         "use --arch monogan for such small images"),
    ],
)  # fmt: skip
def test_paper_scale_values_on_tiny_data_are_refused_with_values_that_work(method, args, expected, data32, tmp_path):
    with pytest.raises(UserError) as refused:
        train(method, "--data", data32, "--out", tmp_path / "run", "--workers", 0, "--quiet", *NARROW, *args)
    assert str(refused.value) == expected.format(data=data32)
    assert not (tmp_path / "run").exists()


def test_a_crop_too_large_for_alexnet_names_the_largest_that_fits(source_image, tmp_path):
    data = tiny_dataset(tmp_path, source_image, samples=16)  # 72 px
    result = run_tool("mono.trainers.cli", "rotnet", "--data", data, "--out", tmp_path / "run", "--crop", 224)
    expected = f"--crop 224 is larger than the dataset's 72 px images ({data}); use --crop 63 (at most 72)"
    assert_one_line_error(result, "mono-train rotnet", expected)
    with pytest.raises(UserError) as refused:  # BiGAN's 128 px images and 112 px crops
        train("bigan", "--data", data, "--out", tmp_path / "run", "--workers", 0)
    assert str(refused.value).endswith("use --image-size 72 --crop 63 (and --gen-size at most the crop)")
