"""Is an existing output frame complete? What --skip-existing asks before it skips a frame.

A frame is written to a temp file and renamed, so gsrender itself never leaves half a frame;
but a copy that failed, a full disk on another host, or a tool that truncated the file can.
A frame is taken as done only when it opens, its pixels read to the end, and its size and
channels are the ones this render would write; anything else is rendered again.
"""

from __future__ import annotations

from pathlib import Path

import OpenImageIO as oiio

from .errors import GsRenderError
from .image_io import ImageInfo, one_line, open_image, probe
from .image_write import output_format, places_in_display_window
from .layers import PlateSelection, choose_plate
from .output import OutputSettings, output_channels


def expected_shape(plate: ImageInfo, target: Path, settings: OutputSettings) -> tuple[int, int, int]:
    """(width, height, channels) of the frame this render writes for this plate header."""
    if places_in_display_window(output_format(target), settings.window, plate):
        width, height = plate.full_width, plate.full_height
    else:
        width, height = plate.width, plate.height
    return width, height, output_channels(settings)


def plate_header(source: Path, selection: PlateSelection) -> ImageInfo | None:
    """The header of the part the render keys, or None when the input cannot say (it then fails
    on its own when rendered, so only the existing frame's integrity is checked)."""
    try:
        info = probe(source)
        layer = choose_plate(info.path, info, selection)
        return probe(source, layer.part) if layer.part else info
    except GsRenderError:
        return None


def incomplete(target: Path, want: tuple[int, int, int] | None) -> str | None:
    """Why the existing frame at ``target`` is not a complete output, or None when it is."""
    try:
        _, inp = open_image(target)
    except GsRenderError as exc:
        return exc.problem
    try:
        spec = inp.spec()
        have = (spec.width, spec.height, spec.nchannels)
        if want is not None and have != want:
            return (
                f"it is {have[0]}x{have[1]} with {have[2]} channels, "
                f"this render writes {want[0]}x{want[1]} with {want[2]}"
            )
        pixels = inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)
        if pixels is None or inp.has_error:
            return one_line(inp.geterror(), "its pixel data cannot be read (truncated?)")
    finally:
        inp.close()
    return None
