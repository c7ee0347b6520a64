"""mono-repro: the CIFAR reproduction runs end to end at the smoke budget and writes its whole story."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
from html.parser import HTMLParser

import pytest
from PIL import Image

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
    assert "gain of MonoGAN over random init" in result.stdout and "the numbers mean nothing" in result.stdout
    assert re.search(r"conv1 [+-]\d+, conv2", result.stdout), result.stdout  # smoke: no decimals


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


class _Report(HTMLParser):
    """The parts of report.html a reader looks at: table cells, pictures with their captions, the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[dict] = []
        self.captions: list[str] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs))
        elif tag == "figcaption":
            self._caption = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "figcaption":
            self.captions.append("".join(self._caption).strip())
            self._caption = None

    def handle_data(self, data):
        self.text.append(data)
        for part in (self._cell, self._caption):
            if part is not None:
                part.append(data)


def test_report_html_shows_the_papers_numbers_chance_and_labelled_pictures(smoke):
    """The documented check of report.html without a browser (docs/probes.md): what a browser would render."""
    out, _ = smoke
    page = _Report()
    source = (out / "report.html").read_text()
    page.feed(source)
    assert "img{width:40em;" in source  # every picture shown at one width: comparable scales
    text = " ".join(page.text)
    assert "Smoke budget" in text and "the numbers mean nothing" in text
    assert "Chance: 25.0 %" in text  # 4 classes in the stand-in for CIFAR-10
    main = page.tables[0]
    assert main[0] == ["encoder", "conv1", "conv2", "conv3", "conv4"] + [f"paper conv{i}" for i in range(1, 5)]
    assert main[1][0] == "random init" and main[1][5:] == ["57.8", "55.5", "54.2", "47.3"]
    assert main[2][5:] == ["68.1", "72.3", "70.8", "63.5"]  # Table 3's MonoGAN row
    assert all(re.fullmatch(r"\d+", cell) for row in main[1:] for cell in row[1:5])  # smoke: no decimals
    ablation = page.tables[-1]
    assert [row[0] for row in ablation[1:]] == ["random init", "none", "all"]
    assert len(page.images) == len(page.captions) == 6
    for image, caption in zip(page.images, page.captions):
        assert image["alt"] == caption and len(caption) > 20
        assert image["src"].startswith("data:image/png;base64,")
        picture = Image.open(io.BytesIO(base64.b64decode(image["src"].split(",", 1)[1])))
        assert picture.format == "PNG" and min(picture.size) >= 150, (image["data-file"], picture.size)
    summary = json.loads((out / "compare" / "comparison.json").read_text())
    assert summary["chance"] == 25.0 and summary["meaningful"] is False  # the plot's dotted chance line
    assert [r["label"] for r in summary["runs"]] == ["random init", "MonoGAN, Image B", "MonoGAN, none"]
    results = json.loads((out / "results.json").read_text())
    assert results["meaningful"] is False and results["chance_top1"] == 25.0


def test_step_times_outlive_a_failed_run(tmp_path):
    """A run that fails after some steps keeps their wall times for the run that completes it (the report's times
    were lost when a later step failed)."""
    from mono.learning.errors import UserError
    from mono.repro.pipeline import Pipeline

    (tmp_path / "ok.json").write_text("{}")
    steps = Pipeline(tmp_path, quiet=True)
    steps.run("first", "json.tool", [tmp_path / "ok.json", os.devnull])
    with pytest.raises(UserError, match="step 'second' failed"):
        steps.run("second", "json.tool", [tmp_path / "missing.json"])
    again = Pipeline(tmp_path, quiet=True)
    assert list(again.timings) == ["first"] and again.timings["first"] >= 0
    (tmp_path / "timings.json").write_text('["not", "a", "table"]')
    assert Pipeline(tmp_path, quiet=True).timings == {}
