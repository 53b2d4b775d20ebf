"""The plugin's shared-memory files: opened only when this user's, read and written without mapping.

The file is read and written with pread/pwrite, never mapped: a client that truncates it
mid-render then gets a short read (an error reply) instead of killing the worker with SIGBUS.
Files left by host processes that died mid-render are swept.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..engine.errors import InputError

SHM_DIR = Path("/dev/shm")
# Names the plugin creates: /gsrender-<host pid>-<counter>-<nonce>
SHM_NAME = re.compile(r"^/?(gsrender-(\d+)-[A-Za-z0-9-]+)$")


@contextlib.contextmanager
def open_shared(name: str) -> Iterator[int]:
    """Open the plugin's shared-memory file; only files of this user under /dev/shm.

    The file is read and written with pread/pwrite, never mapped: a client that truncates
    it mid-render then gets a short read (an error reply) instead of killing the worker
    with SIGBUS.
    """
    match = SHM_NAME.match(name or "")
    if not match:
        raise ValueError(f"bad shared-memory name '{name}'")
    path = SHM_DIR / match.group(1)
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(None, f"shared memory {path} is gone (the host cancelled the render?)") from None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid():
            raise ValueError(f"shared memory {path} belongs to another user")
        yield fd
    finally:
        os.close(fd)


def read_shared(fd: int, offset: int, out: np.ndarray) -> None:
    """Fill ``out`` from the file at ``offset``; a short file is the client's error, not a crash."""
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n <= 0:
            raise InputError(None, "shared memory is shorter than the frame (the host truncated it?)")
        done += n


def write_shared(fd: int, offset: int, data: np.ndarray) -> None:
    """Write the answer; refuses a file truncated below the answer's end instead of growing it."""
    view = memoryview(np.ascontiguousarray(data)).cast("B")
    if os.fstat(fd).st_size < offset + len(view):
        raise InputError(None, "shared memory is shorter than the answer (the host truncated it?)")
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_shm(directory: Path = SHM_DIR) -> int:
    """Remove shared-memory files left by host processes that died mid-render."""
    removed = 0
    if not directory.is_dir():
        return 0
    uid = os.getuid()
    for entry in os.scandir(directory):
        match = SHM_NAME.match(entry.name)
        if not match:
            continue
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_uid == uid and not _pid_alive(int(match.group(2))):
                os.unlink(entry.path)
                removed += 1
    return removed
