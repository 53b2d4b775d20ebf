"""Colour-space conversion through OpenColorIO's built-in config (``ocio://default``).

The built-in config is used on purpose, not ``$OCIO``: the engine's working space and the
names users type must mean the same thing on every farm node. In OCIO 2.6 it is the ACES
"CG config" (cg-config-v5.0.0_aces-v2.1), whose ``scene_linear`` role is ACEScg; the network
however works in scene-linear Rec.709, so WORKING_SPACE names that space explicitly.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
import PyOpenColorIO as ocio

from .errors import UsageError

if TYPE_CHECKING:
    from .io import ImageInfo

CONFIG_URI = "ocio://default"
_config = ocio.Config.CreateFromFile(CONFIG_URI)


def _first_known(*names: str) -> str:
    """Canonical name of the first space the config has (built-in configs rename spaces)."""
    for name in names:
        cs = _config.getColorSpace(name)
        if cs is not None:
            return cs.getName()
    raise ImportError(  # pragma: no cover - only with an unexpected OCIO build
        f"OpenColorIO {ocio.__version__} built-in config has none of: {', '.join(names)}"
    )


# Scene-linear Rec.709 primaries, D65 (alias lin_rec709).
WORKING_SPACE = _first_known("Linear Rec.709 (sRGB)", "lin_rec709")
# sRGB curve, Rec.709 primaries (alias srgb_tx; older built-in configs name it "sRGB - Texture").
SRGB_SPACE = _first_known("sRGB Encoded Rec.709 (sRGB)", "sRGB - Texture", "srgb_tx")

# Short names people type that the config itself does not know.
_EXTRA_ALIASES = {
    "linear": WORKING_SPACE,
    "srgb": SRGB_SPACE,
}

# Shown in the "unknown colour space" message: the common ones, with a short alias each.
_COMMON = (
    f"{WORKING_SPACE} (lin_rec709)",
    f"{SRGB_SPACE} (srgb_tx)",
    "ACEScg",
    "ACES2065-1",
    "ACEScct",
    "Linear Rec.2020",
    "Linear P3-D65",
    "Raw",
)

_processors: dict[tuple[str, str], ocio.CPUProcessor] = {}
_lock = threading.Lock()


def resolve_colorspace(name: str) -> str:
    """Canonical colour-space name for a name, alias or role (case-insensitive).

    Roles keep the config's meaning: ``scene_linear`` is ACEScg there, not WORKING_SPACE.
    "linear" and "srgb" are added as short names for WORKING_SPACE and SRGB_SPACE.
    """
    text = (name or "").strip()
    canonical = _config.getCanonicalName(_EXTRA_ALIASES.get(text.lower(), text)) if text else ""
    if not canonical:
        raise UsageError(None, f"unknown colour space '{name}'; known: {', '.join(_COMMON)}")
    return canonical


def is_scene_linear(name: str) -> bool:
    """True for spaces where pixel values are proportional to light (HDR values > 1 are valid)."""
    cs = _config.getColorSpace(resolve_colorspace(name))
    if cs.isData():
        return False
    encoding = cs.getEncoding()
    if encoding:
        return encoding == "scene-linear"
    return _config.isColorSpaceLinear(cs.getName(), ocio.REFERENCE_SPACE_SCENE)


def _known_tag(tag: object) -> str | None:
    """The canonical name of a file's colour tag, or None when OCIO cannot use it."""
    if not isinstance(tag, str) or not tag.strip():
        return None
    canonical = _config.getCanonicalName(_EXTRA_ALIASES.get(tag.strip().lower(), tag.strip()))
    if not canonical or _config.getColorSpace(canonical).isData():
        return None
    return canonical


def default_colorspace(info: ImageInfo) -> str:
    """The colour space to assume for a file when the user did not name one.

    Rule: a file's ``oiio:ColorSpace`` tag wins when OCIO knows it and it is not a data
    space (EXRs written with a colour tag carry ``colorInteropID``, which OIIO reports
    there; for PNG/JPEG OIIO's guess is sRGB, which agrees with the fallback). Otherwise
    EXR, HDR, DPX and float/half files of any format are scene-linear Rec.709, and
    integer PNG/JPEG/TIFF (8 or 16 bit) are sRGB-encoded Rec.709.
    """
    tagged = _known_tag(info.attributes.get("oiio:ColorSpace"))
    if tagged:
        return tagged
    if info.file_format in ("openexr", "hdr", "dpx") or info.pixel_type in ("half", "float", "double"):
        return WORKING_SPACE
    return SRGB_SPACE


def _processor(src: str, dst: str) -> ocio.CPUProcessor:
    key = (src, dst)
    proc = _processors.get(key)
    if proc is None:
        with _lock:
            proc = _processors.get(key)
            if proc is None:
                proc = _config.getProcessor(src, dst).getDefaultCPUProcessor()
                _processors[key] = proc
    return proc


def convert(rgb: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert an HxWx3 float32 image between colour spaces; returns a new array.

    Values above 1 and below 0 pass through the (matrix) linear-to-linear conversions
    unclipped, so HDR highlights survive.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"convert() needs an HxWx3 array, got shape {rgb.shape}")
    src_name, dst_name = resolve_colorspace(src), resolve_colorspace(dst)
    out = np.array(rgb, dtype=np.float32, order="C", copy=True)
    if src_name == dst_name or out.size == 0:
        return out
    # OCIO's CPU processors are safe to share between threads once built.
    _processor(src_name, dst_name).applyRGB(out)
    return out
