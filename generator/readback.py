"""Read a dataset directory back: verify it against its manifest, summarise it, sample from it."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from . import manifest as manifest_mod
from .layout import SHARD_PREFIX, DatasetDir, sample_key
from .tarfmt import iter_members

EXPECTED_EXTS = ("jpg", "cls", "json")


class _HashingReader:
    """A read-only stream that hashes and counts what passes through it."""

    def __init__(self, raw: BinaryIO, on_bytes: Callable[[int], None]):
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0
        self.on_bytes = on_bytes

    def read(self, n: int) -> bytes:
        data = self.raw.read(n)
        self.digest.update(data)
        self.size += len(data)
        self.on_bytes(len(data))
        return data

    def drain(self) -> None:
        while self.read(1 << 22):
            pass


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    shards: int = 0
    samples: int = 0
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(root: Path, decode: bool = False, on_bytes: Callable[[int], None] = lambda n: None) -> Report:
    """Recompute every shard's size, SHA-256 and sample count and compare them with the manifest."""
    manifest = manifest_mod.load(root)
    out = DatasetDir(root)
    report = Report()
    num_classes = manifest["num_classes"]
    size = manifest["image_size"]
    listed = set()
    for entry in manifest["shards"]:
        name = entry["name"]
        listed.add(name)
        path = out.root / name
        if not path.is_file():
            report.problems.append(f"{name}: missing")
            continue
        with open(path, "rb") as raw:
            stream = _HashingReader(raw, on_bytes)
            problems = _check_samples(stream, entry, num_classes, size, decode)
            stream.drain()
        if stream.size != entry["bytes"]:
            problems.append(f"size {stream.size:,} bytes, manifest says {entry['bytes']:,}")
        if stream.digest.hexdigest() != entry["sha256"]:
            problems.append("SHA-256 differs from the manifest")
        report.problems += [f"{name}: {p}" for p in problems]
        report.shards += 1
        report.bytes += stream.size
        report.samples += entry["count"]
    extra = sorted(p.name for p in out.root.glob(f"{SHARD_PREFIX}-*.tar") if p.name not in listed)
    report.problems += [f"{name}: shard not listed in the manifest" for name in extra]
    if sum(e["count"] for e in manifest["shards"]) != manifest["num_samples"]:
        report.problems.append("manifest: shard counts do not add up to num_samples")
    return report


def _check_samples(stream, entry: dict, num_classes: int, size: int, decode: bool) -> list[str]:
    expected = [sample_key(i) for i in range(entry["first"], entry["first"] + entry["count"])]
    seen: dict[str, dict[str, bytes]] = {}
    order: list[str] = []
    try:
        for name, data in iter_members(stream):
            key, _, ext = name.partition(".")
            if key not in seen:
                seen[key] = {}
                order.append(key)
            seen[key][ext] = data if ext != "jpg" or decode else b""
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"damaged archive ({exc})"]
    problems = []
    if order != expected:
        problems.append(f"holds {len(order)} samples, expected {len(expected)} with keys {expected[0]}..{expected[-1]}" if expected else "unexpected samples")
    for key in order:
        files = seen[key]
        missing = [e for e in EXPECTED_EXTS if e not in files]
        if missing:
            problems.append(f"sample {key} lacks {', '.join(missing)}")
            continue
        try:
            label = int(files["cls"])
            json.loads(files["json"])
        except ValueError:
            problems.append(f"sample {key}: unreadable label or parameters")
            continue
        if not 0 <= label < num_classes:
            problems.append(f"sample {key}: label {label} outside 0..{num_classes - 1}")
        if decode:
            problem = _check_jpeg(files["jpg"], size)
            if problem:
                problems.append(f"sample {key}: {problem}")
        if len(problems) > 20:
            problems.append("… (stopping after 20 problems in this shard)")
            break
    return problems


def _check_jpeg(data: bytes, size: int) -> str | None:
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return "JPEG does not decode"
    if image.shape[:2] != (size, size):
        return f"image is {image.shape[1]}×{image.shape[0]}, expected {size}×{size}"
    return None


def shard_paths(root: Path) -> list[Path]:
    """Shards listed by the manifest, or, for an unfinished dataset, those present."""
    root = Path(root)
    if (root / manifest_mod.MANIFEST).exists():
        return [root / s["name"] for s in manifest_mod.load(root)["shards"]]
    return sorted(root.glob(f"{SHARD_PREFIX}-*.tar"))


def iter_samples(root: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {ext: bytes}) of every sample in order."""
    for path in shard_paths(root):
        with open(path, "rb") as f:
            key, files = None, {}
            for name, data in iter_members(f):
                k, _, ext = name.partition(".")
                if k != key and key is not None:
                    yield key, files
                    files = {}
                key = k
                files[ext] = data
            if key is not None:
                yield key, files
