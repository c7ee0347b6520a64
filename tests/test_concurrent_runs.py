"""One writer per dataset directory: a second mono-gen (or export --to ffcv) is refused in one line that
names the first, and changes nothing; the first finishes as if alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from helpers import assert_one_line_error, mono_gen, run_tool
from mono.generator import lock

SMALL = ["--samples", 40, "--size", 16, "--shard-size", 20, "--workers", 1, "--quiet"]


def snapshot(root):
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def test_a_run_into_a_held_directory_is_refused_and_changes_nothing(source_image, tmp_path):
    out = tmp_path / "out"
    mono_gen("--image", source_image, *SMALL, "--shards", "0:1", "--out", out)  # an incomplete dataset
    with lock.hold(out, "mono-gen"):
        before = snapshot(out)
        result = run_tool("mono.generator.cli", "--image", source_image, *SMALL, "--out", out)
        assert_one_line_error(
            result, "mono-gen", f"in use by another run (mono-gen, pid {os.getpid()} on host {socket.gethostname()})"
        )
        assert snapshot(out) == before
    assert not (out / lock.LOCK).exists(), "the holder removes its lock file"
    mono_gen("--image", source_image, *SMALL, "--out", out)  # free again: finishes
    assert (out / "manifest.json").exists() and not any(p.name.startswith(".") for p in out.iterdir())


def test_an_export_into_a_held_dataset_is_refused(source_image, tmp_path):
    out = tmp_path / "out"
    mono_gen("--image", source_image, *SMALL, "--out", out)
    with lock.hold(out, "mono-gen"):
        before = snapshot(out)
        result = run_tool("mono.generator.shards_cli", "export", out, "--to", "ffcv", "-q")
        assert_one_line_error(result, "mono-shards", f"pid {os.getpid()}")
        assert snapshot(out) == before


def test_two_runs_at_once_one_finishes_the_other_is_refused(source_image, tmp_path):
    out = tmp_path / "out"
    args = ["--image", source_image, "--samples", 15000, "--size", 64, "--shard-size", 500, "--workers", 1, "-q"]
    env = dict(os.environ)
    first = subprocess.Popen(
        [sys.executable, "-m", "mono.generator.cli", *map(str, args), "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (out / ".mono-gen" / "config.json").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    second = run_tool("mono.generator.cli", *args, "--out", out)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert_one_line_error(second, "mono-gen", f"pid {first.pid} on host")
    assert run_tool("mono.generator.shards_cli", "verify", "-q", out).returncode == 0
    assert not any(p.name.startswith(".") for p in out.iterdir()), "no lock file or run state left behind"


def test_a_trainer_into_a_run_directory_in_use_is_refused_and_changes_nothing(labelled_images, tmp_path):
    # Another process holds the run directory (as a running mono-train does from its first write to its end):
    # a second trainer says who, in one line, and leaves the directory as it was.
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_RUN_DIR, str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    try:
        before = sorted(p.name for p in run.iterdir())
        result = run_tool(
            "mono.trainers.cli", "rotnet", "--arch", "monogan", "--data", labelled_images / "train", "--out", run,
            "--epochs", 1, "--steps-per-epoch", 2, "--batch-size", 8, "--workers", 0, "--quiet",
            "--arch-args", "widths=8,16,24,32",
        )  # fmt: skip
        assert_one_line_error(result, "mono-train rotnet", f"{run} is in use by mono-train (pid {holder.pid})")
        assert sorted(p.name for p in run.iterdir()) == before
    finally:
        holder.kill()
        holder.wait()
    # Once the holder is gone (however it ended), the run directory is free again.
    result = run_tool(
        "mono.trainers.cli", "rotnet", "--arch", "monogan", "--data", labelled_images / "train", "--out", run,
        "--epochs", 1, "--steps-per-epoch", 2, "--batch-size", 8, "--workers", 0, "--quiet",
        "--arch-args", "widths=8,16,24,32",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "checkpoint.pt").exists()


HOLD_RUN_DIR = """
import sys, time
from pathlib import Path
from mono.trainers.utils import _hold_run_dir
_hold_run_dir(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(600)
"""
