"""`mono-shards pull URL DEST`: copy a dataset directory published over HTTP(S), every file checked against the
manifest's SHA-256, resuming where an interrupted pull stopped.

The manifest comes first and decides everything: which files to fetch (by the plain names it lists, appended
to the URL the user gave; a manifest naming anything else is refused before any download), their sizes and
their digests. Files are downloaded into DEST/.mono-pull/ and renamed into place once their SHA-256 is the
manifest's; a partial download is continued with an HTTP Range request. The card and, last, manifest.json are
written when every file is there: like a dataset mono-gen is still making, DEST has no manifest until then.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path

from . import __version__, atomic, lock
from . import manifest as manifest_mod
from .dataset_dir import BETON, MANIFEST
from .errors import UserError
from .manifest import FFCV, FOLDER, data_files, formats_of

STAGING = ".mono-pull"  # DEST/.mono-pull/: the manifest being pulled and the partial downloads
TIMEOUT_S = 60
CHUNK = 1 << 20
MAX_MANIFEST_BYTES = 1 << 29  # 100,000 shard records are ~20 MB; refuse what no manifest is


def base_url(url: str) -> str:
    """The dataset directory's URL, from the URL of the directory or of its manifest.json."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"{url}: not an http:// or https:// URL of a dataset directory")
    base = url.rstrip("/")
    return base[: -len(MANIFEST) - 1] if base.endswith("/" + MANIFEST) else base


def file_url(base: str, name: str) -> str:
    return f"{base}/{urllib.parse.quote(name)}"


def fetch_manifest(url: str) -> dict:
    """The manifest of the dataset at `url`, checked (plain file names only) before anything else is fetched."""
    where = file_url(base_url(url), MANIFEST)
    try:
        with _open(where) as response:
            raw = response.read(MAX_MANIFEST_BYTES + 1)
    except (urllib.error.URLError, HTTPException, OSError) as exc:
        raise UserError(f"{where}: cannot download the manifest ({_reason(exc)})") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise UserError(f"{where}: larger than any manifest ({MAX_MANIFEST_BYTES:,} bytes)")
    return manifest_mod.parse(raw, where)


def pull(url: str, dest: Path, progress: bool = True, on_start: Callable[[dict, int], None] = lambda m, n: None) -> int:
    """Make DEST a verified copy of the dataset at `url`; returns the number of bytes downloaded."""
    from .card import write_manifest
    from .verify import manifest_problems

    dest = Path(dest)
    base = base_url(url)
    manifest = fetch_manifest(base)
    if FOLDER in formats_of(manifest):
        raise UserError(f"{base}: an exported folder; pull the dataset it was exported from")
    problems = manifest_problems(manifest)
    if FFCV in formats_of(manifest) and manifest["ffcv"]["name"] != BETON:
        problems.append(f"its FFCV file is {manifest['ffcv']['name']!r}, not {BETON}")
    if problems:  # shard and timm names are those the config makes: no file of the directory is overwritten
        raise UserError(f"{file_url(base, MANIFEST)}: inconsistent manifest: {problems[0]}")
    with lock.hold(dest, "mono-shards") as created:
        try:
            staging = _prepare(dest, manifest)
        except BaseException:
            if created:
                shutil.rmtree(dest, ignore_errors=True)
            raise
        files = data_files(manifest)
        on_start(manifest, sum(f["bytes"] for f in files))
        downloaded = 0
        with _bar(sum(f["bytes"] for f in files), progress) as bar:
            for record in files:
                downloaded += _pull_file(base, dest, staging, record, bar.update)
        write_manifest(dest, manifest)
        shutil.rmtree(staging, ignore_errors=True)
    return downloaded


