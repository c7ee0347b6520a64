"""Write files so that readers only ever see nothing or the complete file: a hidden temporary file, renamed.

The generator side's one helper for this; the learning side has its own (learning/atomic.py), as the two
sides may not import each other. Both give files the permissions open() would (0666 less the umask),
not mkstemp's 0600, which would hide a shared dataset from the other users of a group.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def file_mode() -> int:
    """The permissions open() gives a new file: 0666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def replacing(path: Path, fsync: bool = True, staging: Path | None = None) -> Iterator[BinaryIO]:
    """A file to write `path` through: a hidden temporary file, renamed onto `path` on success and removed
    on failure. `staging`, a directory on the same file system, holds the temporary file instead of
    `path`'s own directory (a dataset's run state, cleaned when a killed run is resumed)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=staging or path.parent, prefix=f".{path.name}.", suffix=".tmp")
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


def stale_temporaries(path: Path) -> list[Path]:
    """Temporary files that `replacing(path)` left behind when its process was killed."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error about `path`, the file the caller asked for, rather than its temporary file: one-line
    reports name what the user can act on (a full disk, a directory they cannot write)."""
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def write_bytes(path: Path, data: bytes, fsync: bool = True) -> None:
    with replacing(path, fsync) as f:
        f.write(data)


def write_json(path: Path, obj, fsync: bool = True) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode(), fsync)


def write_text(path: Path, text: str, fsync: bool = True) -> None:
    write_bytes(path, text.encode("utf-8"), fsync)
