"""Lay out what gets written: channels, colour space and alpha convention per format.

Conventions (docs/architecture.md, README.md): EXR is scene-linear, premultiplied RGBA (half, zip by
default) with optional layers `fg` (straight foreground) and `matte` (channel `matte.A`, so
that DWA compression leaves it exact as it does `A`); PNG/TIFF/JPEG are display-referred
(sRGB by default) with straight alpha, and never tagged with a space they cannot say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import colour
from .errors import UsageError
from .formats import INTEGER_BITS, AlphaMode, OutputFormat
from .image_write import WINDOW_MODES, colour_tag_round_trips, output_format
from .keyer import KeyedFrame

LAYERS = ("fg", "matte")


@dataclass(frozen=True)
class OutputSettings:
    colorspace: str | None = None  # None: follow the input (see output_colorspace)
    alpha_mode: AlphaMode = AlphaMode.AUTO
    layers: tuple[str, ...] = ()
    exr_dtype: str = "half"
    compression: str = "zip"
    png_bits: int = 8
    window: str = "auto"  # auto | display | data: see io.write_frame


def validate_output(path: str, settings: OutputSettings) -> None:
    """Fail early, before any frame is rendered, on settings the format cannot hold."""
    ext = Path(path).suffix.lower()
    fmt = OutputFormat.named_by(path)
    if fmt is None or not fmt.holds_alpha:
        raise UsageError(path, f"output format '{ext}' cannot store alpha (use .exr, .png or .tif)")
    unknown = [layer for layer in settings.layers if layer not in LAYERS]
    if unknown:
        raise UsageError(None, f"unknown layer(s) {', '.join(unknown)} (known: {', '.join(LAYERS)})")
    if settings.layers and fmt is not OutputFormat.EXR:
        raise UsageError(path, "extra layers (--layers) need EXR output")
    if settings.alpha_mode not in tuple(AlphaMode):
        raise UsageError(None, f"unknown alpha mode '{settings.alpha_mode}'")
    if settings.window not in WINDOW_MODES:
        raise UsageError(None, f"unknown output window '{settings.window}' (use {', '.join(WINDOW_MODES)})")
    if settings.colorspace and not fmt.scene_linear:
        space = colour.resolve_colorspace(settings.colorspace)
        if not colour_tag_round_trips(fmt, space):
            raise UsageError(
                path,
                f"a {ext} file cannot say its pixels are {space} (it would read back as another "
                "space); write .exr, or pick a space the format can tag (srgb, lin_rec709, Linear Rec.2020)",
            )


def output_colorspace(out_path: Path | OutputFormat, input_space: str, settings: OutputSettings) -> str:
    """Explicit choice wins; else EXR keeps a linear input space, others keep a display one.

    A display-referred input space the output format cannot tag (sRGB Encoded AP1 to PNG, say)
    and log input (Cineon, ACEScct) give sRGB for PNG/TIFF, so the file says what it holds.
    """
    if settings.colorspace:
        return colour.resolve_colorspace(settings.colorspace)
    fmt = output_format(out_path)
    if fmt.scene_linear:
        return input_space if colour.is_scene_linear(input_space) else colour.WORKING_SPACE
    if colour.is_display_encoded(input_space) and colour_tag_round_trips(fmt, input_space):
        return input_space
    return colour.SRGB_SPACE


def is_premultiplied(out_path: Path | OutputFormat, settings: OutputSettings) -> bool:
    """Whether colour is stored premultiplied: as asked, else (auto) in EXR only."""
    if settings.alpha_mode != AlphaMode.AUTO:
        return settings.alpha_mode == AlphaMode.PREMULTIPLIED
    return output_format(out_path) is OutputFormat.EXR


def _alpha_zero_below(out_path: Path | OutputFormat, settings: OutputSettings) -> float:
    """Alpha below this is stored as 0 (integer formats round it to code 0)."""
    bits = INTEGER_BITS.get(writer_dtype(out_path, settings))
    return 0.5 / float((1 << bits) - 1) if bits else 0.0


def compose_output(
    keyed: KeyedFrame,
    out_path: Path | OutputFormat,
    out_space: str,
    settings: OutputSettings,
    input_alpha: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """HxWxC float32 pixels and channel names for the writer.

    ``input_alpha`` (the plate's own alpha, --input-alpha) multiplies the key: alpha and the
    premultiplied foreground, not the straight one. Where alpha is stored as 0 (below half
    an 8- or 16-bit code) RGB is 0 too, so no colour hides under a transparent pixel.
    """
    if input_alpha is not None:
        ia = input_alpha.astype(np.float32, copy=False)
        keyed = KeyedFrame(alpha=keyed.alpha * ia, premult=keyed.premult * ia[..., None], screen=keyed.screen)
    alpha = keyed.alpha
    premultiplied = is_premultiplied(out_path, settings)
    linear_premult = premultiplied and colour.is_scene_linear(out_space)
    straight = None
    if not linear_premult or "fg" in settings.layers:  # the division is only paid when needed
        straight = colour.convert(keyed.foreground, colour.WORKING_SPACE, out_space)
    if linear_premult:
        # linear spaces: the conversion is a matrix, so it commutes with premultiplication
        rgb = colour.convert(keyed.premult, colour.WORKING_SPACE, out_space)
    elif premultiplied:
        rgb = straight * alpha[..., None]
    else:
        rgb = straight
    zero_below = _alpha_zero_below(out_path, settings)
    if zero_below > 0.0:
        rgb = np.where((alpha < zero_below)[..., None], 0.0, rgb)
        alpha = np.where(alpha < zero_below, 0.0, alpha)
    planes = [rgb, alpha[..., None]]
    names = ["R", "G", "B", "A"]
    if "fg" in settings.layers:
        planes.append(straight)
        names += ["fg.R", "fg.G", "fg.B"]
    if "matte" in settings.layers:
        planes.append(alpha[..., None])
        names.append("matte.A")
    return np.ascontiguousarray(np.concatenate(planes, axis=2), dtype=np.float32), names


def output_channels(settings: OutputSettings) -> int:
    """Channels compose_output writes: RGBA, then fg.RGB and matte.A when asked for."""
    return 4 + 3 * ("fg" in settings.layers) + ("matte" in settings.layers)


def writer_dtype(out_path: Path | OutputFormat, settings: OutputSettings) -> str:
    """The sample type written: --exr-dtype for EXR, else 8 or 16 bits (--png-bits)."""
    if output_format(out_path) is OutputFormat.EXR:
        return settings.exr_dtype
    return "uint16" if settings.png_bits == 16 else "uint8"
