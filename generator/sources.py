"""Where source images come from: the paper's images, any file, a folder or list, or the embedded default."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from . import atomic
from .errors import UserError
from .imageio import DEFAULT_MAX_PIXELS, decode_rgb

# The paper's three images, as published in the authors' repository.
PAPER_IMAGES = {
    "A": ("ameyoko.jpg", "78c2681de2dbfb416fb861ca3ae0a5e21f3f53c56dfc18b276b0feab4ec526aa"),
    "B": ("animals.png", "8d53d41034236f3b7248134e1b9b48060ee0f6eed1eb779a1f0522e0bf05f533"),
    "C": ("sf.png", "a17d42cda71851ff48b6abf24f7eaf28eb021e05094805443de073c11696b7f6"),
}
PAPER_IMAGES_URL = "https://raw.githubusercontent.com/yukimasano/single_img_pretraining/master/images/"
DOWNLOAD_TIMEOUT_S = 30

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}


@dataclass(frozen=True)
class SourceImage:
    """One validated source image. `sha256` pins its bytes; `path` is only where it was found."""

    name: str
    path: str
    sha256: str
    width: int
    height: int
    origin: str  # "paper:A", "embedded", "file" or "folder"

    def to_dict(self) -> dict:
        return asdict(self)


def cache_dir() -> Path:
    if os.environ.get("MONO_CACHE_DIR"):
        return Path(os.environ["MONO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mono"


def read_image_file(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[bytes, str]:
    """The file's bytes and SHA-256, with one-line errors for the usual mistakes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not an image (use --source for a folder)") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return data, hashlib.sha256(data).hexdigest()


def inspect(path: Path, origin: str, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None) -> SourceImage:
    data, digest = read_image_file(path, max_pixels)
    rgb = decode_rgb(data, str(path), max_pixels)
    return SourceImage(
        name=name or path.name,
        path=str(path.resolve()),
        sha256=digest,
        width=rgb.shape[1],
        height=rgb.shape[0],
        origin=origin,
    )


def embedded_default() -> Path:
    """A photograph that ships with matplotlib (Grace Hopper, 512×600), so the quick start runs offline."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise UserError(f"the embedded default image is missing from this matplotlib install ({path}); pass --image")
    return path


def paper_image(letter: str, image_dir: str | None) -> Path:
    """Find (or fetch into the cache) the paper's image A, B or C, verified by SHA-256."""
    name, digest = PAPER_IMAGES[letter]
    places = []
    if image_dir:
        places.append(Path(image_dir))
    if os.environ.get("MONO_IMAGE_DIR"):
        places.append(Path(os.environ["MONO_IMAGE_DIR"]))
    cache = cache_dir() / "images"
    places.append(cache)
    for place in places:
        candidate = place / name
        if candidate.is_file():
            data, found = read_image_file(candidate)
            if found != digest:
                raise UserError(
                    f"{candidate} is not the paper's image {letter} (sha256 {found[:12]}…, expected {digest[:12]}…); "
                    "remove it or point --image-dir elsewhere"
                )
            return candidate
    base = os.environ.get("MONO_IMAGE_URL", PAPER_IMAGES_URL)
    try:
        return _download(base.rstrip("/") + "/" + name, cache / name, digest)
    except UserError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        searched = ", ".join(str(p) for p in places)
        raise UserError(
            f"image {letter} ({name}) is not in {searched} and could not be downloaded "
            f"({getattr(exc, 'reason', exc)}); put {name} in {cache} or pass --image-dir DIR"
        ) from None


def _download(url: str, target: Path, digest: str) -> Path:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        data = response.read()
    found = hashlib.sha256(data).hexdigest()
    if found != digest:
        raise UserError(f"download from {url} does not match the expected sha256 ({found[:12]}… != {digest[:12]}…)")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(target, data)
    return target


def list_folder(folder: Path) -> list[Path]:
    """Image files under a folder, recursively, in a fixed (sorted, relative-path) order."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in files:
            if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(root) / f)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def read_list(list_file: Path) -> list[Path]:
    """Paths from a text file, one per line; relative paths are relative to the file; # starts a comment."""
    data, _ = read_image_file(list_file)
    paths = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            paths.append(p if p.is_absolute() else list_file.parent / p)
    return paths


def choose(paths: list[Path], n: int, seed: int, anchor: Path) -> list[Path]:
    """N of the candidates, chosen by the seed: rank by a hash of (seed, path relative to anchor)."""

    def rank(p: Path) -> bytes:
        try:
            key = p.relative_to(anchor).as_posix()
        except ValueError:
            key = p.as_posix()
        return hashlib.sha256(f"{seed}:{key}".encode()).digest()

    return sorted(paths, key=rank)[:n]


def resolve(
    image: str | None,
    image_dir: str | None,
    n: int | None,
    source: str | None,
    seed: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[SourceImage]:
    """Turn the command line's source options into validated source images, in label order."""
    if source is not None:
        if image is not None:
            raise UserError("give either --image or --source, not both")
        return _resolve_many(Path(source).expanduser(), n, seed, max_pixels)
    if n is not None and n != 1:
        raise UserError("--num-sources needs --source DIR|LIST to choose the images from")
    if image is None:
        return [inspect(embedded_default(), "embedded", max_pixels)]
    if image.upper() in PAPER_IMAGES and not Path(image).exists():
        letter = image.upper()
        return [inspect(paper_image(letter, image_dir), f"paper:{letter}", max_pixels)]
    return [inspect(Path(image).expanduser(), "file", max_pixels)]


def _resolve_many(source: Path, n: int | None, seed: int, max_pixels: int) -> list[SourceImage]:
    if source.is_dir():
        candidates, anchor = list_folder(source), source
        where = f"folder {source}"
    elif source.is_file():
        candidates, anchor = read_list(source), source.parent
        where = f"list {source}"
    else:
        raise UserError(f"{source}: no such folder or list file")
    if not candidates:
        raise UserError(f"{where} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if n is None:
        n = len(candidates)
    if n < 1:
        raise UserError(f"--num-sources must be at least 1, got {n}")
    if n > len(candidates):
        raise UserError(f"--num-sources {n} asks for more images than the {len(candidates)} in {where}")
    chosen = choose(candidates, n, seed, anchor)
    images = []
    for p in chosen:
        try:
            name = p.relative_to(anchor).as_posix()
        except ValueError:
            name = p.as_posix()
        images.append(inspect(p, "folder" if source.is_dir() else "list", max_pixels, name=name))
    return images
