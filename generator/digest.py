"""SHA-256 of files, streamed: the checksums the manifest records."""
from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> tuple[int, str]:
    """(size in bytes, hex SHA-256) of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
