"""`mono-gen --from-manifest PATH|URL`: make a dataset again from its manifest alone, and say whether its bytes
are the recorded ones.

A manifest fixes every byte of its dataset: the configuration (augmentation, output, seed) and each source
image's SHA-256. What it cannot carry is the source images themselves; they are looked up by that SHA-256 (the
recorded name first, then every image in the places given), so that a 2 KB manifest shares a dataset of any
size. The bytes then depend on the libraries that draw, warp and encode them: numpy (random draws, colour
arithmetic), OpenCV (resampling and its bundled libjpeg-turbo, which writes the JPEGs) and Pillow (decoding
the sources); the manifest records their versions, and a mismatch names the ones that differ.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path, PurePosixPath

from . import manifest as manifest_mod
from .config import DatasetConfig
from .dataset_dir import MANIFEST
from .errors import UserError
from .manifest import FOLDER, data_files, formats_of, library_versions
from .sources import PAPER_IMAGES, SourceImage, embedded_default, inspect, list_folder, paper_image, read_list

# Library versions on which the same configuration gives the same bytes (python and the platform may matter
# through them: OpenCV's SIMD code paths differ between CPU families).
BYTE_LIBRARIES = ("numpy", "opencv", "pillow", "python", "platform")


def load(location: str) -> tuple[dict, str]:
    """The manifest at `location` (a dataset directory, a manifest file, or an http(s) URL of either) and where
    it was read, checked for what regenerating needs: a dataset's, consistent with its configuration."""
    from .pull import fetch_manifest
    from .verify import manifest_problems

    if "://" in location:
        manifest = fetch_manifest(location)
        where = location
    else:
        path = Path(location).expanduser()
        if path.is_dir():
            path = path / MANIFEST
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise UserError(f"{path}: no such manifest") from None
        except OSError as exc:
            raise UserError(f"{path}: unreadable manifest ({exc.strerror or exc})") from None
        manifest, where = manifest_mod.parse(raw, path), str(path)
    if FOLDER in formats_of(manifest):
        raise UserError(f"{where}: an exported folder; regenerate the dataset it was exported from")
    problems = manifest_problems(manifest)
    if problems:
        raise UserError(f"{where}: inconsistent manifest: {problems[0]}")
    return manifest, where


def find_sources(manifest: dict, image_dir: str | None, source: str | None, max_pixels: int) -> tuple[SourceImage, ...]:
    """The manifest's source images, in label order, each a file whose SHA-256 is the recorded one: at its
    recorded name under --image-dir or a --source folder; the embedded default; any image under those folders
    or in a --source list; the paper's image A, B or C (its usual places, or downloaded). UserError naming the
    first one not found."""
    places = [Path(image_dir).expanduser()] if image_dir else []
    lists = []
    if source:
        where = Path(source).expanduser()
        if not where.exists():
            raise UserError(f"{where}: no such folder or list file")
        (places if where.is_dir() else lists).append(where)
    recorded = manifest["config"]["sources"]
    origins = [s.get("origin", "file") for s in manifest["sources"]]
    wanted = {s["sha256"] for s in recorded}
    found: dict[str, Path] = {}
    mismatched: dict[str, Path] = {}  # digest: a file with the recorded name but other bytes
    for entry in recorded:
        relative = _relative(entry["name"])
        for place in places if relative else ():
            candidate = place / relative
            if entry["sha256"] not in found and candidate.is_file():
                if _sha256(candidate) == entry["sha256"]:
                    found[entry["sha256"]] = candidate
                else:
                    mismatched.setdefault(entry["sha256"], candidate)
    if wanted - set(found):
        default = embedded_default()
        if _sha256(default) in wanted:
            found[_sha256(default)] = default
    if wanted - set(found):
        candidates = [p for place in places if place.is_dir() for p in list_folder(place)]
        candidates += [p for listed in lists for p in read_list(listed)]
        for candidate in candidates:
            if candidate.is_file() and (digest := _sha256(candidate)) in wanted and digest not in found:
                found[digest] = candidate
                if not wanted - set(found):
                    break
    for digest in wanted - set(found):
        letter = next((k for k, (_, d) in PAPER_IMAGES.items() if d == digest), None)
        if letter is not None:
            found[digest] = paper_image(letter, image_dir)
    for entry in recorded:
        if entry["sha256"] not in found:
            searched = ", ".join(str(p) for p in places + lists) or "nowhere (no --image-dir or --source given)"
            other = mismatched.get(entry["sha256"])
            detail = f"; {other} has other bytes (sha256 {_sha256(other)[:12]}…)" if other else ""
            raise UserError(
                f"source image {entry['name']!r} (sha256 {entry['sha256'][:12]}…) is not in {searched}{detail}; "
                "give the folder that holds it with --image-dir"
            )
    return tuple(
        inspect(found[s["sha256"]], origin, max_pixels, name=s["name"]) for s, origin in zip(recorded, origins)
    )


def config_of(manifest: dict, sources: tuple[SourceImage, ...], where: str) -> DatasetConfig:
    try:
        return DatasetConfig.from_dict(manifest["config"], sources)
    except ValueError as exc:
        raise UserError(f"{where}: this mono-gen cannot regenerate it: {exc}") from None


def command_for(manifest: dict, out: str) -> str:
    """The recorded command, writing to `out`: what makes the regenerated copy."""
    try:
        words = shlex.split(manifest["command"])
    except ValueError:
        words = ["mono-gen"]
    if "--out" in words[:-1]:
        words[words.index("--out") + 1] = out
    else:
        words += ["--out", out]
    return shlex.join(words)


def differences(recorded: dict, made: dict) -> list[str]:
    """Names of the files whose SHA-256 in the new manifest is not the recorded one."""
    mine = {f["name"]: f["sha256"] for f in data_files(made)}
    return [f["name"] for f in data_files(recorded) if mine.get(f["name"]) != f["sha256"]]


def version_changes(recorded: dict) -> str:
    """The byte-relevant libraries whose versions differ from those the manifest records, in words."""
    then = recorded.get("generator", {}).get("libraries", {})
    now = library_versions()
    changed = [f"{k} {then.get(k, '?')} → {now[k]}" for k in BYTE_LIBRARIES if then.get(k) != now.get(k)]
    return ", ".join(changed) if changed else "none of numpy, opencv, pillow, python, platform differ"


def _relative(name: str) -> PurePosixPath | None:
    """A recorded name as a path below a search folder, or None if it would leave it."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