def _prepare(dest: Path, manifest: dict) -> Path:
    """DEST's staging directory, for this manifest: partial downloads of another dataset are dropped; a directory
    holding anything else than this dataset is refused."""
    staging = dest / STAGING
    if (dest / MANIFEST).exists():
        held = manifest_mod.load(dest)
        if held["config_sha256"] != manifest["config_sha256"]:
            raise UserError(f"{dest}: holds another dataset; choose a new or empty directory")
    elif not staging.is_dir() and any(p.name != lock.LOCK for p in dest.iterdir()):
        raise UserError(f"{dest}: directory is not empty and holds no pull of this dataset; choose another")
    staged = staging / MANIFEST
    records = _records(_read_json(staged)) if staged.exists() else None
    if records and records[0] != manifest["config_sha256"]:  # its files, renamed into DEST, would mix with ours
        raise UserError(f"{dest}: holds an unfinished pull of another dataset; delete it or choose another directory")
    if records is not None and records != _records(manifest):
        shutil.rmtree(staging)  # the same dataset published again with other bytes: partial files are of no use
    (staging / "partial").mkdir(parents=True, exist_ok=True)
    if not staged.exists():
        atomic.write_json(staged, manifest, fsync=False)
    return staging


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _records(manifest) -> list:
    try:
        return [manifest.get("config_sha256"), data_files(manifest)]
    except (AttributeError, KeyError, TypeError):
        return []


def _pull_file(base: str, dest: Path, staging: Path, record: dict, advance: Callable[[int], None]) -> int:
    """Download one file unless DEST holds it with the recorded bytes; returns the bytes downloaded."""
    name, size, digest = record["name"], record["bytes"], record["sha256"]
    target = dest / name
    if target.is_file():
        found = _sha256_of(target, advance)
        if found == (size, digest):
            return 0
        advance(-found[0])
        target.unlink()
    partial = staging / "partial" / name
    have = partial.stat().st_size if partial.is_file() else 0
    if have > size:
        partial.unlink()
        have = 0
    hasher = hashlib.sha256()
    if have:
        _sha256_of(partial, advance, hasher)
    url = file_url(base, name)
    got = 0
    if have < size:
        try:
            got, hasher = _download(url, partial, have, size, hasher, advance)
        except (urllib.error.URLError, HTTPException, OSError) as exc:
            if isinstance(exc, OSError) and exc.filename is not None:
                raise  # our own disk: reported as such
            raise UserError(f"{url}: download failed ({_reason(exc)}); run the same command again to resume") from None
    if partial.stat().st_size != size or hasher.hexdigest() != digest:
        partial.unlink()
        raise UserError(f"{url}: the bytes downloaded differ from the manifest's SHA-256 (a damaged published copy)")
    os.replace(partial, target)
    return got


def _download(url: str, partial: Path, have: int, size: int, hasher, advance: Callable[[int], None]):
    """Append the rest of the file from byte `have` (a Range request) to `partial`, hashing it on; returns the
    bytes received and the SHA-256 of the whole file so far."""
    request = urllib.request.Request(url, headers={"User-Agent": f"mono-shards/{__version__}"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    with _open(request) as response, open(partial, "ab") as out:
        if have and response.status != 206:  # the server ignores ranges: start again
            out.truncate(0)
            advance(-have)
            hasher = hashlib.sha256()
            have = 0
        received = 0
        while chunk := response.read(min(CHUNK, size - have - received + 1)):
            received += len(chunk)
            if have + received > size:
                raise UserError(f"{url}: the server sends more than the manifest's {size:,} bytes")
            out.write(chunk)
            hasher.update(chunk)
            advance(len(chunk))
    if have + received < size:  # the connection ended early (http.client reads short rather than raise)
        raise UserError(
            f"{url}: download failed (the connection closed after {have + received:,} of {size:,} bytes); "
            "run the same command again to resume"
        )
    return received, hasher


def _open(request):
    if isinstance(request, str):
        request = urllib.request.Request(request, headers={"User-Agent": f"mono-shards/{__version__}"})
    return urllib.request.urlopen(request, timeout=TIMEOUT_S)


def _sha256_of(path: Path, advance: Callable[[int], None], hasher=None) -> tuple[int, str]:
    hasher = hasher or hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
            advance(len(chunk))
    return size, hasher.hexdigest()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    reason = getattr(exc, "reason", None) or exc
    return str(reason) or type(exc).__name__


def _bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc="pull",
        disable=not enabled,
        dynamic_ncols=True,
        mininterval=0.2 if os.isatty(2) else 30,
    )
