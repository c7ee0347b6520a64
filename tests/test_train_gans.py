"""BiGAN and MonoGAN on tiny generated datasets: probe-ready checkpoints, finite losses, generated image grids,
exact resumes, and divergence that stops cleanly."""

from __future__ import annotations

import json
import math
import os
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import assert_one_line_error, metrics, run_tool, seen_by_rank, tiny_dataset, torchrun, train
from mono.learning.checkpoint import load_checkpoint, load_trunk, save_checkpoint
from mono.learning.errors import UserError
from mono.learning.models import build_trunk
from mono.trainers import sample

COMMON = ["--epochs", 1, "--workers", 0, "--quiet", "--log-every", 1]
MONOGAN = [*COMMON, "--batch-size", 16, "--n-critic", 2, "--gen-width", 16]
# BiGAN scaled down: 64 px crops of 72 px images, 32 px generated images, small z and narrow G and D.
BIGAN = [
    *COMMON,
    "--batch-size",
    8,
    "--image-size",
    72,
    "--crop",
    64,
    "--gen-size",
    32,
    "--latent-dim",
    16,
    "--gen-width",
    8,
    "--disc-width",
    8,
]


@pytest.fixture(scope="module")
def data32(source_image, tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("gan32"), source_image, samples=128, size=32)


@pytest.fixture(scope="module")
def data72(source_image, tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("gan72"), source_image, samples=128, size=72)


@pytest.fixture(scope="module")
def monogan_run(data32, tmp_path_factory):
    run = tmp_path_factory.mktemp("monogan") / "run"
    train("monogan", "--data", data32, "--out", run, *MONOGAN, "--steps-per-epoch", 4)
    return run


@pytest.fixture(scope="module")
def bigan_run(data72, tmp_path_factory):
    run = tmp_path_factory.mktemp("bigan") / "run"
    train("bigan", "--data", data72, "--out", run, *BIGAN, "--steps-per-epoch", 3)
    return run


def test_monogan_checkpoint_is_probed_by_mono_probe(monogan_run, labelled_images, tmp_path):
    trunk, ckpt = load_trunk(monogan_run / "checkpoint.pt")
    assert (ckpt.method, ckpt.arch, ckpt.epoch) == ("monogan", "monogan", 1)
    assert ckpt.normalization == {"mean": [0.5] * 3, "std": [0.5] * 3}
    assert ckpt.extra["architectures"]["generator"]["arch_args"]["prior"] == "normal"
    assert set(ckpt.extra["modules"]) == {"critic_head", "generator"}
    assert ckpt.extra["state"] == {"generator_steps": 2, "step": 4}
    result = run_tool(
        "mono.probes.cli",
        "linear",
        "--ckpt",
        monogan_run / "checkpoint.pt",
        "--train",
        labelled_images / "train",
        "--val",
        labelled_images / "test",
        "--train-limit",
        100,
        "--val-limit",
        50,
        "--epochs",
        1,
        "--workers",
        0,
        "--no-progress",
        "-o",
        tmp_path / "probe",
    )
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "probe" / "results.json").read_text())
    assert list(results["layers"]) == ["conv1", "conv2", "conv3", "conv4"]
    assert results["checkpoint"]["method"] == "monogan"


def test_monogan_losses_stay_finite_and_the_critic_learns(monogan_run):
    rows = metrics(monogan_run)
    steps, summary = rows[:-1], rows[-1]
    assert [int(r["step"]) for r in steps] == [1, 2, 3, 4]
    for row in rows:
        for name in ("critic_loss", "wasserstein", "gradient_penalty"):
            assert math.isfinite(float(row[name])), (name, row)
    # One generator step after every second critic step (--n-critic 2).
    assert [r["generator_loss"] != "" for r in steps] == [False, True, False, True]
    assert all(math.isfinite(float(r["generator_loss"])) for r in steps[1::2])
    assert [int(float(r["generator_steps"])) for r in rows] == [0, 1, 1, 2, 2]
    # The critic quickly tells the data from an untrained generator's images: E[D(real)] − E[D(fake)] grows.
    estimates = [float(r["wasserstein"]) for r in steps]
    assert estimates[-1] > estimates[0] and estimates[-1] > 0, estimates
    assert float(summary["wasserstein"]) == pytest.approx(np.mean(estimates))


