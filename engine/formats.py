"""The kinds the engine decides by: output file formats and alpha conventions, as types.

An output path's format is resolved once (OutputFormat.of) and carries the rules that follow
from it, so no module tests file suffixes or parses sample-type names itself.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from .errors import UsageError


class OutputFormat(StrEnum):
    """An output file format, by its OpenImageIO name."""

    EXR = "openexr"
    PNG = "png"
    TIFF = "tiff"
    JPEG = "jpeg"
    DPX = "dpx"

    @classmethod
    def of(cls, path: str | Path | OutputFormat) -> OutputFormat:
        """The format an output path's extension names (an OutputFormat passes through)."""
        if isinstance(path, OutputFormat):
            return path
        fmt = cls.named_by(path)
        if fmt is None:
            shown = Path(path).suffix.lower() or "(none)"
            hint = "use .exr, .png, .tif, .jpg, .dpx"
            raise UsageError(str(path), f"unsupported output format {shown!r}; {hint}")
        return fmt

    @classmethod
    def named_by(cls, path: str | Path) -> OutputFormat | None:
        """The format of a path's extension, or None for one the engine does not write."""
        return _EXTENSIONS.get(Path(path).suffix.lower())

    @property
    def scene_linear(self) -> bool:
        """EXR holds scene-linear light (premultiplied by default); the others display-referred."""
        return self is OutputFormat.EXR

    @property
    def holds_alpha(self) -> bool:
        return self in (OutputFormat.EXR, OutputFormat.PNG, OutputFormat.TIFF)


_EXTENSIONS = {
    ".exr": OutputFormat.EXR,
    ".png": OutputFormat.PNG,
    ".tif": OutputFormat.TIFF,
    ".tiff": OutputFormat.TIFF,
    ".jpg": OutputFormat.JPEG,
    ".jpeg": OutputFormat.JPEG,
    ".dpx": OutputFormat.DPX,
}

# Bits per sample of the integer sample types a writer takes ("half" and "float" are not integers).
INTEGER_BITS = {"uint8": 8, "uint10": 10, "uint12": 12, "uint16": 16}


class AlphaMode(StrEnum):
    """How colour is stored beside alpha in an output: auto is premultiplied in EXR, else straight."""

    AUTO = "auto"
    PREMULTIPLIED = "premultiplied"
    STRAIGHT = "straight"


class InputAlpha(StrEnum):
    """What the plate's own alpha channel means (--input-alpha): ignored, or straight or premultiplied
    coverage that multiplies the key."""

    IGNORE = "ignore"
    STRAIGHT = "straight"
    PREMULTIPLIED = "premultiplied"
