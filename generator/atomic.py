"""Write files so that readers only ever see nothing or the complete file."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

FILE_MODE = 0o644  # as the shards; mkstemp's 0600 would hide shared datasets from other users


@contextmanager
def replacing(path: Path, fsync: bool = True) -> Iterator[BinaryIO]:
    """A file to write `path` through: a hidden temporary sibling, renamed onto `path` on success."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stale_temporaries(path: Path) -> list[Path]:
    """Temporary files that `replacing(path)` left behind when its process was killed."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def write_bytes(path: Path, data: bytes, fsync: bool = True) -> None:
    with replacing(path, fsync) as f:
        f.write(data)


def write_json(path: Path, obj, fsync: bool = True) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode(), fsync)


def write_text(path: Path, text: str, fsync: bool = True) -> None:
    write_bytes(path, text.encode("utf-8"), fsync)
