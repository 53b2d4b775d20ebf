"""Reading and writing frames with OpenImageIO.

Reading returns float32 RGB for the data window with the file's header kept in ImageInfo,
so outputs can carry the same metadata and windows. Of a multi-part or layered EXR the
layer that layers.choose_plate picks is read. Writing is atomic: a frame appears
under its final name only once it is complete, so an interrupted render never leaves a
half-written frame that a compositor (or a resumed render) would take for a good one.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from .atomic_files import ReadOnlyFileError, replacing
from .errors import GsRenderError, InputError, OutputError, UsageError
from .exr_header import check_header
from .layers import PlateLayer, PlateSelection, choose_plate


@dataclass
class ImageInfo:
    """The header of an image file (first subimage, or the part read_frame keyed)."""

    path: Path
    file_format: str  # OIIO format name: "openexr", "png", "jpeg", "tiff", "dpx"...
    width: int  # data window size
    height: int
    nchannels: int
    channel_names: list[str]
    pixel_type: str  # "half", "float", "uint8", "uint16"...
    bits: int  # bits per sample actually stored (10 for a 10-bit DPX read as uint16)
    x: int = 0  # data window origin
    y: int = 0
    full_x: int = 0  # display window
    full_y: int = 0
    full_width: int = 0
    full_height: int = 0
    tiled: bool = False
    attributes: dict[str, object] = field(default_factory=dict)  # every extra attribute, raw values
    attribute_types: dict[str, str] = field(default_factory=dict)  # OIIO type of each ("timecode"...)
    subimages: int = 1
    parts: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, channel names) of every part
    plate: PlateLayer | None = None  # the layer read_frame keyed
    attributes_dropped: int = 0  # attributes larger than MAX_ATTRIBUTE_BYTES, not kept

    @property
    def data_window(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.width, self.height)

    @property
    def display_window(self) -> tuple[int, int, int, int]:
        return (self.full_x, self.full_y, self.full_width, self.full_height)


@dataclass
class Frame:
    """Pixels of one frame: HxWx3 float32, C-contiguous, covering the data window."""

    path: Path
    rgb: np.ndarray
    info: ImageInfo
    alpha: np.ndarray | None = None  # HxW input alpha, only when PlateSelection.input_alpha uses it


# ---------------------------------------------------------------- reading


# What an output carries over from its input's header: at most this many attributes, each at
# most this large. A 64 MB attribute copied into every output took 0.9 GB; thousands of them
# make OpenImageIO's attribute handling quadratic. The rest are counted and reported.
MAX_CARRIED_ATTRIBUTES = 1024
MAX_ATTRIBUTE_BYTES = 64 * 1024


def _value_bytes(value: object) -> int:
    """About how many bytes an attribute value holds (strings, byte strings, arrays, tuples)."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, tuple | list):
        return sum(_value_bytes(v) if isinstance(v, str | bytes) else 8 for v in value)
    return 8


def one_line(text: str, fallback: str) -> str:
    """OIIO errors are often several lines repeating each other: keep one short line."""
    lines: list[str] = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line and line not in lines and line != "PNG library error":
            lines.append(line)
    msg = "; ".join(lines) or fallback
    return msg if len(msg) <= 300 else msg[:297] + "..."


def _bits(spec: oiio.ImageSpec) -> int:
    stored = spec.get_int_attribute("oiio:BitsPerSample", 0)
    return stored if stored > 0 else spec.format.size() * 8


