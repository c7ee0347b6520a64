"""mono-train plot draws a run's metrics.csv (and its probes' per-epoch accuracy) as one PNG (issue 17)."""

from __future__ import annotations

import pytest
from PIL import Image

from helpers import assert_one_line_error, mono_gen, run_tool, train
from mono.trainers import plot

FAST = ["--epochs", 2, "--batch-size", 16, "--workers", 0, "--quiet", "--arch-args", "widths=8,16,24,32"]


@pytest.fixture(scope="module")
def data32(source_images, tmp_path_factory):
    out = tmp_path_factory.mktemp("plot") / "three"
    mono_gen("--source", source_images, "--samples", 64, "--size", 32, "--shard-size", 32, "--out", out)
    return out


@pytest.mark.parametrize(
    ("method", "options", "columns"),
    [
        ("deepcluster", ["--arch", "monogan", "--k", 4, "--pca", 8], {"loss", "clustering_loss", "nmi"}),
        ("monogan", ["--gen-width", 8, "--n-critic", 2, "--log-every", 1], {"critic_loss", "wasserstein"}),
    ],
)
def test_a_run_is_plotted_to_a_png(method, options, columns, data32, tmp_path, capsys):
    run = tmp_path / "run"
    train(method, "--data", data32, "--out", run, *FAST, *options)
    names, rows = plot.read_metrics(run)
    assert columns <= set(names)
    steps, epochs = plot.epoch_rows(rows)
    assert [r["epoch"] for r in epochs] == [0, 1]
    capsys.readouterr()
    plot.main([str(run)])
    assert capsys.readouterr().out.strip() == str(run / "metrics.png")
    with Image.open(run / "metrics.png") as image:
        assert image.format == "PNG" and image.width >= 500 and image.height >= 300
    assert plot.method_of(run) == method


def test_probe_histories_get_their_own_panel(data32, labelled_images, tmp_path):
    run = tmp_path / "run"
    train("rotnet", "--data", data32, "--out", run, *FAST, "--arch", "monogan")
    probe = tmp_path / "probe"
    result = run_tool(
        "mono.probes.cli", "linear", "--ckpt", run / "checkpoint.pt", "--train", labelled_images / "train",
        "--val", labelled_images / "test", "--protocol", "cifar", "--train-limit", 32, "--val-limit", 16,
        "--epochs", 2, "--workers", 0, "--no-progress", "-o", probe, env={"TQDM_DISABLE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    label, series = plot.probe_history(probe)
    assert [name for name, _, _ in series] == ["conv1", "conv2", "conv3", "conv4"]
    assert all(epochs == [1, 2] for _, epochs, _ in series)
    out = tmp_path / "curves.png"
    result = run_tool("mono.trainers.cli", "plot", run, "-o", out, "--probe", probe)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image, Image.open(plot.plot(run, tmp_path / "alone.png")) as alone:
        assert image.width * image.height > alone.width * alone.height  # a panel more


def test_a_directory_without_metrics_is_refused_in_one_line(tmp_path):
    result = run_tool("mono.trainers.cli", "plot", tmp_path)
    assert_one_line_error(result, "mono-train plot", f"{tmp_path} holds no metrics.csv")
    assert not (tmp_path / "metrics.png").exists()
    result = run_tool("mono.trainers.cli", "plot", tmp_path, "--probe", tmp_path / "nothing")
    assert_one_line_error(result, "mono-train plot", "metrics.csv")
