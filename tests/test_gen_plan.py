"""mono-gen says what a run will take before it starts, and refuses one the disk cannot hold (issue 17)."""

from __future__ import annotations

import re
from collections import namedtuple

import pytest

from mono.generator import estimate
from mono.generator.cli import main as mono_gen_main

SMALL = ["--samples", "300", "--size", "32", "--shard-size", "100", "--workers", "1"]


def run(*args) -> int:
    try:
        mono_gen_main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code or 0
    return 0


def test_dry_run_prints_the_plan_and_writes_nothing(source_image, tmp_path, capsys):
    out = tmp_path / "not-yet" / "data"
    assert run("--image", source_image, *SMALL, "--out", out, "--dry-run") == 0
    printed = capsys.readouterr().out
    assert "300 samples in 3 of 3 shards to write" in printed
    assert " MB" in printed or " kB" in printed
    assert "free in " + str(tmp_path) in printed
    assert not (tmp_path / "not-yet").exists()


def test_a_resumed_run_counts_only_the_missing_shards(source_image, tmp_path, capsys):
    out = tmp_path / "data"
    assert run("--image", source_image, *SMALL, "--shards", "0:2", "--quiet", "--out", out) == 0
    assert run("--image", source_image, *SMALL, "--out", out, "--dry-run") == 0
    assert "100 samples in 1 of 3 shards to write" in capsys.readouterr().out


def test_a_disk_too_small_is_refused_in_one_line_and_force_overrides(source_image, tmp_path, capsys, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(estimate, "disk_usage", lambda path: usage(10_000, 9_000, 1_000))
    out = tmp_path / "data"
    assert run("--image", source_image, *SMALL, "--quiet", "--out", out) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mono-gen: error: "), lines
    assert "1.0 kB free" in lines[0] and "--force" in lines[0]
    assert not out.exists()
    assert run("--image", source_image, *SMALL, "--quiet", "--force", "--out", out) == 0
    assert len(list(out.glob("train-*.tar"))) == 3


def test_the_plan_line_comes_before_a_run_and_quiet_hides_it(source_image, tmp_path, capsys):
    assert run("--image", source_image, *SMALL, "--out", tmp_path / "a") == 0
    assert "300 samples in 3 of 3 shards to write, about" in capsys.readouterr().out
    assert run("--image", source_image, *SMALL, "--quiet", "--out", tmp_path / "b") == 0
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("mono-gen: wrote 300 samples")  # the summary stays (docs/cli.md)
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("size", [32, 64])
def test_the_estimate_is_near_the_bytes_written(source_image, tmp_path, size, capsys):
    args = ["--image", source_image, "--samples", 300, "--size", size, "--shard-size", 100, "--workers", 1]
    assert run(*args, "--dry-run", "--out", tmp_path / "d") == 0
    about = re.search(r"about ([0-9.]+) (kB|MB)", capsys.readouterr().out)
    estimated = float(about[1]) * {"kB": 1e3, "MB": 1e6}[about[2]]
    assert run(*args, "--quiet", "--out", tmp_path / "d") == 0
    written = sum(p.stat().st_size for p in (tmp_path / "d").glob("train-*.tar"))
    assert 0.7 * written < estimated < 1.4 * written


def test_a_rank_with_no_shards_has_nothing_to_render(source_image, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "4")
    monkeypatch.setenv("WORLD_SIZE", "8")  # 8 ranks for 3 shards: rank 4's share is empty
    args = ["--image", source_image, *SMALL, "--shards", "auto", "--out", tmp_path / "d", "--dry-run"]
    assert run(*args) == 0
    assert "nothing to render here (0 of 3 shards present)" in capsys.readouterr().out
    assert run(*args, "--format", "both") == 0  # the last rank makes the .beton: its space is asked for
    assert "no shard to render here (0 of 3 present); the .beton will take about" in capsys.readouterr().out
    assert not (tmp_path / "d").exists()