def _part_list(inp: oiio.ImageInput, count: int, current: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    parts = []
    for k in range(count):
        if count > 1:
            inp.seek_subimage(k, 0)
        spec = inp.spec()
        parts.append((str(spec.get_string_attribute("name", "")), tuple(spec.channelnames)))
    if count > 1:
        inp.seek_subimage(current, 0)
    return tuple(parts)


def info_from_spec(path: Path, inp: oiio.ImageInput, current: int = 0) -> ImageInfo:
    """What the header of the open file says (format, size, channels, attributes), no pixels."""
    spec = inp.spec()
    attributes: dict[str, object] = {}
    types: dict[str, str] = {}
    oversize = 0
    for param in spec.extra_attribs:
        value = param.value
        if _value_bytes(value) > MAX_ATTRIBUTE_BYTES:
            oversize += 1  # never kept: every frame in flight would hold it, every output repeat it
            continue
        attributes[param.name] = value
        types[param.name] = str(param.type)
    subimages = spec.get_int_attribute("oiio:subimages", 0)
    if subimages <= 0:
        subimages = 1
        while subimages < 1000 and inp.seek_subimage(subimages, 0):
            subimages += 1
        inp.geterror()  # the failed seek above is not an error of this file
        inp.seek_subimage(current, 0)
    parts = _part_list(inp, subimages, current)
    spec = inp.spec()
    return ImageInfo(
        path=path,
        file_format=inp.format_name(),
        width=spec.width,
        height=spec.height,
        nchannels=spec.nchannels,
        channel_names=list(spec.channelnames),
        pixel_type=str(spec.format),
        bits=_bits(spec),
        x=spec.x,
        y=spec.y,
        full_x=spec.full_x,
        full_y=spec.full_y,
        full_width=spec.full_width,
        full_height=spec.full_height,
        tiled=spec.tile_width > 0,
        attributes=attributes,
        attribute_types=types,
        subimages=subimages,
        parts=parts,
        attributes_dropped=oversize,
    )


def open_image(path: str | Path) -> tuple[Path, oiio.ImageInput]:
    """Open an image for reading, or one InputError line (missing, folder, empty, unreadable)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, not an image file")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)")
    check_header(path)  # an EXR header OpenImageIO would take minutes to parse is refused first
    # Files with straight alpha (PNG, some TIFFs) must keep their RGB as stored: OIIO would
    # otherwise premultiply on read and darken every soft edge of the plate.
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    inp = oiio.ImageInput.open(str(path), config)
    if inp is None:
        raise InputError(path, one_line(oiio.geterror(), "unreadable or unsupported image file"))
    return path, inp


def probe(path: str | Path, part: int = 0) -> ImageInfo:
    """Read only the header of one part (for ``gsrender info`` and planning a render)."""
    path, inp = open_image(path)
    try:
        if part and not inp.seek_subimage(part, 0):
            raise InputError(path, one_line(inp.geterror(), f"part {part} could not be read"))
        return info_from_spec(path, inp, part)
    finally:
        inp.close()


def read_frame(
    path: str | Path,
    selection: PlateSelection | None = None,
    budget: Callable[[ImageInfo], None] | None = None,
) -> Frame:
    """Read the plate's RGB as float32 (see choose_plate), refusing anything a key cannot be pulled from.

    With ``selection.input_alpha`` straight or premultiplied, the layer's alpha comes back
    too (premultiplied RGB is divided by it, so the keyer sees colours, not darkened ones).
    ``budget`` sees the keyed part's header before any pixel is decoded, and may refuse it.
    """
    selection = selection or PlateSelection()
    path, inp = open_image(path)
    try:
        info = info_from_spec(path, inp)
        if info.nchannels == 1 and len(info.parts) == 1:
            raise InputError(path, "grayscale (1 channel) image: an RGB plate is required")
        if info.nchannels == 2 and len(info.parts) == 1:
            raise InputError(path, "grayscale+alpha (2 channel) image: an RGB plate is required")
        plate = choose_plate(path, info, selection)
        if plate.part != 0:
            if not inp.seek_subimage(plate.part, 0):
                raise InputError(path, one_line(inp.geterror(), f"part {plate.part} could not be read"))
            info = info_from_spec(path, inp, plate.part)
        info.plate = plate
        spec = inp.spec()
        if info.width <= 0 or info.height <= 0 or spec.depth <= 0:
            raise InputError(path, f"zero-size image ({info.width}x{info.height})")
        if spec.deep:
            raise InputError(path, "deep image: a flat RGB plate is required")
        if spec.depth > 1:
            raise InputError(path, "volume image: a flat RGB plate is required")
        if budget is not None:
            budget(info)
        use_alpha = selection.input_alpha != "ignore" and plate.alpha is not None
        channels = list(plate.rgb) + ([plate.alpha] if use_alpha else [])
        lo, hi = min(channels), max(channels) + 1
        # Read only the span holding the plate's channels: EXRs may carry many AOVs we do not need.
        pixels = inp.read_image(plate.part, 0, lo, hi, "float")
        # Truncated files may still return pixels (JPEG fills the rest): the error flag decides.
        if pixels is None or inp.has_error:
            raise InputError(path, one_line(inp.geterror(), "pixel data could not be read"))
    finally:
        inp.close()
    pixels = np.asarray(pixels, dtype=np.float32).reshape(info.height, info.width, hi - lo)
    order = [c - lo for c in plate.rgb]
    rgb = np.ascontiguousarray(pixels if order == list(range(hi - lo)) else pixels[:, :, order])
    alpha = np.ascontiguousarray(pixels[:, :, channels[3] - lo]) if use_alpha else None
    floating = info.pixel_type in ("half", "float", "double")
    if floating and not (np.isfinite(rgb).all() and (alpha is None or np.isfinite(alpha).all())):
        bad = ~np.isfinite(rgb).all(axis=2)
        if alpha is not None:
            bad |= ~np.isfinite(alpha)
        count = int(np.count_nonzero(bad))
        y, x = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(path, f"{count} pixels are NaN or Inf (first at x={x + info.x}, y={y + info.y})")
    if alpha is not None:
        alpha = np.clip(alpha, 0.0, 1.0)
        if selection.input_alpha == "premultiplied":
            rgb = np.where(alpha[..., None] > 0.0, rgb / np.maximum(alpha, 1e-12)[..., None], 0.0)
            rgb = rgb.astype(np.float32)
    return Frame(path=path, rgb=rgb, info=info, alpha=alpha)


# ---------------------------------------------------------------- writing

_FORMATS = {".exr": "openexr", ".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg"}
_FORMATS |= {".jpeg": "jpeg", ".dpx": "dpx"}

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

_HALF_MAX = 65504.0

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


def output_format(path: str | Path) -> str:
    """OIIO format name for an output path, from its extension."""
    ext = Path(path).suffix.lower()
    fmt = _FORMATS.get(ext)
    if fmt is None:
        shown = ext or "(none)"
        raise UsageError(str(path), f"unsupported output format {shown!r}; use .exr, .png, .tif, .jpg, .dpx")
    return fmt


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
        spec.attribute("oiio:BitsPerSample", int(dtype[4:]))
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
        return np.clip(px, -_HALF_MAX, _HALF_MAX)
    if dtype.startswith("uint"):
        px = np.clip(np.nan_to_num(px, nan=0.0), 0.0, 1.0)
        bits = int(dtype[4:])
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
