"""Writing frames with OpenImageIO: atomic, with the input's metadata and windows carried over.

A frame appears under its final name only once it is complete, so an interrupted render never
leaves a half-written frame that a compositor (or a resumed render) would take for a good one.
Each output format's sample types, compressions and channel limits are checked before a render
starts (validate_output_options).
"""

from __future__ import annotations

import errno
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from .atomic_files import ReadOnlyFileError, replacing
from .encoding import HALF_MAX
from .errors import GsRenderError, OutputError, UsageError
from .formats import INTEGER_BITS, OutputFormat
from .image_io import MAX_CARRIED_ATTRIBUTES, ImageInfo, one_line, probe

# Per format: allowed sample types (first = default when dtype is None).
_DTYPES = {
    "openexr": ("half", "float"),
    "png": ("uint8", "uint16"),
    "tiff": ("uint16", "uint8", "half", "float"),
    "jpeg": ("uint8",),
    "dpx": ("uint10", "uint8", "uint12", "uint16"),
}
_MAX_CHANNELS = {"png": 4, "jpeg": 3, "dpx": 4}

# OIIO silently falls back to zip for a name it does not know, so check it here.
_EXR_COMPRESSIONS = {"none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab"}
_EXR_COMPRESSIONS |= {"htj2k256", "htj2k32"}
_EXR_LEVELED = {"zip", "zips", "dwaa", "dwab"}  # accept "dwaa:45", "zip:9"
_TIFF_COMPRESSIONS = {"none", "lzw", "zip", "packbits"}

# Attributes of the source file that describe its encoding, not the picture.
_DROP_ALWAYS = {"colorInteropID", "ICCProfile", "planarconfig", "tiff:PhotometricInterpretation"}
_DROP_ALWAYS |= {"tiff:PlanarConfiguration", "tiff:RowsPerStrip", "jpeg:subsampling", "dpx:Packing"}
_DROP_ALWAYS |= {"dpx:ImageDescriptor", "dpx:EndOfLinePadding", "dpx:EndOfImagePadding", "openexr:chunkCount"}
_FORMAT_PREFIXES = ("openexr:", "png:", "tiff:", "jpeg:", "dpx:", "exr:")


# Formats that cannot store a data window (PNG, JPEG), or not reliably (OIIO writes a TIFF's
# position in resolution units, so a pixel aspect of 2 doubles y; Nuke ignores it): their
# pixels are placed in the display window.
_NO_DATA_WINDOW = {"png", "jpeg", "tiff"}
WINDOW_MODES = ("auto", "display", "data")
# EXR codecs that lose precision on half channels: B44 on all of them, DWA on R, G, B and Y
# (by name). Alpha and mattes (channels named A or *.A) are kept exact under them: DWA leaves
# A alone, and for B44 they are stored as 32-bit float, which B44 does not compress.
LOSSY_EXR = {"b44", "b44a", "dwaa", "dwab"}
_FLOAT_ALPHA_EXR = {"b44", "b44a"}


def output_format(path: str | Path | OutputFormat) -> OutputFormat:
    """The output format of a path, from its extension (OutputFormat.of)."""
    return OutputFormat.of(path)


def validate_output_options(path: str | Path, dtype: str | None = None, compression: str = "zip") -> None:
    """Check the extension, sample type and compression before a render starts (UsageError)."""
    fmt = output_format(path)
    allowed = _DTYPES[fmt]
    if dtype is not None and dtype not in allowed:
        raise UsageError(str(path), f"{fmt} cannot store '{dtype}' samples; use {' or '.join(allowed)}")
    comp = (compression or "none").lower()
    base, _, level = comp.partition(":")
    if fmt == "openexr":
        if base not in _EXR_COMPRESSIONS or (level and (base not in _EXR_LEVELED or not level.isdigit())):
            known = ", ".join(sorted(_EXR_COMPRESSIONS))
            raise UsageError(str(path), f"unknown EXR compression '{compression}'; use one of {known}")
    elif fmt == "tiff" and comp not in _TIFF_COMPRESSIONS:
        known = ", ".join(sorted(_TIFF_COMPRESSIONS))
        raise UsageError(str(path), f"unknown TIFF compression '{compression}'; use one of {known}")


