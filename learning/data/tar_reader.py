"""Read the samples of a shard from a stream, fast, skipping those another reader takes.

The shards are POSIX ustar archives (shards/README.md). Python's tarfile, which webdataset uses,
costs about 100 µs per member in streaming mode; parsing the 512-byte headers directly costs a few,
and a sample not wanted here is skipped with a seek when the stream is a local file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from typing import BinaryIO

BLOCK = 512
_ZEROS = bytes(BLOCK)
MAX_MEMBER = 1 << 30  # no sample's JPEG comes near (8192 px at quality 100 is about 100 MB)


def iter_samples(stream: BinaryIO, wanted: Callable[[int], bool], where: str) -> Iterator[tuple[int, bytes, int]]:
    """(index, JPEG bytes, label) of each wanted sample, in the shard's order; ValueError if damaged.

    A member's claimed size is bounded by what is left of a local file (by MAX_MEMBER on a stream of unknown
    length) before anything is read or allocated: a damaged or hostile header is a ValueError, not a
    MemoryError."""
    seekable = _seekable(stream)
    length = _length(stream) if seekable else None
    offset = 0
    key, files = None, {}
    while True:
        header = stream.read(BLOCK)
        offset += BLOCK
        if len(header) < BLOCK:
            raise ValueError(f"{where}: archive truncated (no end-of-archive marker)")
        if header == _ZEROS:
            break
        name, size, regular = _parse(header, where)
        skip = size + (-size % BLOCK)
        if length is not None and size > length - offset:
            raise ValueError(f"{where}: member {name} claims {size:,} bytes, more than the {length:,}-byte shard holds")
        offset += skip
        stem, _, ext = name.partition(".")
        if stem != key:
            if key is not None and files:
                yield _sample(key, files, where)
            key, files = stem, {}
            keep = regular and stem.isdigit() and wanted(int(stem))
        if keep and ext in ("jpg", "cls"):
            if size > MAX_MEMBER:
                raise ValueError(f"{where}: member {name} claims {size:,} bytes, more than any sample's image")
            files[ext] = stream.read(size)
            if len(files[ext]) < size:
                raise ValueError(f"{where}: archive truncated inside {name}")
            skip -= size
        if seekable:
            stream.seek(skip, 1)
        else:
            _discard(stream, skip, where)
    if key is not None and files:
        yield _sample(key, files, where)


def _parse(header: bytes, where: str) -> tuple[str, int, bool]:
    try:
        stored = header[148:156].split(b"\x00")[0].strip()
        size = int(header[124:136].split(b"\x00")[0].strip() or b"0", 8)
        intact = stored and int(stored, 8) == sum(header[:148]) + 256 + sum(header[156:])
    except ValueError:
        intact = False
    if not intact:
        raise ValueError(f"{where}: damaged tar header")
    name = header[:100].split(b"\x00")[0].decode("utf-8", "replace")
    prefix = header[345:500].split(b"\x00")[0].decode("utf-8", "replace")
    return (prefix + "/" + name if prefix else name), size, header[156] in (0x30, 0)


def _length(stream) -> int | None:
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _sample(key: str, files: dict[str, bytes], where: str) -> tuple[int, bytes, int]:
    if "jpg" not in files or "cls" not in files:
        raise ValueError(f"{where}: sample {key} lacks its .jpg or .cls")
    try:
        return int(key), files["jpg"], int(files["cls"])
    except ValueError:
        raise ValueError(f"{where}: sample {key} has an unreadable label") from None


def _seekable(stream) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _discard(stream: BinaryIO, n: int, where: str) -> None:
    while n:
        chunk = stream.read(min(n, 1 << 20))
        if not chunk:
            raise ValueError(f"{where}: archive truncated")
        n -= len(chunk)