def test_sample_writes_a_reproducible_grid_of_generated_images(monogan_run, tmp_path):
    options = ["-n", "10", "--columns", "5", "--tile", "32"]
    sample.main([str(monogan_run), "-o", str(tmp_path / "a.png"), *options])
    sample.main([str(monogan_run / "checkpoint.pt"), "-o", str(tmp_path / "b.png"), *options])
    sample.main([str(monogan_run), "-o", str(tmp_path / "c.png"), *options, "--seed", "1"])
    grid = np.asarray(Image.open(tmp_path / "a.png"))
    assert grid.shape == (2 + 2 * 34, 2 + 5 * 34, 3)  # 2 rows of 5 images of 32 px, 2 px apart
    cells = [grid[2 + 34 * (i // 5) :][:32, 2 + 34 * (i % 5) :][:, :32] for i in range(10)]
    assert all(cell.std() > 0 for cell in cells) and not np.array_equal(cells[0], cells[1])
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o666 & ~umask, "as open() would make it, not 0600"
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "c.png").read_bytes()
    sample.main([str(monogan_run), "--n", "4"])  # the old spelling of -n
    default = np.asarray(Image.open(monogan_run / "samples-epoch0001.png"))
    assert default.shape == (2 + 2 * 98, 2 + 2 * 98, 3), "32 px images drawn at 96 px by default"
    sample.main([str(monogan_run), "-o", str(tmp_path / "native.png"), "-n", "4", "--tile", "32"])
    native = np.asarray(Image.open(tmp_path / "native.png"))
    enlarged = np.kron(native[2:34, 2:34], np.ones((3, 3, 1), np.uint8))
    assert np.array_equal(default[50:98, 2:98], enlarged[48:])  # the lower half: the tile's number is top left


def test_an_unwritable_sample_grid_is_one_line(monogan_run, unwritable_dir):
    result = run_tool("mono.trainers.cli", "sample", monogan_run, "-o", unwritable_dir / "grid.png", "-n", 4)
    assert_one_line_error(result, "mono-train sample", str(unwritable_dir / "grid.png"))


def test_bigan_checkpoint_holds_a_leaky_alexnet_encoder_and_its_gan(bigan_run, tmp_path):
    trunk, ckpt = load_trunk(bigan_run / "checkpoint.pt")
    assert (ckpt.method, ckpt.arch, ckpt.epoch) == ("bigan", "alexnet", 1)
    assert ckpt.arch_args == {"sobel": False, "activation": "leaky_relu"}
    assert ckpt.normalization == {"mean": [0.5] * 3, "std": [0.5] * 3}
    with torch.no_grad():
        assert trunk(torch.zeros(1, 3, 224, 224)).shape == (1, 256, 6, 6)  # what the imagenet probe protocol feeds
    assert set(ckpt.extra["modules"]) == {"encoder_head", "generator", "discriminator"}
    assert ckpt.extra["modules"]["encoder_head"]["weight"].shape == (16, 256 * 3 * 3)  # conv5 of a 64 px crop -> z
    architecture = ckpt.extra["architectures"]["generator"]["arch_args"]
    assert architecture == {"latent_dim": 16, "image_size": 32, "width": 8, "prior": "uniform", "latent_skip": True}
    rows = metrics(bigan_run)
    # D starts at ½ on every pair (zero-initialised output layer): both losses start at ln 2.
    assert float(rows[0]["discriminator_loss"]) == pytest.approx(math.log(2), abs=1e-6)
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("discriminator_loss", "encoder_generator_loss"))
    sample.main([str(bigan_run), "-o", str(tmp_path / "bigan.png"), "-n", "4"])
    assert np.asarray(Image.open(tmp_path / "bigan.png")).shape == (2 + 2 * 98, 2 + 2 * 98, 3)


@pytest.mark.parametrize("method", ["monogan", "bigan"])
def test_resume_continues_exactly_where_a_run_stopped(method, data32, data72, tmp_path):
    # MonoGAN: 2 critic steps per epoch and a generator step every 3rd, so the count runs across epochs.
    data, options = (
        (data32, [*MONOGAN, "--n-critic", 3, "--steps-per-epoch", 2])
        if method == "monogan"
        else (data72, [*BIGAN, "--steps-per-epoch", 1])
    )
    common = ["--data", data, *options, "--batch-size", 8]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(method, *common, "--out", straight, "--epochs", 2)
    train(method, *common, "--out", resumed, "--epochs", 1)
    train(method, *common, "--out", resumed, "--epochs", 2, "--resume")
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    assert a.epoch == b.epoch == 2
    for key in a.state_dict:
        assert torch.equal(a.state_dict[key], b.state_dict[key]), key
    for name, weights in a.extra["modules"].items():
        for key in weights:
            assert torch.equal(weights[key], b.extra["modules"][name][key]), (name, key)
    timeless = lambda rows: [{k: v for k, v in r.items() if k not in ("time", "images_per_s")} for r in rows]  # noqa: E731
    assert timeless(metrics(resumed)) == timeless(metrics(straight))


def test_divergence_stops_with_one_line_and_keeps_the_last_good_checkpoint(monogan_run, data32, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(monogan_run, run)
    before = (run / "checkpoint.pt").read_bytes()
    result = run_tool(
        "mono.trainers.cli",
        "monogan",
        "--data",
        data32,
        "--out",
        run,
        *MONOGAN,
        "--epochs",
        2,
        "--steps-per-epoch",
        4,
        "--resume",
        "--lr",
        1e30,
    )
    assert_one_line_error(
        result, "mono-train monogan", "training diverged at step", "last good checkpoint (epoch 1) is kept"
    )
    assert int(re.search(r"at step (\d+)", result.stderr).group(1)) > 4  # in the resumed epoch, after the 4 good steps
    assert (run / "checkpoint.pt").read_bytes() == before


def test_gan_option_mistakes_are_one_clear_line(monogan_run, data32, data72, tmp_path):
    with pytest.raises(UserError, match="--gen-size <= --crop <= --image-size"):
        train("bigan", "--data", data72, "--out", tmp_path / "a", *BIGAN, "--crop", 30)
    with pytest.raises(UserError, match="alexnet needs inputs of at least 63×63 px"):
        train("bigan", "--data", data72, "--out", tmp_path / "small", *BIGAN, "--crop", 56)
    assert not (tmp_path / "small").exists()  # a mistake found while building the models leaves nothing
    with pytest.raises(UserError, match="multiple of 16"):
        train("bigan", "--data", data72, "--out", tmp_path / "b", *BIGAN, "--gen-size", 8)
    with pytest.raises(UserError, match="larger than the dataset"):
        train("monogan", "--data", data32, "--out", tmp_path / "c", *MONOGAN, "--image-size", 64)
    resumed = tmp_path / "resumed"
    shutil.copytree(monogan_run, resumed)
    with pytest.raises(UserError, match="made with --gen-width 16, not 32"):
        train("monogan", "--data", data32, "--out", resumed, *MONOGAN, "--epochs", 2, "--resume", "--gen-width", 32)
    plain = tmp_path / "plain.pt"
    save_checkpoint(
        plain,
        build_trunk("monogan"),
        arch="monogan",
        arch_args={},
        normalization={"mean": [0.5] * 3, "std": [0.5] * 3},
        method="rotnet",
        dataset_manifest_sha256=None,
        epoch=0,
        meta={},
    )
    with pytest.raises(UserError, match="rotnet checkpoint without a generator"):
        sample.main([str(plain)])


@pytest.mark.parametrize("method", ["monogan", "bigan"])
def test_two_process_training_splits_the_data_and_checkpoints(method, data32, data72, tmp_path):
    data, options = (data32, MONOGAN) if method == "monogan" else (data72, BIGAN)
    run, seen = tmp_path / "ddp", tmp_path / "seen"
    result = torchrun(
        method, "--data", data, "--out", run, *options, "--batch-size", 8, "--steps-per-epoch", 2, seen=seen
    )
    assert result.returncode == 0, result.stderr[-3000:]
    shares = seen_by_rank(seen)
    assert [len(s) for s in shares] == [2 * 8, 2 * 8] and not set(shares[0]) & set(shares[1]), "disjoint shares"
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert (ckpt.method, ckpt.epoch) == (method, 1) and ckpt.extra["state"]["step"] == 2
    steps = [r for r in metrics(run)][:-1]
    assert [int(r["step"]) for r in steps] == [1, 2] and all(
        math.isfinite(float(r[k])) for r in steps for k in r if k.endswith("loss") and r[k]
    )
