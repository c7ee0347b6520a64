"""mono-repro cifar --table 3 at the smoke budget: every row of the paper's Table 3 is trained and probed on
generated tiny folders, the report puts the paper's numbers beside ours, and a rerun redoes nothing."""

from __future__ import annotations

import json
import time

import pytest

from helpers import assert_one_line_error, run_tool
from mono.repro import table3

ROWS = [
    "random",
    "supervised",
    "rotnet-cifar10",
    "rotnet-image",
    "gan-cifar10",
    "monogan-image",
    "deepcluster-cifar10",
    "deepcluster-image",
]


def repro(labelled_images, source_image, out, *extra):
    # A small labelled folder stands in for CIFAR-10, a synthetic image for Image B.
    return run_tool(
        "mono.repro.cli",
        "cifar",
        "--cifar10",
        labelled_images,
        "--out",
        out,
        "--budget",
        "smoke",
        "--table",
        "3",
        "--image",
        source_image,
        "--workers",
        1,
        "--quiet",
        *extra,
        env={"TQDM_DISABLE": "1"},
        timeout=1200,
    )


@pytest.fixture(scope="module")
def smoke(labelled_images, source_image, tmp_path_factory):
    out = tmp_path_factory.mktemp("table3") / "smoke"
    result = repro(labelled_images, source_image, out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_every_row_is_trained_probed_and_beside_the_papers_numbers(smoke):
    out, result = smoke
    results = json.loads((out / "table3" / "results.json").read_text())
    assert list(results["rows"]) == ROWS
    assert {row.get("images_seen") for row in results["rows"].values()} == {None, 64}  # random init: none
    for key, row in results["rows"].items():
        assert list(row["layers"]) == ["conv1", "conv2", "conv3", "conv4"]
        assert all(0 <= layer["top1"] <= 100 for layer in row["layers"].values())
        if key != "random":
            assert (out / "table3" / "train" / key / "checkpoint.pt").exists()
    paper = {key: row["paper"] and list(row["paper"].values()) for key, row in results["rows"].items()}
    assert paper["supervised"] == [66.5, 70.1, 72.4, 75.9]
    assert paper["random"] == [57.8, 55.5, 54.2, 47.3]
    assert paper["rotnet-cifar10"] == paper["rotnet-image"] == [64.4, 65.6, 65.6, 59.1]
    assert paper["gan-cifar10"] == [67.7, 73.0, 72.5, 69.2]
    assert paper["monogan-image"] == [68.1, 72.3, 70.8, 63.5]
    assert paper["deepcluster-image"] is None
    assert "Table 3, mono minus full data" in result.stdout and "the numbers mean nothing" in result.stdout


def test_mono_minus_full_and_the_findings_are_computed_from_the_rows(smoke):
    out, _ = smoke
    results = json.loads((out / "table3" / "results.json").read_text())
    rows = results["rows"]
    for method, (mono, full) in table3.PAIRS.items():
        for layer in ("conv1", "conv4"):
            expected = rows[mono]["layers"][layer]["top1"] - rows[full]["layers"][layer]["top1"]
            assert results["mono_minus_full"][method][layer] == pytest.approx(expected, abs=0.01)
    assert results["paper_mono_minus_full"]["GAN"]["conv1"] == pytest.approx(0.4)
    claims = [item["claim"] for item in results["evidence"]]
    assert len(claims) == 3 and all(isinstance(item["holds"], bool) for item in results["evidence"])
    beats = results["evidence"][2]
    random1 = rows["random"]["layers"]["conv1"]["top1"]
    assert beats["numbers"]["supervised"]["conv1"] == pytest.approx(
        rows["supervised"]["layers"]["conv1"]["top1"] - random1, abs=0.01
    )


def test_the_report_has_the_table_the_figure_and_every_command(smoke):
    out, _ = smoke
    markdown = (out / "table3" / "results.md").read_text()
    assert "| GAN (CIFAR-10) |" in markdown and "| 67.7 | 73.0 | 72.5 | 69.2 |" in markdown
    assert "| MonoGAN (stripes.png) |" in markdown and "mono-minus-full.png" in markdown
    assert (
        "Smoke budget" in markdown and json.loads((out / "table3" / "results.json").read_text())["meaningful"] is False
    )
    assert markdown.count("holds**") + markdown.count("does NOT hold**") == 3
    assert (out / "table3" / "compare" / "comparison.png").exists()
    relative = json.loads((out / "table3" / "compare" / "comparison.json").read_text())
    assert relative["reference"]["label"] == "fully supervised (CIFAR-10)" and len(relative["runs"]) == 7
    png = (out / "table3" / "mono-minus-full.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    commands = (out / "commands.sh").read_text()
    for method in ("supervised", "rotnet", "deepcluster"):
        assert commands.count(f"mono-train {method} --arch monogan") == 2 - (method == "supervised")
    assert commands.count("mono-train monogan") == 2
    assert commands.count("mono-probe linear") == 8 and commands.count("--protocol cifar") == 8
    # The smoke budget shows every method the same 64 images: 4 steps of 16.
    assert commands.count("--batch-size 16 --epochs 1 --steps-per-epoch 4") == 7


def test_a_rerun_skips_everything_and_keeps_the_wall_times(smoke, labelled_images, source_image):
    out, _ = smoke
    before = json.loads((out / "table3" / "results.json").read_text())
    commands = (out / "commands.sh").read_text()
    started = time.monotonic()
    result = repro(labelled_images, source_image, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.monotonic() - started < 60
    assert (out / "commands.sh").read_text() == commands, "nothing ran again"
    after = json.loads((out / "table3" / "results.json").read_text())
    assert after["rows"] == before["rows"] and after["seconds"] == before["seconds"]


def test_an_interrupted_table_redoes_only_the_unfinished_row(smoke, labelled_images, source_image):
    """A run killed during DeepCluster on the image (no marker, no probe yet) continues that training from its
    checkpoint and probes it; nothing else runs again."""
    out, _ = smoke
    (out / "table3" / "finished" / "deepcluster-image.json").unlink()
    probe = out / "probe" / "table3-deepcluster-image"
    for path in sorted(probe.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    probe.rmdir()
    before = (out / "commands.sh").read_text()
    result = repro(labelled_images, source_image, out)
    assert result.returncode == 0, result.stderr[-3000:]
    added = (out / "commands.sh").read_text()[len(before) :].splitlines()
    assert len(added) == 3
    assert added[0].startswith("mono-train deepcluster --arch monogan") and added[0].endswith("--resume")
    assert added[1].startswith("mono-probe linear --ckpt") and "deepcluster-image" in added[1]
    assert added[2].startswith("mono-probe compare"), "the plot is redrawn with the new probe"
    assert (probe / "results.json").exists()


def test_equal_images_seen_whatever_the_dataset_size():
    """The cpu budget's 100,000 images: two passes over 50,000 images for every batch size the trainers use."""
    for batch in (64, 128, 256):
        epochs, per_epoch = table3.schedule(100_000, 50_000, batch)
        assert epochs == 2 and 99_500 < epochs * per_epoch * batch <= 100_000
    assert table3.schedule(64, 256, 16) == (1, 4)  # smoke: part of one pass
    assert table3.schedule(100, 10, 4) == (12, 2)  # a tiny dataset: whole passes, within half a pass of 100


def test_table_3_alone_refuses_the_ablation(labelled_images, source_image, tmp_path):
    result = repro(labelled_images, source_image, tmp_path / "out", "--ablation")
    assert_one_line_error(result, "mono-repro", "--table 3 runs the table alone")
