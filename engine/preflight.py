"""Checks on an input file before its pixels are decoded.

A small file can declare an enormous image (a 1 MB PNG saying 20000x20000 decodes to
gigabytes): the header is read first and the frame refused with one line when it is
beyond --max-pixels or beyond the memory this machine has free, instead of dying in a
MemoryError or being killed by the kernel halfway through a farm task.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import OpenImageIO as oiio

from .errors import InputError, OutputError, UsageError
from .exr_header import check_header

# A 16K plate (16384 x 16384, or any 16K film aperture) passes; 20000 x 20000 does not.
DEFAULT_MAX_PIXELS = 16384 * 16384
# Decoding holds OIIO's float buffer and our RGB copy of it at once.
DECODE_BYTES_PER_SAMPLE = 4 * 2


def utf8_path(path: str | os.PathLike) -> None:
    """OpenImageIO takes file names as UTF-8: a name that is not cannot be opened or written.

    A usage error (exit 2) whatever the file's role (plate, matte, model, output, report): the
    name as given can never work, nothing was read, and the command line must change."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "backslashreplace").decode("ascii", "replace")
        raise UsageError(
            shown, "the path is not valid UTF-8, which OpenImageIO cannot handle; rename it"
        ) from None


def resolved(path: str | os.PathLike, *, output: bool) -> Path:
    """``Path(path).resolve()``, or one line when the path cannot be resolved: a symlink loop
    (Python raises RuntimeError for it, which would end the run as an internal error) or a
    component that cannot be read. OutputError (exit 4) for a destination, InputError (3) else."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:
        loop = isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP
        problem = "the path runs into a loop of symbolic links" if loop else f"cannot resolve it ({exc})"
        raise (OutputError if output else InputError)(path, problem) from None


def available_memory() -> int | None:
    """Bytes the kernel says a new allocation can get (MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def declared_size(path: Path) -> tuple[int, int, int]:
    """(width, height, channels) from the header alone; (0, 0, 0) when it cannot be read here.

    An unreadable header is left to the reader, which names the problem properly.
    """
    check_header(path)  # OpenImageIO's EXR reader is quadratic in the attribute count
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        oiio.geterror()
        return 0, 0, 0
    try:
        spec = inp.spec()
        return int(spec.width), int(spec.height) * max(int(spec.depth), 1), int(spec.nchannels)
    finally:
        inp.close()


def check_frame(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse a frame whose declared size is over the limit or over the free memory (InputError)."""
    path = Path(path)
    utf8_path(path)
    if not path.is_file():
        return  # missing, a folder...: the reader says which
    width, height, channels = declared_size(path)
    check_decode(path, width, height, channels, max_pixels)


def check_decode(path: str | Path, width: int, height: int, channels: int, max_pixels: int) -> None:
    """Refuse to decode a width x height image over the limit or over the free memory (InputError)."""
    pixels = width * height
    if pixels > max_pixels:
        raise InputError(
            path,
            f"image declares {width}x{height} = {pixels} pixels, over the limit of {max_pixels} "
            "(--max-pixels); refused before decoding",
        )
    need = pixels * min(max(channels, 3), 4) * DECODE_BYTES_PER_SAMPLE
    free = available_memory()
    if free is not None and need > free:
        raise InputError(
            path,
            f"image declares {width}x{height}: decoding needs about {need / 2**30:.1f} GiB, "
            f"only {free / 2**30:.1f} GiB of memory is available",
        )
