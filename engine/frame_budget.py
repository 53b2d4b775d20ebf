"""Memory a frame will take, budgeted from its header before a pixel is decoded.

A header can declare far more than its file holds: a 555-byte EXR with a 64x64 data window
and a 200000x200000 display window (written to PNG, or with --output-window display, the
output is the display window: 596 GiB), or a 812 KB PNG declaring 16384x16384 whose key needs
tens of GiB. Every allocation the frame will need is counted from the header: the decoded
data window and the working buffers of the key (per pixel), the network's largest tile
input, and the output when it is placed in another window. A frame over --max-pixels (data
or output window) or over the memory free now is refused with one line, exit 3.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError
from .image_io import ImageInfo
from .image_write import places_in_display_window
from .preflight import DEFAULT_MAX_PIXELS, available_memory
from .tile_profile import resolve_tile

# Measured peak resident memory of a CPU render (shipped model, PNG in, EXR out): about
# 130 MB + 160 bytes per data-window pixel (decoded plate, linear plate, screen guides, network
# inputs, alpha, unmix, output) + 160 bytes per pixel of the largest tile input (the network's
# activations): 1024x1024 untiled 419 MB, 2048x2048 in 1536 tiles 1284 MB.
FRAME_BYTES_PER_PIXEL = 160
NETWORK_BYTES_PER_PIXEL = 160
# An output placed in another window (display window) is a new float32 frame, a copy of it for
# the writer's sample type and the writer's own buffer.
OUTPUT_BYTES_PER_SAMPLE = 12


@dataclass(frozen=True)
class FrameBudget:
    """What one frame of this render may take; ``check`` refuses a header that needs more."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    output_format: str = "openexr"  # OpenImageIO format name of the output frames
    output_window: str = "auto"  # --output-window
    output_channels: int = 4
    tile: int = 0  # --tile (0 = auto)
    halo: int = 0  # the model's halo around each tile

    def output_size(self, info: ImageInfo) -> tuple[int, int, str]:
        """(width, height, which window) of the frame this render writes for this header."""
        if places_in_display_window(self.output_format, self.output_window, info):
            return info.full_width, info.full_height, "display window"
        return info.width, info.height, "data window"

    def need(self, info: ImageInfo) -> int:
        """Bytes the frame will take at its peak, from the header alone."""
        pixels = info.width * info.height
        tile = resolve_tile(self.tile, info.height, info.width)
        side_h = min(info.height, tile) + 2 * self.halo if tile else info.height
        side_w = min(info.width, tile) + 2 * self.halo if tile else info.width
        need = pixels * FRAME_BYTES_PER_PIXEL + side_h * side_w * NETWORK_BYTES_PER_PIXEL
        out_w, out_h, window = self.output_size(info)
        if window != "data window":
            need += out_w * out_h * self.output_channels * OUTPUT_BYTES_PER_SAMPLE
        return need

    def check(self, info: ImageInfo) -> None:
        """InputError (one line, exit 3) when the frame is over --max-pixels or the free memory."""
        pixels = info.width * info.height
        if pixels > self.max_pixels:
            raise InputError(
                info.path,
                f"image declares {info.width}x{info.height} = {pixels} pixels, over the limit of "
                f"{self.max_pixels} (--max-pixels); refused before decoding",
            )
        out_w, out_h, window = self.output_size(info)
        if out_w * out_h > self.max_pixels:
            raise InputError(
                info.path,
                f"the output would be its {window}, {out_w}x{out_h} = {out_w * out_h} pixels, over the "
                f"limit of {self.max_pixels} (--max-pixels; --output-window data writes the data window "
                "to EXR); refused before decoding",
            )
        need = self.need(info)
        free = available_memory()
        if free is not None and need > free:
            raise InputError(
                info.path,
                f"image declares {info.width}x{info.height} (output {out_w}x{out_h}): keying it needs about "
                f"{need / 2**30:.1f} GiB, only {free / 2**30:.1f} GiB of memory is available; refused "
                "before decoding",
            )
