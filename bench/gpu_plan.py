"""Prepare and plan one short GPU session (issue 13; bench/gpu_run.sh runs it).

A lent GPU machine reaches nothing outside itself and takes at most 64 MiB of files, so CIFAR-10 travels as
one packed file; and its time is short, so MonoGAN's length is chosen there from a measured throughput:

    python bench/gpu_plan.py pack ../shared/datasets/cifar10 .gpu/cifar10.pack      # here, before the session
    python bench/gpu_plan.py unpack .gpu/cifar10.pack /tmp/cifar10                  # there
    python bench/gpu_plan.py measure --data DATA --out throughput.json --device cuda
    python bench/gpu_plan.py plan --throughput throughput.json --seconds 420        # prints the MonoGAN epochs

A pack is an 8-byte header length, a JSON header (relative paths and sizes, the payload's SHA-256) and the
files' bytes one after the other: 55 MB for the JPEG copy of CIFAR-10, where a tar needs 85.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath

STEPS_PER_EPOCH = 50_000 // 64  # MonoGAN's critic steps per epoch on the budget's 50,000 samples, batch 64
N_CRITIC = 5


class PlanError(Exception):
    """A mistake in the inputs: reported as one line."""


def pack(source: Path, dest: Path) -> dict:
    files = sorted(p for p in source.rglob("*") if p.is_file())
    if not files:
        raise PlanError(f"{source}: no files to pack")
    digest, entries = hashlib.sha256(), []
    for path in files:
        data = path.read_bytes()
        digest.update(data)
        entries.append([path.relative_to(source).as_posix(), len(data)])
    header = json.dumps({"files": entries, "sha256": digest.hexdigest()}).encode()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    with open(partial, "wb") as out:
        out.write(len(header).to_bytes(8, "little") + header)
        for path in files:
            out.write(path.read_bytes())
    partial.replace(dest)
    return {"files": len(files), "bytes": dest.stat().st_size}


def _safe(name: str) -> PurePosixPath:
    """A packed file's path, refused unless it stays inside the destination."""
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or any(part in ("", ".", "..") for part in path.parts) or "\\" in name:
        raise PlanError(f"pack names a path outside its folder: {name!r}")
    return path


def unpack(source: Path, dest: Path) -> dict:
    with open(source, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        if not 0 < size < 2**28:
            raise PlanError(f"{source}: not a pack (header of {size} bytes)")
        try:
            header = json.loads(f.read(size))
            entries = [(_safe(name), int(length)) for name, length in header["files"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise PlanError(f"{source}: unreadable pack header ({exc})") from None
        digest = hashlib.sha256()
        blobs = []
        for name, length in entries:
            data = f.read(length)
            if len(data) != length:
                raise PlanError(f"{source}: truncated at {name}")
            digest.update(data)
            blobs.append((name, data))
    if digest.hexdigest() != header.get("sha256"):
        raise PlanError(f"{source}: content does not match its SHA-256; pack it again")
    for name, data in blobs:
        target = dest.joinpath(*name.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return {"files": len(blobs)}


def read_throughput(metrics_csv: Path) -> float:
    """Critic steps per second from a run's metrics.csv, between its second and last rows (the first holds the
    warm-up: cuDNN's algorithm search, the loader's start)."""
    rows = [r for r in csv.DictReader(open(metrics_csv)) if r.get("step") and r.get("time")]
    if len(rows) < 3:
        raise PlanError(f"{metrics_csv}: too few rows to time ({len(rows)}); measure more steps")
    first, last = rows[1], rows[-1]
    steps, seconds = int(last["step"]) - int(first["step"]), float(last["time"]) - float(first["time"])
    if steps <= 0 or seconds <= 0:
        raise PlanError(f"{metrics_csv}: rows do not advance")
    return steps / seconds


def measure(data: Path, out: Path, steps: int, device: str, workers: int) -> dict:
    """Time `mono-train monogan` with the gpu budget's options for `steps` critic steps."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        command = [
            sys.executable, "-m", "mono.trainers.cli", "monogan", "--data", str(data), "--out", str(run),
            "--epochs", "1", "--steps-per-epoch", str(steps), "--log-every", str(max(steps // 5, 1)),
            "--batch-size", "64", "--lr", "3e-4", "--workers", str(workers), "--device", device, "--quiet",
        ]  # fmt: skip
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True)
        wall = time.monotonic() - started
        if result.returncode != 0:
            raise PlanError(f"measuring MonoGAN failed: {result.stderr.strip()[-500:]}")
        per_second = read_throughput(run / "metrics.csv")
    figures = {
        "critic_steps_per_s": round(per_second, 2),
        "generator_steps_per_s": round(per_second / N_CRITIC, 2),
        "images_per_s": round(per_second * 64, 1),
        "startup_s": round(max(wall - steps / per_second, 0.0), 1),
        "steps": steps,
        "device": device,
    }
    out.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def plan(throughput: dict, seconds: float, reserve: float) -> dict:
    """The MonoGAN epochs that fit in `seconds` once `reserve` (generation, the two probes, the figures) and the
    trainer's start-up are set aside; at least one."""
    training = seconds - reserve - throughput["startup_s"]
    epochs = max(1, math.floor(training * throughput["critic_steps_per_s"] / STEPS_PER_EPOCH))
    return {
        "gan_epochs": epochs,
        "generator_steps": epochs * STEPS_PER_EPOCH // N_CRITIC,
        "estimated_training_s": round(epochs * STEPS_PER_EPOCH / throughput["critic_steps_per_s"], 1),
        "seconds": seconds,
        "reserve_s": reserve,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("pack", help="pack a folder into one file")
    p.add_argument("source", type=Path)
    p.add_argument("dest", type=Path)
    p = verbs.add_parser("unpack", help="unpack a pack into a folder")
    p.add_argument("source", type=Path)
    p.add_argument("dest", type=Path)
    p = verbs.add_parser("measure", help="time MonoGAN's critic steps on a dataset")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=8)
    p = verbs.add_parser("plan", help="print the MonoGAN epochs that fit the time left")
    p.add_argument("--throughput", type=Path, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--reserve", type=float, default=150.0, help="seconds kept for all but the GAN (default 150)")
    args = parser.parse_args(argv)
    try:
        if args.verb == "pack":
            result = pack(args.source, args.dest)
        elif args.verb == "unpack":
            result = unpack(args.source, args.dest)
        elif args.verb == "measure":
            result = measure(args.data, args.out, args.steps, args.device, args.workers)
        else:
            result = plan(json.loads(args.throughput.read_text()), args.seconds, args.reserve)
    except (PlanError, OSError) as exc:
        raise SystemExit(f"gpu_plan: {exc}") from None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
