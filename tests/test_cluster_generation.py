"""mono-gen --shards auto: processes under simulated torchrun and SLURM environments render their shares into one
directory, the last (or mono-shards finish) writes the manifest, and the result is what one machine makes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from helpers import assert_one_line_error, mono_gen
from mono.generator import lock
from mono.generator.cli import auto_range
from mono.generator.errors import UserError

ARGS = ("--samples", 240, "--size", 24, "--shard-size", 20, "--seed", 2, "--format", "both")  # 12 shards
SCHEDULER = {
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_STEP", "SLURM_PROCID", "SLURM_NTASKS",
}  # fmt: skip


def files(root):
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


def start(tool: str, *args, **variables) -> subprocess.Popen:
    """`python -m mono.generator.<tool> args` with these scheduler variables and no others."""
    env = {k: v for k, v in os.environ.items() if k not in SCHEDULER}
    env.update({k: str(v) for k, v in variables.items()})
    command = [sys.executable, "-m", f"mono.generator.{tool}", *map(str, args)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rank(out, source, **variables) -> subprocess.CompletedProcess:
    process = start("cli", "--image", source, *ARGS, "--shards", "auto", "--workers", 1, "--out", out, **variables)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def one_machine(source_image, tmp_path_factory):
    """The dataset one machine makes with --out BASE/ds, moved to BASE/one so that ranks can write BASE/ds (the
    --out is part of the recorded command, so of manifest.json)."""
    base = tmp_path_factory.mktemp("cluster")
    mono_gen("--image", source_image, *ARGS, "--out", base / "ds")
    (base / "ds").rename(base / "one")
    return base


@pytest.fixture
def out(one_machine):
    target = one_machine / "ds"
    yield target
    if target.exists():
        shutil.rmtree(target)


def test_the_shares_are_contiguous_and_cover_every_shard():
    shares = [auto_range(12, {"RANK": r, "WORLD_SIZE": 5})[0] for r in range(5)]
    assert [list(s) for s in shares] == [[0, 1], [2, 3], [4, 5, 6], [7, 8], [9, 10, 11]]
    array = {"SLURM_ARRAY_TASK_MIN": 10, "SLURM_ARRAY_TASK_STEP": 2, "SLURM_ARRAY_TASK_COUNT": 3}
    assert [auto_range(12, {**array, "SLURM_ARRAY_TASK_ID": i})[1] for i in (10, 12, 14)] == [0, 1, 2]
    assert auto_range(3, {"SLURM_PROCID": 6, "SLURM_NTASKS": 8})[0] == range(2, 2), "more ranks than shards: none"
    both = {"RANK": 1, "WORLD_SIZE": 2, "SLURM_PROCID": 0, "SLURM_NTASKS": 1}
    assert auto_range(12, both)[1:3] == (1, 2), "torchrun's variables before SLURM's"
    for env, message in (
        ({}, "none is set"),
        ({"RANK": "x", "WORLD_SIZE": 2}, "not numbers"),
        ({"RANK": 2, "WORLD_SIZE": 2}, "outside 0..1"),
        ({"SLURM_ARRAY_TASK_ID": 9, "SLURM_ARRAY_TASK_COUNT": 3, "SLURM_ARRAY_TASK_MIN": 1}, "contiguous"),
    ):
        with pytest.raises(UserError, match=message):
            auto_range(12, env)


def test_torchrun_ranks_one_after_another_the_last_finishes(one_machine, out, source_image):
    for r in range(4):
        result = rank(out, source_image, RANK=r, WORLD_SIZE=4, LOCAL_RANK=0)
        assert result.returncode == 0, result.stderr
        if r < 3:
            assert f"rank {r} of 4 (RANK/WORLD_SIZE) made shards {3 * r}:{3 * r + 3}" in result.stderr
            assert f"{3 * r + 3} of 12 shards present" in result.stderr and not (out / "manifest.json").exists()
    assert "wrote 240 samples in 12 shards and train.beton" in result.stderr
    assert files(out) == files(one_machine / "one"), "the same bytes as one machine, manifest and card included"


def test_slurm_ranks_at_once_give_the_same_bytes(one_machine, out, source_image):
    # 16 srun tasks for 12 shards, all at once: some have nothing to render; one, or mono-shards finish, finishes.
    processes = [start("cli", "--image", source_image, *ARGS, "--shards", "auto", "--workers", 1, "--out", out,
                       SLURM_PROCID=r, SLURM_NTASKS=16) for r in range(16)]  # fmt: skip
    results = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    for code, stderr in results:
        assert code == 0 and "Traceback" not in stderr, stderr
    finish = start("shards_cli", "finish", out)
    assert finish.wait(timeout=300) == 0, finish.stderr.read()
    assert files(out) == files(one_machine / "one")


def test_a_slurm_array_in_reverse_order_and_mono_shards_finish(one_machine, out, source_image):
    array = {"SLURM_ARRAY_TASK_MIN": 1, "SLURM_ARRAY_TASK_COUNT": 3}
    # Another writer holds the directory alone (a plain mono-gen): a rank is refused, and changes nothing.
    with lock.hold(out, "mono-gen"):
        refused = rank(out, source_image, SLURM_ARRAY_TASK_ID=1, **array)
    assert_one_line_error(refused, "mono-gen", "in use by another run")
    for task in (3, 2):
        assert rank(out, source_image, SLURM_ARRAY_TASK_ID=task, **array).returncode == 0
    info = start("shards_cli", "info", out)
    said = info.communicate(timeout=60)[0]
    assert info.returncode == 0 and "8 shards present; rerun" in said and f"mono-shards finish {out}" in said
    finish = start("shards_cli", "finish", out)
    finish.wait(timeout=60)
    assert_one_line_error(
        subprocess.CompletedProcess(finish.args, finish.returncode, "", finish.stderr.read()),
        "mono-shards",
        "4 of 12 shards are missing (the first: train-000000.tar)",
    )
    # A temporary file of a shard outside a rank's share is another rank's: the rank leaves it alone.
    theirs = out / ".mono-gen" / "partial" / ".train-000011.tar.abc123.tmp"
    theirs.write_bytes(b"being written")
    # While ranks share the directory, a plain run is refused (the shared lock is held here).
    with lock.hold_shared(out, "mono-gen") as held:
        result = rank(out, source_image, SLURM_ARRAY_TASK_ID=1, **array)
        assert result.returncode == 0 and "rank 0 of 3" in result.stderr, result.stderr
        assert "12 of 12 shards present" in result.stderr, "others hold it: the last of them finishes"
        assert theirs.exists()
        with pytest.raises(UserError, match="in use by another run"):
            with lock.hold(out, "mono-shards"):
                pass
        assert held.exclusive(), "the others are done: this one may finish"
    theirs.unlink()
    finish = start("shards_cli", "finish", out)
    assert finish.wait(timeout=300) == 0, finish.stderr.read()
    assert files(out) == files(one_machine / "one")
    again = start("shards_cli", "finish", out)
    assert again.wait(timeout=60) == 0 and "already complete" in again.stderr.read()
