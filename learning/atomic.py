"""Write files so that readers only ever see nothing or the complete file: a hidden temporary file, renamed.

The learning side's one helper for this (checkpoints, probe states and reports, trainers' run files, image
grids, mono-repro's reports); the generator side has its own (generator/atomic.py), as the two sides may
not import each other. Both give files the permissions open() would (0666 less the umask), not mkstemp's
0600, which would hide a run's files from the other users of a group.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["file_mode", "replacing", "write_bytes", "write_text"]


def file_mode() -> int:
    """The permissions open() gives a new file: 0666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def replacing(path: str | os.PathLike, fsync: bool = True) -> Iterator[BinaryIO]:
    """A file to write `path` through: a hidden temporary sibling, renamed onto `path` on success and
    removed on failure (fsync'ed first unless `fsync` is False)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a full disk: name the file, not nothing
            raise _naming(exc, path) from None
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error about `path`, the file the caller asked for, rather than its temporary file: one-line
    reports name what the user can act on (a full disk, a directory they cannot write)."""
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    with replacing(path, fsync) as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str, fsync: bool = True) -> None:
    write_bytes(path, text.encode("utf-8"), fsync)
