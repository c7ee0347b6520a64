"""What the tests share besides fixtures (conftest.py): running the tools as a user would, small datasets made
with mono-gen and read back with the libraries users would use (webdataset, ffcv), and trainer runs."""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from PIL import Image

from mono.generator.cli import main as mono_gen_main
from mono.learning.checkpoint import save_checkpoint
from mono.learning.models import GAN_NORMALIZATION, build_trunk

REPO = Path(__file__).resolve().parents[1]


# The command-line tools


def run_tool(
    module: str, *args, env: dict | None = None, timeout: float = 300, **kwargs
) -> subprocess.CompletedProcess:
    """Run `python -m module args...` as a user would, capturing its output: `module` is a mono.* name, imported
    from the installed package (pip install -e .), not from the repository's folders."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        **kwargs,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, prog: str, *fragments: str) -> None:
    """A user mistake: non-zero exit, exactly one line on stderr naming the problem, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), lines[0]


# mono-gen in this process


def mono_gen(*args) -> None:
    """Run mono-gen in this process (quiet, one worker unless given); raise on a non-zero exit."""
    argv = [str(a) for a in args]
    if "--workers" not in argv and "-j" not in argv:
        argv += ["--workers", "1"]
    try:
        mono_gen_main(argv + ["--quiet"])
    except SystemExit as exc:
        if exc.code:
            raise AssertionError(f"mono-gen {' '.join(argv)} exited with {exc.code}") from None


def shard_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(root).glob("train-*.tar"))}


# Datasets read back with plain webdataset and ffcv, not with mono's own readers

SMALL = ("--samples", 300, "--size", 32, "--shard-size", 100)


def make_dataset(out: Path, image: Path, *args, fmt: str = "both") -> Path:
    mono_gen("--image", image, *SMALL, *args, "--format", fmt, "--out", out)
    return out


def shard_samples(root: Path) -> list[tuple[int, int, bytes]]:
    """(index, label, JPEG bytes) of every sample, read with plain webdataset."""
    pattern = str(Path(root) / "train-{000000..000002}.tar")
    dataset = wds.WebDataset(pattern, shardshuffle=False).to_tuple("__key__", "cls", "jpg")
    return [(int(key), int(label), jpeg) for key, label, jpeg in dataset]


def beton_samples(path: Path) -> list[tuple[int, bytes]]:
    """(label, JPEG bytes) of every sample, located with ffcv's own Reader."""
    from ffcv.reader import Reader

    reader = Reader(str(path))
    data = np.memmap(path, np.uint8, mode="r")
    sizes = dict(zip(reader.alloc_table["ptr"].tolist(), reader.alloc_table["size"].tolist()))
    image, label = reader.metadata["f0"], reader.metadata["f1"]
    assert set(image["mode"].tolist()) == {0}  # 0: JPEG
    return [
        (int(lab), data[ptr : ptr + sizes[ptr]].tobytes())
        for lab, ptr in zip(label.tolist(), image["data_ptr"].tolist())
    ]


def without_ffcv(tmp_path: Path) -> dict:
    """Environment for a subprocess in which `import ffcv` fails as if it were not installed."""
    hook = tmp_path / "ffcv-blocker"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text("import sys\nsys.modules['ffcv'] = None  # import ffcv -> ImportError\n")
    return {"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}


# Trainers on tiny datasets

# AlexNet's smallest comfortable input: 64 px crops of 72 px images keep the CPU tests fast.
SIZE, CROP = 72, 64
TINY = ["--epochs", 1, "--batch-size", 8, "--crop", CROP, "--head-width", 256, "--workers", 0, "--quiet"]


def tiny_dataset(root: Path, image: Path, samples: int = 256, size: int = SIZE) -> Path:
    out = root / f"data-{samples}-{size}"
    if not out.exists():
        mono_gen("--image", image, "--samples", samples, "--size", size, "--shard-size", 64, "--out", out)
    return out


def train(method: str, *args) -> None:
    """Run `mono-train METHOD args` in-process; raise if it exits with an error."""
    module = importlib.import_module(f"mono.trainers.{method}")
    module.main([str(a) for a in args])


def metrics(run_dir: Path) -> list[dict]:
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def torchrun(method: str, *args, seen: Path) -> subprocess.CompletedProcess:
    """`torchrun --nproc-per-node=2 -m mono.trainers.METHOD args` on the CPU (gloo), each rank recording the sample
    indices it trains on under `seen`."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        f"mono.trainers.{method}",
        *map(str, args),
        "--record-samples",
        str(seen),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def seen_by_rank(seen: Path, epoch: int = 0) -> list[np.ndarray]:
    return [np.loadtxt(seen / f"rank{r}" / f"epoch{epoch:03d}.txt", dtype=int, ndmin=1) for r in (0, 1)]


# mono-viz in this process


@dataclass
class VizResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke_viz(*args) -> VizResult:
    """Run ``mono-viz ARGS`` in this process through its entry point (the same one-line error handling as the
    installed command): quicker than a subprocess, for checks that need no fresh interpreter."""
    from mono.probes.viz_cli import main

    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return VizResult(code, stdout.getvalue(), stderr.getvalue())


def assert_one_line_viz_error(result: VizResult, *fragments: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("mono-viz: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# Tiny image folders and checkpoints for the fine-tuning and picture tests

SMALL_MONOGAN = {"widths": [8, 16, 16, 16]}
"""A monogan narrow enough to train in a second on CPU."""


def colour_folders(root: Path, train: int = 16, val: int = 8, size: int = 32, seed: int = 0) -> Path:
    """ImageFolder splits ``root/train`` and ``root/val`` of two classes, reddish and bluish noise."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for cls, channel in (("blue", 2), ("red", 0)):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
                pixels[..., channel] += 120
                Image.fromarray(pixels).save(root / split / cls / f"{i}.png")
    return root


def monogan_checkpoint(path: Path, seed: int = 0, **arch_args) -> Path:
    """A random monogan trunk (``SMALL_MONOGAN`` unless told otherwise) saved as a mono checkpoint."""
    args = arch_args or SMALL_MONOGAN
    torch.manual_seed(seed)
    return save_checkpoint(
        path,
        build_trunk("monogan", **args),
        arch="monogan",
        arch_args=args,
        normalization=GAN_NORMALIZATION,
        method="test",
        dataset_manifest_sha256=None,
        epoch=1,
        meta={},
    )
