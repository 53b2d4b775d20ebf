"""Destinations checked before a render, and output failures told apart by errno.

The report file is an output like the frames: checked up front so it can never replace an
input plate or an output frame, and so an unwritable folder fails before hours of work.
A frame that failed to write is classified by what the file system says (a probe write
gives a real errno), not by OpenImageIO's wording: a full disk must read "no space left on
device" and exit 4, so a scheduler retries it once the disk is freed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from .atomic_files import read_only_problem
from .errors import OutputError, UsageError
from .preflight import resolved, utf8_path

_ERRNO_PROBLEMS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "no space left on device (disk quota exceeded)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EIO: "I/O error",
}


def check_report_path(report: str | os.PathLike) -> Path:
    """The --report path, refused when it is a folder or unwritable. That it is none of the run's
    inputs or outputs is checked with every other written file (engine/overwrite_guard.py)."""
    return check_written_file(report, "report", "run.json")


def check_written_file(file: str | os.PathLike, what: str, example: str) -> Path:
    """A file a command writes when its work is done (a report, a table, a contact sheet), refused
    up front when it names a folder or cannot be written, so the work is not lost at the end.

    ``what`` names it in the message ("report"), ``example`` is a file name to suggest instead of
    a folder. Its folder may not exist yet: it is created at the end, as output folders are.
    """
    path = Path(file)
    utf8_path(path)
    resolved(path, output=True)  # a symlink loop is one line, exit 4
    if path.is_dir():
        raise UsageError(path, f"--{what} names a folder; give a file name such as {example}")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(path, f"{what} folder {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(path, f"{what} folder {existing} is not writable")
    if (locked := read_only_problem(path)) is not None:
        raise OutputError(path, f"{what}: {locked}")
    return path


def write_at_end(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Write a file checked by check_written_file: its folder made first, an OSError the
    OutputError that names the file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
    except OSError as exc:
        raise OutputError(path, exc.strerror or str(exc)) from None


def problem_of(exc: OSError) -> str:
    """One phrase for an OSError on an output, from its errno."""
    return _ERRNO_PROBLEMS.get(exc.errno or 0) or exc.strerror or str(exc)


def probe_write(folder: Path, size: int = 1 << 16) -> str | None:
    """Write, fsync and delete a small file in ``folder``: the errno phrase if that fails, else None."""
    path = folder / f".gsrender-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        return problem_of(exc)
    try:
        block = b"\0" * min(size, 1 << 20)
        left = size
        while left > 0:
            left -= os.write(fd, block[:left])
        os.fsync(fd)
    except OSError as exc:
        return problem_of(exc)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
    return None


def classify_output_failure(error: OutputError, target: Path, frame_bytes: int) -> OutputError:
    """The same failure, its problem replaced by what the file system says when it says more.

    Free space below the frame's uncompressed size, or a probe write that fails, names the
    cause ("no space left on device"); otherwise the writer's own message stands. A file system
    that reports no size at all (procfs, some FUSE and object-store mounts say 0 blocks) says
    nothing about free space: there only the probe speaks.
    """
    if error.problem.startswith("no space left on device"):
        return error
    if "no space left" in error.problem.lower():  # the OS's words inside another library's message
        return OutputError(target, f"no space left on device ({error.problem})")
    folder = target.parent
    with contextlib.suppress(OSError):
        st = os.statvfs(folder)
        if st.f_blocks > 0 and st.f_bavail * st.f_frsize < frame_bytes:
            return OutputError(target, f"no space left on device ({error.problem})")
    found = probe_write(folder)
    if found is not None and found not in error.problem:
        return OutputError(target, f"{found} ({error.problem})")
    return error
