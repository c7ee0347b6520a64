"""Every method trains the paper's 32 px `monogan` trunk: RotNet and DeepCluster with --arch monogan (and the
supervised baseline, and MonoGAN itself) on a generated dataset and on a labelled image folder; their checkpoints
say which trunk they hold and probe with --protocol cifar."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import assert_one_line_error, metrics, mono_gen, run_tool, tiny_dataset, train
from mono.learning.checkpoint import load_checkpoint, load_trunk
from mono.learning.models import CIFAR10_NORMALIZATION, GAN_NORMALIZATION, IMAGENET_NORMALIZATION
from mono.trainers import utils

# A narrow trunk keeps the CPU tests at seconds; the checkpoint must record it.
NARROW = "widths=8,16,24,32"
NARROW_ARGS = {"activation": "leaky_relu", "widths": [8, 16, 24, 32], "padding": [3, 2, 1, 0], "init": "torch"}
FAST = ["--epochs", 1, "--batch-size", 16, "--workers", 0, "--quiet", "--arch-args", NARROW]


@pytest.fixture(scope="module")
def generated32(source_image, tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("gen32"), source_image, samples=64, size=32)


@pytest.fixture(scope="module")
def generated48(source_images, tmp_path_factory):
    """Three source images as three classes (labels for the supervised trainer), in images larger than the
    trunk's 32 px: the trainers shrink them."""
    out = tmp_path_factory.mktemp("gen48") / "three"
    mono_gen("--source", source_images, "--samples", 96, "--size", 48, "--shard-size", 32, "--out", out)
    return out