def is_alpha_channel(name: str) -> bool:
    """A, alpha, matte.A, fg.alpha...: channels that hold coverage, not colour."""
    return name.rpartition(".")[2].lower() in ("a", "alpha")


def _display_window_frame(pixels: np.ndarray, like: ImageInfo) -> tuple[np.ndarray, ImageInfo]:
    """Pixels of the data window placed in the display window: padded with zero (alpha 0), cropped."""
    out = np.zeros((like.full_height, like.full_width, pixels.shape[2]), np.float32)
    x0, y0 = max(like.x, like.full_x), max(like.y, like.full_y)
    x1 = min(like.x + like.width, like.full_x + like.full_width)
    y1 = min(like.y + like.height, like.full_y + like.full_height)
    if x1 > x0 and y1 > y0:
        out[y0 - like.full_y : y1 - like.full_y, x0 - like.full_x : x1 - like.full_x] = pixels[
            y0 - like.y : y1 - like.y, x0 - like.x : x1 - like.x
        ]
    framed = replace(like, x=like.full_x, y=like.full_y, width=like.full_width, height=like.full_height)
    return out, framed


def _wants_display_window(fmt: str, window: str, like: ImageInfo | None, pixels: np.ndarray) -> bool:
    if like is None or (like.width, like.height) != pixels.shape[1::-1]:
        return False  # not the source's pixels (resized): nothing to place
    return places_in_display_window(fmt, window, like)


def places_in_display_window(fmt: str, window: str, like: ImageInfo) -> bool:
    """Whether write_frame writes the source's pixels at its display window (else at its data window)."""
    if window == "data" or like.full_width <= 0 or like.full_height <= 0:
        return False
    if like.data_window == like.display_window:
        return False
    return window == "display" or fmt in _NO_DATA_WINDOW


_tag_checks: dict[tuple[str, str], bool] = {}


def colour_tag_round_trips(fmt: str, space: str) -> bool:
    """Whether a file of this format tagged with this colour space reads back as that space.

    PNG, for one, can only say sRGB, gamma or (cICP) a few primaries: an ACEScg-linear PNG
    reads back as linear Rec.709. Checked once per (format, space) with a one-pixel file.
    """
    from . import colour

    key = (fmt, space)
    if key not in _tag_checks:
        import tempfile

        ext = {"openexr": ".exr", "png": ".png", "tiff": ".tif", "jpeg": ".jpg", "dpx": ".dpx"}[fmt]
        with tempfile.TemporaryDirectory(prefix="gsrender-tag-") as tmp:
            path = Path(tmp) / f"t{ext}"
            spec = oiio.ImageSpec(1, 1, 3, _DTYPES[fmt][0].replace("uint10", "uint16"))
            spec.attribute("oiio:ColorSpace", space)
            out = oiio.ImageOutput.create(fmt)
            ok = (
                out is not None
                and out.open(str(path), spec)
                and out.write_image(np.zeros((1, 1, 3), np.float32))
            )
            ok = bool(ok and out.close())
            back = probe(path).attributes.get("oiio:ColorSpace") if ok else None
        try:
            same = isinstance(back, str) and colour.resolve_colorspace(back) == colour.resolve_colorspace(
                space
            )
        except UsageError:
            same = False
        _tag_checks[key] = same
    return _tag_checks[key]


def _keep_attribute(name: str, src_format: str, dst_format: str) -> bool:
    if name.startswith("oiio:") or name in _DROP_ALWAYS or "compression" in name.lower():
        return False
    if name.startswith(_FORMAT_PREFIXES):
        prefix = name.split(":", 1)[0]
        same = {"openexr": ("openexr", "exr")}.get(dst_format, (dst_format,))
        return src_format == dst_format and prefix in same
    return True


def attributes_not_carried(like: ImageInfo, path: str | Path) -> int:
    """How many of the input header's attributes an output at ``path`` goes without: those over
    MAX_ATTRIBUTE_BYTES and those past the first MAX_CARRIED_ATTRIBUTES."""
    fmt = output_format(path)
    keep = sum(_keep_attribute(name, like.file_format, fmt) for name in like.attributes)
    return like.attributes_dropped + max(0, keep - MAX_CARRIED_ATTRIBUTES)


