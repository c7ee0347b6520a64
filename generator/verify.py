"""`mono-shards verify`: recompute every file's size and SHA-256 and each shard's samples, and compare them with
the manifest; and check that the manifest agrees with itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import beton_format
from . import manifest as manifest_mod
from .config import config_sha256
from .dataset_dir import SHARD_PREFIX, DatasetDir, sample_key, shard_name
from .digest import HashingReader, file_sha256
from .manifest import FFCV, FOLDER, WEBDATASET, formats_of
from .tar_format import iter_members

EXPECTED_EXTS = ("jpg", "cls", "json")


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
    """Recompute every file's size and SHA-256 (and each shard's samples) and compare them with the manifest."""
    manifest = manifest_mod.load(root)
    formats = formats_of(manifest)
    report = Report()
    if WEBDATASET in formats:
        _verify_shards(root, manifest, decode, on_bytes, report)
    if FFCV in formats:
        _verify_beton(root, manifest, on_bytes, report)
    if FOLDER in formats:
        _verify_folder(root, manifest, report)
    report.problems += [f"manifest: {p}" for p in manifest_problems(manifest)]
    return report


def manifest_problems(manifest: dict) -> list[str]:
    """Where the manifest contradicts itself: its config against config_sha256, and the counts, sources and
    shard records against what that config makes. An edited manifest shows here; its files may be intact."""
    config = manifest["config"]
    if config_sha256(config) != manifest["config_sha256"]:
        return ["config does not match config_sha256 (the manifest was edited)"]
    output, sources = config["output"], config["sources"]
    problems = []
    for key, expected in (
        ("num_samples", output["samples"]),
        ("image_size", output["size"]),
        ("num_classes", len(sources)),
    ):
        if manifest[key] != expected:
            problems.append(f"{key} is {manifest[key]}, the config makes {expected}")
    n, d = len(sources), output["samples"]
    described = [
        {"index": j, "name": s["name"], "sha256": s["sha256"], "samples": d // n + (j < d % n)}
        for j, s in enumerate(sources)
    ]
    listed = [{k: s[k] for k in ("index", "name", "sha256", "samples")} for s in manifest["sources"]]
    if listed != described:
        problems.append("sources differ from the config's")
    size = output["shard_size"]
    records = [(s["name"], s["first"], s["count"]) for s in manifest["shards"]]
    expected = [(shard_name(j), j * size, min(size, d - j * size)) for j in range(-(-d // size))]
    if records != expected:
        problems.append(f"shards differ from the {len(expected)} shards of {size} samples the config makes")
    return problems


def verified_bytes(manifest: dict) -> int:
    """How many bytes `verify` reads (for a progress bar)."""
    formats = formats_of(manifest)
    total = sum(s["bytes"] for s in manifest["shards"]) if WEBDATASET in formats else 0
    return total + (manifest["ffcv"]["bytes"] if FFCV in formats else 0)


def _verify_shards(root: Path, manifest: dict, decode: bool, on_bytes, report: Report) -> None:
    out = DatasetDir(root)
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
            stream = HashingReader(raw, on_bytes)
            problems = _check_samples(stream, entry, num_classes, size, decode)
            stream.drain()
        problems += _check_file(stream, entry)
        report.problems += [f"{name}: {p}" for p in problems]
        report.shards += 1
        report.bytes += stream.size
        report.samples += entry["count"]
    extra = sorted(p.name for p in out.root.glob(f"{SHARD_PREFIX}-*.tar") if p.name not in listed)
    report.problems += [f"{name}: shard not listed in the manifest" for name in extra]


def _verify_beton(root: Path, manifest: dict, on_bytes, report: Report) -> None:
    entry = manifest.get("ffcv")
    if not isinstance(entry, dict) or "name" not in entry:
        report.problems.append("manifest: formats lists ffcv but there is no ffcv record")
        return
    path = Path(root) / entry["name"]
    if not path.is_file():
        report.problems.append(f"{entry['name']}: missing")
        return
    with open(path, "rb") as raw:
        stream = HashingReader(raw, on_bytes)
        stream.drain()
    problems = _check_file(stream, entry)
    if not problems:  # the bytes are the ones recorded; check that they say what the manifest says
        header = beton_format.read_header(path)
        if header["num_samples"] != manifest["num_samples"] or header["version"] != beton_format.VERSION:
            problems.append(f"header says {header['num_samples']} samples, format version {header['version']}")
    report.problems += [f"{entry['name']}: {p}" for p in problems]
    report.bytes += stream.size
    report.samples = report.samples or manifest["num_samples"]


def _verify_folder(root: Path, manifest: dict, report: Report) -> None:
    """Every sample's file, and nothing else, is there; and, in exports that have SHA256SUMS (its own digest
    in the manifest), every file's content is the one exported."""
    classes = manifest["folder"]["classes"]
    n = len(classes)
    expected = {f"{classes[i % n]}/{sample_key(i)}.jpg" for i in range(manifest["num_samples"])}
    found = {str(p.relative_to(root)) for p in Path(root).glob("*/*") if p.is_file()}
    missing, extra = sorted(expected - found), sorted(found - expected)
    report.problems += [f"{name}: missing" for name in missing[:20]]
    report.problems += [f"{name}: not part of the dataset" for name in extra[:20]]
    report.samples = len(expected & found)
    record = manifest["folder"].get("checksums")
    if record is not None:
        report.problems += _check_folder_content(Path(root), record, expected & found, report)


def _check_folder_content(root: Path, record: dict, present: set[str], report: Report) -> list[str]:
    path = root / record["name"]
    if not path.is_file():
        return [f"{record['name']}: missing"]
    with open(path, "rb") as raw:
        stream = HashingReader(raw)
        text = stream.read(record["bytes"] + 1)
    problems = _check_file(stream, record)
    if problems:
        return [f"{record['name']}: {p}" for p in problems]
    sums = {}
    for line in text.decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        sums[name] = digest
    changed = []
    for name in sorted(present):
        size, digest = file_sha256(root / name)
        report.bytes += size
        if sums.get(name) != digest:
            changed.append(f"{name}: SHA-256 differs from {record['name']}")
    return changed[:20] + (["… and more files differ"] if len(changed) > 20 else [])


def _check_file(stream: HashingReader, entry: dict) -> list[str]:
    problems = []
    if stream.size != entry["bytes"]:
        problems.append(f"size {stream.size:,} bytes, manifest says {entry['bytes']:,}")
    if stream.digest.hexdigest() != entry["sha256"]:
        problems.append("SHA-256 differs from the manifest")
    return problems


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
        problems.append(
            f"holds {len(order)} samples, expected {len(expected)} with keys {expected[0]}..{expected[-1]}"
            if expected
            else "unexpected samples"
        )
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
