"""One writer per dataset directory: an exclusive lock on DIR/.mono-gen.lock, naming its holder.

Two runs writing one directory would delete each other's temporary files and clean up each other's
state. The first takes the lock (fcntl.flock, released by the kernel whatever way the process ends);
a second is refused in one line that says who holds it, having changed nothing. The lock file is
removed when its holder finishes, so a finished dataset holds no trace of it.

`mono-gen --shards auto` ranks hold it shared instead: each writes only its own shards and temporary files.
The one that can take it alone at the end finishes the dataset (`Shared.exclusive`), naming itself
`…-finishing`; a rank that starts meanwhile waits for that rather than fail.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

LOCK = ".mono-gen.lock"
FINISHING = "-finishing"  # appended to the program's name in the lock file by a range writer that finishes


@contextmanager
def hold(root: Path, program: str) -> Iterator[bool]:
    """Hold `root` (created if missing) for this process; yields whether this call created it."""
    with _hold(root, program, shared=False) as holding:
        yield holding.created


class Shared:
    """A directory held together with other range writers (`mono-gen --shards auto`): each renders its own
    shards; the one that can then hold it alone (`exclusive`) may finish the dataset."""

    def __init__(self, fd: int, created: bool, shared: bool, program: str):
        self.fd, self.created, self.alone, self.program = fd, created, not shared, program

    def exclusive(self) -> bool:
        """Whether this process now holds the directory alone: no other range writer or finisher is running.
        (flock converts by releasing first, so of two trying at once both may fail; `mono-shards finish`
        then finishes the dataset.)"""
        if not self.alone:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.alone = True
                _say(self.fd, self.program + FINISHING)  # range writers that start now wait for it
            except BlockingIOError:
                pass
        return self.alone


@contextmanager
def hold_alone(root: Path, program: str) -> Iterator[Shared]:
    """`hold`, yielding the holding itself (which is exclusive already)."""
    with _hold(root, program, shared=False) as holding:
        yield holding


@contextmanager
def hold_shared(root: Path, program: str) -> Iterator[Shared]:
    """Hold `root` (created if missing) alongside other range writers, not alongside a run that holds it
    alone. The lock file stays while any writer may hold it; the one that finishes alone removes it."""
    with _hold(root, program, shared=True) as holding:
        yield holding


@contextmanager
def _hold(root: Path, program: str, shared: bool) -> Iterator[Shared]:
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: exists and is not a directory")
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{root}: cannot write the output directory ({exc.strerror or exc})") from None
    path = root / LOCK
    fd = _acquire(path, root, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
    holding = Shared(fd, created, shared, program)
    try:
        _say(fd, program)
        yield holding
    finally:
        try:
            if holding.alone and _same_file(fd, path):
                path.unlink()
        except OSError:
            pass
        os.close(fd)


def _acquire(path: Path, root: Path, mode: int = fcntl.LOCK_EX) -> int:
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise UserError(f"{root}: cannot write the output directory ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if mode == fcntl.LOCK_SH and _finishing(fd):
                fcntl.flock(fd, mode)  # a range writer that started late waits for the finish, then sees it
                if _same_file(fd, path):
                    return fd
                os.close(fd)
                continue
            os.close(fd)
            raise UserError(
                f"{root}: in use by another run ({holder}); wait for it to finish, or choose another output directory"
            ) from None
        if _same_file(fd, path):
            return fd
        os.close(fd)  # its holder removed it between our open and our lock: take the new one
    raise UserError(f"{root}: cannot lock {path}")


def _finishing(fd: int) -> bool:
    """Whether the exclusive holder is a range writer finishing the dataset. It names itself so just after
    taking the lock: a holder still named otherwise is given a moment to."""
    for _ in range(10):
        if _holder(fd).split(",")[0].endswith(FINISHING):
            return True
        time.sleep(0.1)
    return False


def _say(fd: int, program: str) -> None:
    """Name the holder in the lock file, for the message another run gets."""
    line = f"{program} pid {os.getpid()} host {socket.gethostname()}\n".encode()
    os.ftruncate(fd, len(line))
    os.pwrite(fd, line, 0)


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
