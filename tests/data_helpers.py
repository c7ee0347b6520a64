"""Helpers for the format and loader tests: small datasets made with mono-gen, read back with the
libraries users would use (webdataset, ffcv), not with mono's own readers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import webdataset as wds

from gen_helpers import mono_gen

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