def _set_attribute(spec: oiio.ImageSpec, name: str, value: object, type_name: str | None = None) -> None:
    if value is None:
        spec.erase_attribute(name)
    elif type_name:  # copied from a file: its own type, so timecodes stay timecodes
        spec.attribute(name, oiio.TypeDesc(type_name), value)
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], oiio.TypeDesc | str):
        spec.attribute(name, oiio.TypeDesc(value[0]) if isinstance(value[0], str) else value[0], value[1])
    else:
        spec.attribute(name, value)


def _build_spec(
    pixels: np.ndarray,
    channel_names: list[str],
    like: ImageInfo | None,
    fmt: str,
    dtype: str,
    compression: str,
    unassociated_alpha: bool,
    extra_attributes: dict | None,
) -> oiio.ImageSpec:
    height, width, nch = pixels.shape
    base_type = {"uint10": "uint16", "uint12": "uint16"}.get(dtype, dtype)
    spec = oiio.ImageSpec(width, height, nch, base_type)
    spec.channelnames = tuple(channel_names)
    spec.alpha_channel = channel_names.index("A") if "A" in channel_names else -1
    if like is not None:
        carried = 0
        for name, value in like.attributes.items():
            if not _keep_attribute(name, like.file_format, fmt):
                continue
            if carried >= MAX_CARRIED_ATTRIBUTES:
                break
            try:
                _set_attribute(spec, name, value, like.attribute_types.get(name))
                carried += 1
            except (TypeError, ValueError, RuntimeError):
                pass  # an attribute OIIO cannot re-encode is not worth failing a frame for
        if (like.width, like.height) == (width, height):
            spec.x, spec.y = like.x, like.y
            spec.full_x, spec.full_y = like.full_x, like.full_y
            spec.full_width, spec.full_height = like.full_width, like.full_height
    if dtype in ("uint10", "uint12"):
        spec.attribute("oiio:BitsPerSample", INTEGER_BITS[dtype])
    if fmt in ("openexr", "tiff"):
        spec.attribute("compression", compression.lower())
    if fmt == "openexr" and dtype == "half" and compression.lower().partition(":")[0] in _FLOAT_ALPHA_EXR:
        kinds = ["float" if is_alpha_channel(n) else "half" for n in channel_names]
        if "float" in kinds:
            spec.channelformats = tuple(oiio.TypeDesc(k) for k in kinds)
    if unassociated_alpha:
        # Tell OIIO the pixels are straight already, or it divides RGB by alpha on write.
        spec.attribute("oiio:UnassociatedAlpha", 1)
    for name, value in (extra_attributes or {}).items():
        _set_attribute(spec, name, value)
    _tag_chromaticities(spec, fmt, (extra_attributes or {}).get("oiio:ColorSpace"))
    return spec


def _tag_chromaticities(spec: oiio.ImageSpec, fmt: str, space: object) -> None:
    """EXR chromaticities that match the pixels' colour space (a copied one may be stale)."""
    if not isinstance(space, str):
        return  # untagged pixels: nothing to match
    from . import colour

    try:
        values = colour.chromaticities_for(space) if fmt == "openexr" else None
    except UsageError:
        values = None
    if values is None:
        spec.erase_attribute("chromaticities")
    else:
        spec.attribute("chromaticities", oiio.TypeDesc("float[8]"), tuple(values))


def _prepare_pixels(pixels: np.ndarray, dtype: str) -> np.ndarray:
    px = np.ascontiguousarray(pixels, dtype=np.float32)
    if dtype == "half":
        # Beyond the half range a value becomes Inf, which readers (ours included) reject.
        return np.clip(px, -HALF_MAX, HALF_MAX)
    if dtype.startswith("uint"):
        px = np.clip(np.nan_to_num(px, nan=0.0), 0.0, 1.0)
        bits = INTEGER_BITS[dtype]
        if bits in (10, 12):
            # Quantise to the stored levels here: OIIO rounds to 16 bits and then truncates.
            levels = float((1 << bits) - 1)
            px = np.rint(px * levels) / levels
        return px.astype(np.float32, copy=False)
    return px


