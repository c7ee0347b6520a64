"""mono-repro: the CIFAR reproduction runs end to end at the smoke budget and writes its whole story."""

from __future__ import annotations

import json
import time

import pytest

from helpers import assert_one_line_error, run_tool


@pytest.fixture(scope="module")
def smoke(labelled_images, source_image, tmp_path_factory):
    out = tmp_path_factory.mktemp("repro") / "smoke"
    # A small labelled folder stands in for CIFAR-10 and CIFAR-100, a synthetic image for Image B.
    result = run_tool(
        "mono.repro.cli",
        "cifar",
        "--cifar10",
        labelled_images,
        "--out",
        out,
        "--budget",
        "smoke",
        "--image",
        source_image,
        "--ablation",
        "--ablation-rows",
        "none,all",
        "--cifar100",
        labelled_images,
        "--workers",
        1,
        "--quiet",
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_the_data_of_an_image_file_stays_inside_the_run_directory(smoke, source_image):
    out, _ = smoke
    assert sorted(p.name for p in (out / "data").iterdir()) == ["stripes.png-all", "stripes.png-none"]
    assert not list(source_image.parent.glob("*-all")), "nothing written beside the source image"


def test_results_hold_both_encoders_per_layer(smoke):
    out, result = smoke
    results = json.loads((out / "results.json").read_text())
    for encoder in ("random", "monogan"):
        layers = results[encoder]["layers"]
        assert list(layers) == ["conv1", "conv2", "conv3", "conv4"]
        assert all(0 <= layers[k]["top1"] <= 100 for k in layers)
    assert set(results["monogan"]["gain_over_random"]) == {"conv1", "conv2", "conv3", "conv4"}
    assert set(results["ablation"]) == {"none", "all"}
    assert results["ablation"]["all"]["layers"] == results["monogan"]["layers"]  # the main run is the "all" row
    assert set(results["cifar100"]) == {"random", "monogan"}
    assert results["config"]["budget"]["name"] == "smoke"
    assert "gain of MonoGAN over random init" in result.stdout


def test_report_embeds_every_picture(smoke):
    out, _ = smoke
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6
    markdown = (out / "report.md").read_text()
    for name in ("samples.png", "gan-samples.png", "training.png", "filters.png", "filters-random.png", "accuracy.png"):
        assert f"figures/{name}" in markdown and (out / "figures" / name).stat().st_size > 1000
    assert "Augmentation ablation" in markdown and "| none |" in markdown


def test_every_command_is_recorded_and_a_rerun_skips_what_is_done(smoke, labelled_images, source_image):
    out, _ = smoke
    commands = (out / "commands.sh").read_text()
    assert commands.count("mono-gen ") == 2 and commands.count("mono-train monogan") == 2
    assert "--augment none" in commands and "mono-probe linear --arch monogan --random-init" in commands
    before = (out / "results.json").read_text()
    started = time.monotonic()
    result = run_tool(
        "mono.repro.cli",
        "cifar",
        "--cifar10",
        labelled_images,
        "--out",
        out,
        "--budget",
        "smoke",
        "--image",
        source_image,
        "--ablation",
        "--ablation-rows",
        "none,all",
        "--cifar100",
        labelled_images,
        "--workers",
        1,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[done] generate all" in result.stderr and "[done] probe random-cifar10" in result.stderr
    results_before, results_after = json.loads(before), json.loads((out / "results.json").read_text())
    assert results_after["monogan"] == results_before["monogan"] and results_after["random"] == results_before["random"]
    assert time.monotonic() - started < 120


def test_bad_input_is_one_line(tmp_path):
    result = run_tool("mono.repro.cli", "cifar", "--cifar10", tmp_path / "nowhere", "--out", tmp_path / "out")
    assert_one_line_error(result, "mono-repro", "expected train/ and test/")
    result = run_tool("mono.repro.cli", "cifar", "--cifar10", tmp_path, "--out", tmp_path / "out", "--budget", "huge")
    assert_one_line_error(result, "mono-repro", "--budget")
    (tmp_path / "c10" / "train").mkdir(parents=True)
    (tmp_path / "c10" / "test").mkdir()
    result = run_tool(
        "mono.repro.cli",
        "cifar",
        "--cifar10",
        tmp_path / "c10",
        "--out",
        tmp_path / "out",
        "--ablation",
        "--ablation-rows",
        "none,blur",
    )
    assert_one_line_error(result, "mono-repro", "unknown row")
