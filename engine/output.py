"""Lay out what gets written: channels, colour space and alpha convention per format.

Conventions (ARCHITECTURE.md): EXR is scene-linear, premultiplied RGBA (half, zip by
default) with optional layers `fg` (straight foreground) and `matte`; PNG/TIFF/JPEG are
display-referred (sRGB by default) with straight alpha.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import colour
from .errors import UsageError
from .keyer import KeyedFrame

LAYERS = ("fg", "matte")
LINEAR_FORMATS = {".exr"}
ALPHA_FORMATS = {".exr", ".png", ".tif", ".tiff"}


@dataclass(frozen=True)
class OutputSettings:
    colorspace: str | None = None  # None: follow the input (see output_colorspace)
    alpha_mode: str = "auto"  # auto | premultiplied | straight
    layers: tuple[str, ...] = ()
    exr_dtype: str = "half"
    compression: str = "zip"
    png_bits: int = 8


def validate_output(path: str, settings: OutputSettings) -> None:
    """Fail early, before any frame is rendered, on settings the format cannot hold."""
    ext = Path(path).suffix.lower()
    if ext not in ALPHA_FORMATS:
        raise UsageError(path, f"output format '{ext}' cannot store alpha (use .exr, .png or .tif)")
    unknown = [layer for layer in settings.layers if layer not in LAYERS]
    if unknown:
        raise UsageError(None, f"unknown layer(s) {', '.join(unknown)} (known: {', '.join(LAYERS)})")
    if settings.layers and ext != ".exr":
        raise UsageError(path, "extra layers (--layers) need EXR output")
    if settings.alpha_mode not in ("auto", "premultiplied", "straight"):
        raise UsageError(None, f"unknown alpha mode '{settings.alpha_mode}'")


def output_colorspace(out_path: Path, input_space: str, settings: OutputSettings) -> str:
    """Explicit choice wins; else EXR keeps a linear input space, others keep a display one."""
    if settings.colorspace:
        return colour.resolve_colorspace(settings.colorspace)
    linear_out = out_path.suffix.lower() in LINEAR_FORMATS
    if colour.is_scene_linear(input_space) == linear_out:
        return input_space
    return colour.WORKING_SPACE if linear_out else colour.resolve_colorspace("sRGB - Texture")


def is_premultiplied(out_path: Path, settings: OutputSettings) -> bool:
    if settings.alpha_mode != "auto":
        return settings.alpha_mode == "premultiplied"
    return out_path.suffix.lower() == ".exr"


def compose_output(
    keyed: KeyedFrame, out_path: Path, out_space: str, settings: OutputSettings
) -> tuple[np.ndarray, list[str]]:
    """HxWxC float32 pixels and channel names for the writer."""
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
    planes = [rgb, alpha[..., None]]
    names = ["R", "G", "B", "A"]
    if "fg" in settings.layers:
        planes.append(straight)
        names += ["fg.R", "fg.G", "fg.B"]
    if "matte" in settings.layers:
        planes.append(alpha[..., None])
        names.append("matte.Y")
    return np.ascontiguousarray(np.concatenate(planes, axis=2), dtype=np.float32), names


def writer_dtype(out_path: Path, settings: OutputSettings) -> str:
    ext = out_path.suffix.lower()
    if ext == ".exr":
        return settings.exr_dtype
    return "uint16" if settings.png_bits == 16 else "uint8"
