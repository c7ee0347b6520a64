"""RotNet and DeepCluster on tiny generated datasets: they learn, checkpoint for the probes, resume exactly."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import CROP, TINY, assert_one_line_error, metrics, run_tool, seen_by_rank, tiny_dataset, torchrun, train
from mono.learning.checkpoint import load_checkpoint, load_trunk


@pytest.fixture(scope="module")
def data(source_image, tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("train"), source_image)


def test_rotnet_epoch_writes_a_checkpoint_that_mono_probe_reads(data, tmp_path, labelled_images):
    run = tmp_path / "rotnet"
    train("rotnet", "--data", data, "--out", run, *TINY, "--steps-per-epoch", 3)
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert (ckpt.method, ckpt.arch, ckpt.epoch) == ("rotnet", "alexnet", 1)
    assert ckpt.dataset_manifest_sha256 is not None and ckpt.normalization["mean"] == [0.485, 0.456, 0.406]
    assert metrics(run)[-1]["epoch"] == "0"
    probe = tmp_path / "probe"
    result = run_tool(
        "mono.probes.cli",
        "linear",
        "--ckpt",
        run / "checkpoint.pt",
        "--train",
        labelled_images / "train",
        "--val",
        labelled_images / "test",
        "--train-limit",
        20,
        "--val-limit",
        10,
        "--epochs",
        1,
        "--batch-size",
        10,
        "--workers",
        0,
        "--no-progress",
        "-o",
        probe,
    )
    assert result.returncode == 0, result.stderr
    assert (probe / "results.json").exists()


def test_rotnet_loss_falls(data, tmp_path):
    run = tmp_path / "rotnet"
    train("rotnet", "--data", data, "--out", run, *TINY, "--log-every", 1)
    losses = [float(r["loss"]) for r in metrics(run)][:-1]  # the last row sums up the epoch
    assert len(losses) == 32
    first, last = np.mean(losses[:8]), np.mean(losses[-8:])
    # Chance is ln 4 = 1.386; after 32 steps of 8 images the rotation is clearly being recognised.
    assert last < first - 0.1 and last < 1.25, (first, last)


def test_resume_continues_exactly_where_a_run_stopped(data, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--data", data, *TINY, "--steps-per-epoch", 2]
    train("rotnet", *common, "--out", straight, "--epochs", 2)
    train("rotnet", *common, "--out", resumed, "--epochs", 1)
    train("rotnet", *common, "--out", resumed, "--epochs", 2, "--resume")
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    assert a.epoch == b.epoch == 2
    for key in a.state_dict:
        assert torch.equal(a.state_dict[key], b.state_dict[key]), key
    assert [r["step"] for r in metrics(resumed)] == [r["step"] for r in metrics(straight)]


def test_the_same_command_again_continues_the_run_and_other_options_are_refused(data, tmp_path):
    run = tmp_path / "run"
    common = ["rotnet", "--data", data, "--out", run, *TINY, "--steps-per-epoch", 1]
    assert run_tool("mono.trainers.cli", *common).returncode == 0
    again = run_tool("mono.trainers.cli", *common, "--epochs", 2, "--workers", 1)  # more epochs, other workers
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(run / "checkpoint.pt").epoch == 2
    assert [r["epoch"] for r in metrics(run)] == ["0", "1"]
    finished = run_tool("mono.trainers.cli", *common, "--epochs", 2)
    assert finished.returncode == 0 and "already finished 2 epochs" in finished.stdout
    before = (run / "checkpoint.pt").read_bytes()
    other = run_tool("mono.trainers.cli", *common, "--epochs", 3, "--seed", 1)
    assert_one_line_error(other, "mono-train rotnet", "--seed 0, not 1")
    assert (run / "checkpoint.pt").read_bytes() == before, "a refused run writes nothing"
    fresh = run_tool("mono.trainers.cli", "rotnet", "--data", data, "--out", tmp_path / "new", *TINY, "--resume")
    assert_one_line_error(fresh, "mono-train rotnet", "--resume: no checkpoint.pt")


def test_two_process_ddp_splits_the_data(data, tmp_path):
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "mono.trainers.rotnet",
        "--data",
        str(data),
        "--out",
        str(run),
        *map(str, TINY),
        "--batch-size",
        4,
        "--record-samples",
        str(tmp_path / "seen"),
    ]
    result = subprocess.run([str(c) for c in command], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [np.loadtxt(tmp_path / "seen" / f"rank{r}" / "epoch000.txt", dtype=int) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 256 // 2 // 4 * 4  # equal whole batches per rank
    assert not set(seen[0]) & set(seen[1])  # no sample on both ranks
    assert len(set(seen[0]) | set(seen[1])) == 256  # the whole epoch
    assert load_checkpoint(run / "checkpoint.pt").epoch == 1


def test_deepcluster_epoch_clusters_trains_and_checkpoints(data, tmp_path):
    run = tmp_path / "deepcluster"
    args = ["--data", data, "--out", run, *TINY, "--k", 8, "--pca", 16, "--steps-per-epoch", 4]
    train("deepcluster", *args, "--epochs", 2, "--record-samples", tmp_path / "seen")
    trunk, ckpt = load_trunk(run / "checkpoint.pt")
    assert (ckpt.method, ckpt.arch_args["sobel"], ckpt.epoch) == ("deepcluster", True, 2)
    assignments = ckpt.extra["state"]["assignments"]
    assert assignments.shape == (256,) and 1 < len(torch.unique(assignments)) <= 8
    rows = metrics(run)
    assert rows[0]["nmi"] == "nan" and 0 <= float(rows[-1]["nmi"]) <= 1  # NMI from the second clustering on
    # The epoch samples every cluster about equally (uniform sampling over pseudo-labels).
    seen = np.loadtxt(tmp_path / "seen" / "rank0" / "epoch001.txt", dtype=int)
    assert len(seen) == 4 * 8
    assert trunk(torch.zeros(1, 3, CROP, CROP)).shape[1] == 256


def test_trainer_errors_are_one_line(tmp_path, data):
    result = run_tool("mono.trainers.cli", "rotnet", "--data", tmp_path / "missing", "--out", tmp_path / "run")
    assert_one_line_error(result, "mono-train rotnet", "missing")
    result = run_tool("mono.trainers.cli", "rotnet", "--data", data, "--out", tmp_path / "run", "--crop", 512)
    assert_one_line_error(result, "mono-train rotnet", "larger than the dataset")
    result = run_tool("mono.trainers.cli", "deepcluster", "--data", data, "--out", tmp_path / "run", "--k", 100000)
    assert_one_line_error(result, "mono-train deepcluster", "--k")
    result = run_tool("mono.trainers.cli", "rotnet", "--data", data, "--out", tmp_path / "run", "--epochs", 0)
    assert_one_line_error(result, "mono-train rotnet", "--epochs")
    result = run_tool("mono.trainers.cli", "nonsense")
    assert_one_line_error(result, "mono-train", "unknown method")
    result = run_tool("mono.trainers.cli", "rotnet", "--data", data)
    assert_one_line_error(result, "mono-train rotnet", "--out")


def test_a_full_disk_while_saving_is_one_line_and_its_rerun_logs_each_epoch_once(data, tmp_path):
    run = tmp_path / "run"
    args = ["rotnet", "--data", data, "--out", run, *TINY, "--steps-per-epoch", 2]

    def small_disk():  # files may not grow beyond 1 MiB: the logs fit, the checkpoint does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    result = run_tool("mono.trainers.cli", *args, preexec_fn=small_disk)
    assert_one_line_error(result, "mono-train rotnet", "file too large", str(run / "checkpoint.pt"))
    assert not (run / "checkpoint.pt").exists() and not list(run.glob(".checkpoint.pt.*"))
    assert metrics(run) == [], "no metrics row for an epoch whose checkpoint was not written"
    train(*args)  # the same command, with room: a fresh run (nothing to resume)
    assert [r["epoch"] for r in metrics(run)] == ["0"]
    assert load_checkpoint(run / "checkpoint.pt").epoch == 1


def test_a_rerun_after_a_run_that_saved_nothing_starts_the_log_afresh(data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("epoch,step,time,loss,accuracy,lr,images_per_s\n0,1,0.1,1.3,0.3,0.01,10\n")
    train("rotnet", "--data", data, "--out", run, *TINY, "--steps-per-epoch", 1)
    assert [(r["epoch"], r["step"]) for r in metrics(run)] == [("0", "1")], "the old row is gone, not repeated"


def test_an_unwritable_out_is_one_line(data, unwritable_dir):
    result = run_tool(
        "mono.trainers.cli", "rotnet", "--data", data, "--out", unwritable_dir / "run", *TINY, "--steps-per-epoch", 1
    )
    assert_one_line_error(result, "mono-train rotnet", str(unwritable_dir / "run"))


def test_two_process_deepcluster_clusters_once_and_splits_the_epoch(data, tmp_path):
    run, seen = tmp_path / "ddp", tmp_path / "seen"
    result = torchrun(
        "deepcluster",
        "--data",
        data,
        "--out",
        run,
        *TINY,
        "--k",
        8,
        "--pca",
        16,
        "--batch-size",
        4,
        "--steps-per-epoch",
        3,
        "--epochs",
        2,
        seen=seen,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert (ckpt.method, ckpt.epoch) == ("deepcluster", 2)
    assignments = ckpt.extra["state"]["assignments"]
    assert assignments.shape == (256,) and 1 < len(torch.unique(assignments)) <= 8
    for epoch in (0, 1):
        shares = seen_by_rank(seen, epoch)
        assert [len(s) for s in shares] == [3 * 4, 3 * 4], "each rank its own whole batches"
    assert [r["epoch"] for r in metrics(run)] == ["0", "1"], "one row per epoch, from rank 0 alone"