def _os_problem(exc: OSError) -> str:
    if isinstance(exc, ReadOnlyFileError):
        return str(exc.strerror)
    if exc.errno == errno.ENOENT:
        return "output folder does not exist"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def write_frame(
    path: str | Path,
    pixels: np.ndarray,
    channel_names: list[str],
    like: ImageInfo | None = None,
    *,
    dtype: str | None = None,
    compression: str = "zip",
    unassociated_alpha: bool = False,
    extra_attributes: dict | None = None,
    window: str = "auto",
) -> None:
    """Write HxWxC float pixels atomically (temp file in the same folder, fsync, rename).

    ``dtype`` None picks the format's default (EXR half, PNG/JPEG uint8, TIFF uint16, DPX
    uint10). Metadata and windows are copied from ``like`` (windows only when the size
    matches), minus encoding details and the colour tag: tag the output yourself with
    ``extra_attributes={"oiio:ColorSpace": name}``. An ``extra_attributes`` value may be a
    ``(type, value)`` tuple for typed attributes, or None to drop a copied one.
    Integer formats are clamped to [0, 1] and quantised. ``window``: "auto" writes PNG/JPEG/TIFF
    at the source's display window (data padded with zero, overscan cropped: they cannot
    store a data window) and other formats at the data window; "display" does so for every
    format; "data" writes the data window as it is. EXR gets chromaticities matching the
    ``oiio:ColorSpace`` in ``extra_attributes``; under B44 alpha channels are stored as float.
    """
    path = Path(path)
    fmt = output_format(path)
    validate_output_options(path, dtype, compression)
    dtype = dtype or _DTYPES[fmt][0]
    channel_names = list(channel_names)
    if pixels.ndim != 3 or pixels.shape[2] != len(channel_names):
        raise OutputError(
            path, f"{len(channel_names)} channel names for pixels of shape {tuple(pixels.shape)} (need HxWxC)"
        )
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise OutputError(path, "refusing to write an empty (zero-size) image")
    if window not in WINDOW_MODES:
        raise UsageError(path, f"unknown window '{window}' (use {', '.join(WINDOW_MODES)})")
    if _wants_display_window(fmt, window, like, pixels):
        pixels, like = _display_window_frame(pixels, like)  # type: ignore[arg-type]
    if len(channel_names) > _MAX_CHANNELS.get(fmt, 1 << 16):
        raise UsageError(
            path, f"{fmt} cannot store {len(channel_names)} channels ({', '.join(channel_names)}); use .exr"
        )
    folder = path.parent
    if not folder.exists():
        raise OutputError(path, "output folder does not exist")
    if not folder.is_dir():
        raise OutputError(path, f"{folder} is not a folder")
    if path.is_dir():
        raise OutputError(path, "a folder already has this name")

    try:
        with replacing(path) as tmp:  # temp file, fsync, rename; the temp never stays
            spec = _build_spec(
                pixels, channel_names, like, fmt, dtype, compression, unassociated_alpha, extra_attributes
            )
            px = _prepare_pixels(pixels, dtype)
            out = oiio.ImageOutput.create(fmt)
            if out is None:
                raise OutputError(path, one_line(oiio.geterror(), f"no OpenImageIO writer for {fmt}"))
            ok = out.open(str(tmp), spec) and out.write_image(px)
            ok = out.close() and ok
            if not ok or out.has_error:
                problem = one_line(out.geterror(), "the image could not be written")
                problem = problem.replace(str(tmp), str(path))
                if not os.access(folder, os.W_OK):
                    problem = "permission denied"
                raise OutputError(path, problem)
    except GsRenderError:
        raise
    except OSError as exc:
        raise OutputError(path, _os_problem(exc)) from None
    except Exception as exc:  # OIIO binding errors (bad array, bad attribute value...)
        raise OutputError(path, one_line(str(exc), type(exc).__name__)) from None
