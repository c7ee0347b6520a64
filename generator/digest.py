"""SHA-256 of files, streamed: the checksums the manifest records."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def file_sha256(path: Path) -> tuple[int, str]:
    """(size in bytes, hex SHA-256) of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class HashingReader:
    """A read-only stream that hashes and counts what passes through it: a file is checked against its
    recorded SHA-256 in the same pass that reads it."""

    def __init__(self, raw: BinaryIO, on_bytes: Callable[[int], None] | None = None):
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0
        self.on_bytes = on_bytes

    def read(self, n: int) -> bytes:
        data = self.raw.read(n)
        self.digest.update(data)
        self.size += len(data)
        if self.on_bytes is not None:
            self.on_bytes(len(data))
        return data

    def drain(self) -> None:
        """Read (and hash) the rest of the file."""
        while self.read(1 << 22):
            pass

    def fileno(self) -> int:
        """The file's descriptor: its size bounds what an archive's headers may claim (tar_format.iter_members)."""
        return self.raw.fileno()

    def matches(self, record: dict) -> bool:
        """Whether the bytes read so far are the file a manifest record (`bytes`, `sha256`) describes."""
        return self.size == record["bytes"] and self.digest.hexdigest() == record["sha256"]