def probe_cifar(checkpoint, labelled_images, out) -> dict:
    """`mono-probe linear --protocol cifar` on the checkpoint: its results.json."""
    result = run_tool(
        "mono.probes.cli",
        "linear",
        "--ckpt",
        checkpoint,
        "--train",
        labelled_images / "train",
        "--val",
        labelled_images / "test",
        "--protocol",
        "cifar",
        "--train-limit",
        64,
        "--val-limit",
        32,
        "--epochs",
        1,
        "--workers",
        0,
        "--no-progress",
        "-o",
        out,
        env={"TQDM_DISABLE": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((out / "results.json").read_text())


METHODS = {
    "rotnet": ([], CIFAR10_NORMALIZATION),
    "deepcluster": (["--k", 4, "--pca", 8], IMAGENET_NORMALIZATION),
    "supervised": (["--lr", 0.01], CIFAR10_NORMALIZATION),  # 0.1 is for batch 128; 16 diverges at 0.1
    "monogan": (["--gen-width", 8, "--n-critic", 2], GAN_NORMALIZATION),
    "bigan": (["--gen-width", 8, "--disc-width", 8, "--latent-dim", 16], GAN_NORMALIZATION),
}


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_trains_the_32px_trunk_on_a_folder_and_the_checkpoint_probes(method, labelled_images, tmp_path):
    options, normalization = METHODS[method]
    arch = [] if method == "monogan" else ["--arch", "monogan"]
    run = tmp_path / method
    train(method, *arch, "--data", labelled_images / "train", "--out", run, *FAST, *options)
    trunk, ckpt = load_trunk(run / "checkpoint.pt")
    assert (ckpt.method, ckpt.arch, ckpt.arch_args, ckpt.epoch) == (method, "monogan", NARROW_ARGS, 1)
    assert ckpt.normalization == normalization
    assert trunk(torch.zeros(1, 3, 32, 32)).shape[1] == 32
    results = probe_cifar(run / "checkpoint.pt", labelled_images, tmp_path / "probe")
    assert set(results["layers"]) == {"conv1", "conv2", "conv3", "conv4"}
    assert results["config"]["arch"] == "monogan"


@pytest.mark.parametrize("method", list(METHODS))
def test_the_32px_trunk_trains_on_a_generated_dataset_of_larger_images(method, generated48, tmp_path):
    options = METHODS[method][0]
    arch = [] if method == "monogan" else ["--arch", "monogan"]
    run = tmp_path / method
    train(method, *arch, "--data", generated48, "--out", run, *FAST, *options)
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert (ckpt.arch, ckpt.epoch) == ("monogan", 1)
    assert json.loads((run / "args.json").read_text()).get("arch", "monogan") == "monogan"
    assert len(metrics(run)) >= 1


def test_the_32px_defaults_are_the_cifar_recipes(generated32, tmp_path):
    """Unset options take --arch's defaults: RotNet's CIFAR-10 schedule and DeepCluster's k for the small trunk;
    options given on the command line win."""
    from mono.trainers import deepcluster, rotnet

    args = utils.arch_defaults(rotnet.get_args_parser().parse_args(["--data", "d", "--out", "o"]), rotnet.DEFAULTS)
    assert (args.epochs, args.batch_size, args.lr, args.lr_steps, args.crop) == (50, 192, 0.01, "15,30,45", 224)
    parsed = rotnet.get_args_parser().parse_args(["--data", "d", "--out", "o", "--arch", "monogan", "--lr", "0.05"])
    args = utils.arch_defaults(parsed, rotnet.DEFAULTS)
    assert (args.epochs, args.batch_size, args.lr, args.lr_steps, args.lr_decay, args.crop) == (
        200,
        128,
        0.05,
        "60,120,160",
        0.2,
        32,
    )
    parsed = deepcluster.get_args_parser().parse_args(["--data", "d", "--out", "o", "--arch", "monogan"])
    args = utils.arch_defaults(parsed, deepcluster.DEFAULTS)
    assert (args.k, args.crop, args.head_width, args.sobel) == (400, 32, 512, False)


def test_rotnet_32px_crops_are_of_images_padded_by_4_black_pixels():
    """RandomCrop(32, padding=4) + RandomHorizontalFlip, as RotNet's CIFAR-10 dataloader: the crops keep 32 px,
    and some are shifted so that a black border enters."""
    batch = torch.ones(1000, 3, 32, 32)
    crops = utils.random_crop(batch, 32, utils.seeded_generator(0), flip=True, padding=4)
    assert crops.shape == (1000, 3, 32, 32)
    unshifted = int((crops == 1).flatten(1).all(1).sum())
    assert 0 < unshifted < 40  # 1 window in 81 is the centred one: about 12 of 1000
    assert (crops.flatten(1).sum(1) >= 32 * 32 * 3 * (28 / 32) ** 2).all()  # shifted by at most 4 px each way


def test_small_images_are_refused_by_the_32px_trunk(source_image, tmp_path):
    small = tiny_dataset(tmp_path, source_image, samples=16, size=16)
    result = run_tool("mono.trainers.cli", "rotnet", "--arch", "monogan", "--data", small, "--out", tmp_path / "run")
    assert_one_line_error(result, "mono-train rotnet", "at least 32 px")
    assert not (tmp_path / "run").exists()


def test_bad_arch_args_are_one_line_errors(generated32, tmp_path):
    result = run_tool(
        "mono.trainers.cli",
        "rotnet",
        "--arch",
        "monogan",
        "--data",
        generated32,
        "--out",
        tmp_path / "run",
        "--arch-args",
        "widths=1,2",
    )
    assert_one_line_error(result, "mono-train rotnet", "widths must be 4 integers")
    assert not (tmp_path / "run").exists()


def test_supervised_learns_the_folders_labels(labelled_images, tmp_path):
    """Cross-entropy on the class folders: the training accuracy climbs far above chance (4 classes: 25 %)."""
    run = tmp_path / "supervised"
    train("supervised", "--data", labelled_images / "train", "--out", run, *FAST, "--lr", 0.01, "--epochs", 4)
    rows = [r for r in metrics(run)]
    assert float(rows[-1]["accuracy"]) > 0.6, rows
    assert load_checkpoint(run / "checkpoint.pt").extra["state"]["classes"] == sorted(
        p.name for p in (labelled_images / "train").iterdir()
    )


def test_supervised_refuses_a_dataset_of_one_class(generated32, tmp_path):
    result = run_tool("mono.trainers.cli", "supervised", "--data", generated32, "--out", tmp_path / "run")
    assert_one_line_error(result, "mono-train supervised", "labels of 2 classes or more")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("method", ["rotnet", "deepcluster", "supervised", "bigan"])
def test_divergence_is_caught_at_the_next_synchronisation_and_the_checkpoint_kept(method, labelled_images, tmp_path):
    # Losses stay on the device between log steps (no host synchronisation per step); a NaN is still caught
    # before the epoch's checkpoint, and the one on disk is the last good one.
    data = labelled_images / "train"
    extra = {"deepcluster": ["--k", 4, "--pca", 8], "bigan": METHODS["bigan"][0]}.get(method, [])
    common = [method, "--data", data, "--out", tmp_path / "run", "--arch", "monogan", *FAST, *extra]
    train(*common, "--steps-per-epoch", 2)
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    result = run_tool(
        "mono.trainers.cli", *common, "--epochs", 2, "--steps-per-epoch", 4, "--log-every", 1000, "--lr", 1e30,
        "--resume",
    )  # fmt: skip
    assert_one_line_error(result, f"mono-train {method}", "diverged at step", "last good checkpoint (epoch 1) is kept")
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before
