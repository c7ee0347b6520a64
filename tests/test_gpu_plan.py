"""The GPU session's preparation and plan (bench/gpu_plan.py, bench/gpu_run.sh), on a CPU: CIFAR-10 travels
packed and unpacks byte for byte, a pack cannot write outside its folder, the GAN's length follows the
measured throughput, and the run script stops cleanly, keeping its figures, when its time is short."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("gpu_plan", REPO / "bench" / "gpu_plan.py")
gpu_plan = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_plan)


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_pack_unpacks_to_the_same_files(labelled_images, tmp_path):
    info = gpu_plan.pack(labelled_images, tmp_path / "cifar.pack")
    assert info["files"] == len(files_of(labelled_images))
    gpu_plan.unpack(tmp_path / "cifar.pack", tmp_path / "out")
    assert files_of(tmp_path / "out") == files_of(labelled_images)


def write_pack(path: Path, names: list[str]) -> None:
    """A well-formed pack of one-byte files under the given names."""
    payload = b"x" * len(names)
    header = json.dumps({"files": [[n, 1] for n in names], "sha256": hashlib.sha256(payload).hexdigest()})
    path.write_bytes(len(header).to_bytes(8, "little") + header.encode() + payload)


@pytest.mark.parametrize("name", ["../escape.jpg", "/etc/escape", "a/../../b", "a\\..\\b", ""])
def test_a_pack_cannot_write_outside_its_folder(tmp_path, name):
    write_pack(tmp_path / "bad.pack", [name])
    with pytest.raises(gpu_plan.PlanError, match="outside its folder"):
        gpu_plan.unpack(tmp_path / "bad.pack", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.jpg").exists()


def test_a_corrupted_pack_is_refused_before_anything_is_written(labelled_images, tmp_path):
    gpu_plan.pack(labelled_images, tmp_path / "cifar.pack")
    data = bytearray((tmp_path / "cifar.pack").read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "cifar.pack").write_bytes(bytes(data))
    with pytest.raises(gpu_plan.PlanError, match="does not match its SHA-256"):
        gpu_plan.unpack(tmp_path / "cifar.pack", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_throughput_is_read_past_the_warm_up_row(tmp_path):
    rows = ["epoch,step,time,critic_loss", "0,100,30.0,1", "0,200,32.0,1", "0,300,34.0,1", "0,300,34.5,1"]
    (tmp_path / "metrics.csv").write_text("\n".join(rows) + "\n")
    assert gpu_plan.read_throughput(tmp_path / "metrics.csv") == pytest.approx(100 / 2.5)  # 200 -> 300 in 2.5 s


def test_the_plan_fits_the_gan_into_the_time_left():
    throughput = {"critic_steps_per_s": 400.0, "startup_s": 10.0}
    plan = gpu_plan.plan(throughput, seconds=480, reserve=150)
    # (480 - 150 - 10) s × 400 steps/s = 128,000 critic steps = 163 epochs of 781 steps
    assert plan["gan_epochs"] == 163 and plan["generator_steps"] == 163 * 781 // 5
    assert plan["estimated_training_s"] <= 480 - 150 - 10
    assert gpu_plan.plan(throughput, seconds=100, reserve=150)["gan_epochs"] == 1  # never zero


def test_the_run_script_keeps_its_figures_and_stops_when_time_is_short(labelled_images, source_image, tmp_path):
    env = dict(os.environ, GPU_RUN_DRY="1", CIFAR10=str(labelled_images), IMAGE=str(source_image))
    env.update(OUT=str(tmp_path / "out"), GPU_RUN_WORK=str(tmp_path / "work"), PYTHON=sys.executable)
    env["GPU_RUN_RESERVE"] = "100000"  # more than any time left: the script must stop after its plan
    result = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu_run.sh"), "600"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "out"
    assert "torch" in (out / "env.txt").read_text()
    assert json.loads((out / "throughput.json").read_text())["critic_steps_per_s"] > 0
    assert json.loads((out / "plan.json").read_text())["gan_epochs"] >= 1
    assert "stopping:" in (out / "log.txt").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["env.txt", "log.txt", "plan.json", "throughput.json"]
