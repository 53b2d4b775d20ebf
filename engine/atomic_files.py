"""Atomic file writes and file hashes, in one place for every package.

Every file gsrender writes (frames, reports, job templates, manifests) goes to a hidden temp
file beside its final name, is flushed to disk, and is renamed over the final name: a reader
(a compositor, a farm task, a resumed run) never sees half a file, and a killed writer leaves
only a temp file that `remove_stale_temps` recognises by its name.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

TEMP_MARK = ".tmp-"  # ".NAME.tmp-PID-RANDOM.EXT": how a temp file is told from a final one
STALE_TEMP_SECONDS = 3600.0  # a younger temp file may belong to a writer still running on another host


class ReadOnlyFileError(PermissionError):
    """The file to be replaced exists and is read-only: it is never replaced."""


def read_only_problem(path: str | Path) -> str | None:
    """Why an existing file must not be replaced, or None. A rename replaces a file whatever its
    mode, so a file made read-only (chmod a-w: an approved frame, a locked report) would be
    replaced silently: refused when this user may not write it, or nobody may (root included)."""
    try:
        st = os.stat(path)
    except OSError:
        return None  # missing (or unreadable: the write says why)
    if not stat.S_ISREG(st.st_mode):
        return None
    if st.st_mode & 0o222 == 0 or not os.access(path, os.W_OK):
        return "the file exists and is read-only; refusing to replace it (make it writable or delete it)"
    return None


def temp_path(path: Path) -> Path:
    """A temp name beside `path`: hidden, unique per process and call, and ending in the final
    name's suffix, since some writers (OpenImageIO, matplotlib) pick the format from it."""
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")


def fsync(path: str | Path, directory: bool = False) -> None:
    """Flush a file (or a folder, so that a rename in it survives a power loss) to disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """For writers that need a file name of their own: yields the temp path to write; when the
    block ends without an exception it is flushed and renamed over `path`. Whatever happens the
    temp file is gone afterwards; errors (OSError from the rename included) propagate. An
    existing read-only `path` is refused first (ReadOnlyFileError), never replaced."""
    path = Path(path)
    if (problem := read_only_problem(path)) is not None:
        raise ReadOnlyFileError(errno.EACCES, problem, str(path))
    tmp = temp_path(path)
    try:
        yield tmp
        fsync(tmp)
        os.replace(tmp, path)
        with contextlib.suppress(OSError):
            fsync(path.parent, directory=True)  # make the rename itself durable
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes | bytearray | memoryview) -> None:
    """Write `data` to `path` atomically (the folder must exist)."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically (the folder must exist)."""
    atomic_write_bytes(path, text.encode(encoding))


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (models and checkpoints are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def remove_stale_temps(folder: Path, names: set[str], older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete temp files that killed writers (SIGKILL, power loss) left for these final names.

    They never carry a final name, so they are harmless, but they pile up on a farm. Only old
    ones go (see STALE_TEMP_SECONDS). Never raises: cleaning up is a courtesy, not the render.
    """
    now = time.time()
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        cut = entry.name.rfind(TEMP_MARK)
        if not entry.name.startswith(".") or cut < 1 or entry.name[1:cut] not in names:
            continue
        with contextlib.suppress(OSError):
            if now - entry.stat(follow_symlinks=False).st_mtime > older_than:
                os.unlink(entry.path)
                removed += 1
    return removed
