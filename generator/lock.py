"""One writer per dataset directory: an exclusive lock on DIR/.mono-gen.lock, naming its holder.

Two runs writing one directory would delete each other's temporary files and clean up each other's
state. The first takes the lock (fcntl.flock, released by the kernel whatever way the process ends);
a second is refused in one line that says who holds it, having changed nothing. The lock file is
removed when its holder finishes, so a finished dataset holds no trace of it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

LOCK = ".mono-gen.lock"


@contextmanager
def hold(root: Path, program: str) -> Iterator[bool]:
    """Hold `root` (created if missing) for this process; yields whether this call created it."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: exists and is not a directory")
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{root}: cannot write the output directory ({exc.strerror or exc})") from None
    path = root / LOCK
    fd = _acquire(path, root)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{program} pid {os.getpid()} host {socket.gethostname()}\n".encode())
        yield created
    finally:
        try:
            if _same_file(fd, path):
                path.unlink()
        except OSError:
            pass
        os.close(fd)


def _acquire(path: Path, root: Path) -> int:
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise UserError(f"{root}: cannot write the output directory ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise UserError(
                f"{root}: in use by another run ({holder}); wait for it to finish, or choose another output directory"
            ) from None
        if _same_file(fd, path):
            return fd
        os.close(fd)  # its holder removed it between our open and our lock: take the new one
    raise UserError(f"{root}: cannot lock {path}")


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _holder(fd: int) -> str:
    """`mono-gen, pid 1234 on host node1` from the lock file, as its holder wrote it."""
    try:
        words = os.pread(fd, 256, 0).decode("utf-8", "replace").split()
    except OSError:
        words = []
    if len(words) == 5 and words[1] == "pid" and words[3] == "host":
        return f"{words[0]}, pid {words[2]} on host {words[4]}"
    return "a process that has not said who it is yet"
