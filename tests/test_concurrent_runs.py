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
