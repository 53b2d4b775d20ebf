"""Reading frames with OpenImageIO (writing them is image_write.py).

Reading returns float32 RGB for the data window with the file's header kept in ImageInfo,
so outputs can carry the same metadata and windows. Of a multi-part or layered EXR the
layer that layers.choose_plate picks is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from .errors import InputError
from .exr_header import check_header
from .formats import InputAlpha
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
        use_alpha = selection.input_alpha != InputAlpha.IGNORE and plate.alpha is not None
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
        if selection.input_alpha == InputAlpha.PREMULTIPLIED:
            rgb = np.where(alpha[..., None] > 0.0, rgb / np.maximum(alpha, 1e-12)[..., None], 0.0)
            rgb = rgb.astype(np.float32)
    return Frame(path=path, rgb=rgb, info=info, alpha=alpha)
