"""Colour-space conversion through OpenColorIO's built-in config (``ocio://default``).

The built-in config is used on purpose, not ``$OCIO``: the engine's working space and the
names users type must mean the same thing on every farm node. In OCIO 2.6 it is the ACES
"CG config" (cg-config-v5.0.0_aces-v2.1), whose ``scene_linear`` role is ACEScg; the network
however works in scene-linear Rec.709, so WORKING_SPACE names that space explicitly. One
space is added to it: Cineon log (what compositing hosts assume for log DPX), which the
ACES config lacks.
"""

from __future__ import annotations

import copy
import threading
from typing import TYPE_CHECKING

import numpy as np
import PyOpenColorIO as ocio

from .errors import UsageError

if TYPE_CHECKING:
    from .image_io import ImageInfo

CONFIG_URI = "ocio://default"
_config = copy.deepcopy(ocio.Config.CreateFromFile(CONFIG_URI))


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

# Kodak Cineon log (Nuke's "Cineon"): code 95 is black, 685 is white, 0.002 density per code,
# negative gamma 0.6, Rec.709 primaries; what a log (printing density) DPX holds.
CINEON_SPACE = "Cineon"
_CINEON_BLACK_OFFSET = 10.0 ** ((95 - 685) * 0.002 / 0.6)


def _add_cineon(config: ocio.Config) -> None:
    log_to_lin = ocio.LogAffineTransform(
        logSideSlope=[300.0 / 1023.0] * 3,
        logSideOffset=[685.0 / 1023.0] * 3,
        linSideSlope=[1.0 - _CINEON_BLACK_OFFSET] * 3,
        linSideOffset=[_CINEON_BLACK_OFFSET] * 3,
        direction=ocio.TRANSFORM_DIR_INVERSE,
    )
    log_to_lin.setBase(10.0)
    reference = config.getColorSpace("aces_interchange").getName()  # the config's reference space
    to_reference = ocio.GroupTransform(
        [log_to_lin, ocio.ColorSpaceTransform(src=WORKING_SPACE, dst=reference)]
    )
    cs = ocio.ColorSpace(
        ocio.REFERENCE_SPACE_SCENE,
        name=CINEON_SPACE,
        aliases=["cineon", "kodaklog", "cineon_log", "log_cineon"],
        family="Log",
        encoding="log",
        description="Kodak Cineon log (95/685, gamma 0.6), Rec.709 primaries: log DPX/Cineon files",
    )
    cs.setTransform(to_reference, ocio.COLORSPACE_DIR_TO_REFERENCE)
    config.addColorSpace(cs)


_add_cineon(_config)

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
    CINEON_SPACE,
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


# CIE xy of red, green, blue and white (the EXR ``chromaticities`` attribute's layout).
PRIMARIES: dict[str, tuple[float, ...]] = {
    "rec709": (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290),
    "ap1": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767),
    "ap0": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.0770, 0.32168, 0.33767),
    "rec2020": (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290),
    "p3d65": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, 0.3127, 0.3290),
}
_LINEAR_BY_PRIMARIES = {
    "rec709": WORKING_SPACE,
    "ap1": "ACEScg",
    "ap0": "ACES2065-1",
    "rec2020": "Linear Rec.2020",
    "p3d65": "Linear P3-D65",
}
_ENCODED_BY_PRIMARIES = {"rec709": SRGB_SPACE, "ap1": "sRGB Encoded AP1", "p3d65": "sRGB Encoded P3-D65"}
_OTHER_PRIMARIES = {
    "ACEScct": "ap1",
    "ACEScc": "ap1",
    "Gamma 2.2 Encoded AP1": "ap1",
    "Gamma 1.8 Encoded Rec.709": "rec709",
    "Gamma 2.2 Encoded Rec.709": "rec709",
    "Gamma 2.4 Encoded Rec.709": "rec709",
    CINEON_SPACE: "rec709",
}
# dpx:Transfer values (as OpenImageIO names them) that say what the code values mean.
_DPX_TRANSFERS = {"logarithmic": CINEON_SPACE, "printing density": CINEON_SPACE, "linear": WORKING_SPACE}


def chromaticities_for(space: str) -> tuple[float, ...] | None:
    """The EXR chromaticities of a colour space, or None when its primaries are not in PRIMARIES."""
    name = resolve_colorspace(space)
    for table in (_LINEAR_BY_PRIMARIES, _ENCODED_BY_PRIMARIES):
        for key, member in table.items():
            if resolve_colorspace(member) == name:
                return PRIMARIES[key]
    key = _OTHER_PRIMARIES.get(name)
    return PRIMARIES[key] if key else None


def _primaries_named(values: object) -> str | None:
    try:
        xy = [float(v) for v in values]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if len(xy) != 8:
        return None
    for key, ref in PRIMARIES.items():
        if max(abs(a - b) for a, b in zip(xy, ref, strict=True)) < 2e-3:
            return key
    return None


def _is_linear_file(info: ImageInfo) -> bool:
    return info.file_format in ("openexr", "hdr", "dpx") or info.pixel_type in ("half", "float", "double")


def input_colorspace(info: ImageInfo) -> tuple[str, str]:
    """The colour space to assume for a file when the user did not name one, and why.

    Rules, first match wins: the ``oiio:ColorSpace`` tag when OCIO knows it and it is not a
    data space (EXRs carry it as ``colorInteropID``; OIIO derives it from a DPX transfer and
    a PNG's gAMA/cICP); a DPX ``dpx:Transfer`` (log or printing density: Cineon, as
    compositing hosts read it; linear); the EXR ``chromaticities`` when they are a known set
    of primaries (a linear space for EXR/DPX/float files, sRGB-encoded otherwise). Else EXR,
    HDR, DPX and float/half files of any format are scene-linear Rec.709, and integer
    PNG/JPEG/TIFF (8 or 16 bit) are sRGB-encoded Rec.709.
    """
    attrs = info.attributes
    tag = attrs.get("oiio:ColorSpace")
    tagged = _known_tag(tag)
    if tagged:
        return tagged, f"file tag oiio:ColorSpace={tag}"
    transfer = attrs.get("dpx:Transfer")
    if isinstance(transfer, str) and transfer.strip().lower() in _DPX_TRANSFERS:
        return _DPX_TRANSFERS[transfer.strip().lower()], f"file tag dpx:Transfer={transfer}"
    linear = _is_linear_file(info)
    note = ""
    if "chromaticities" in attrs:
        key = _primaries_named(attrs["chromaticities"])
        space = (_LINEAR_BY_PRIMARIES if linear else _ENCODED_BY_PRIMARIES).get(key or "")
        if space:
            return space, f"file chromaticities ({key}), {'linear' if linear else 'sRGB-encoded'} by format"
        note = "; its chromaticities are not a known set of primaries"
    if linear:
        return WORKING_SPACE, f"no colour tag: {info.file_format} {info.pixel_type} is scene-linear{note}"
    return SRGB_SPACE, f"no colour tag: {info.file_format} {info.pixel_type} is sRGB-encoded{note}"


def default_colorspace(info: ImageInfo) -> str:
    """The colour space to assume for a file when the user did not name one (see input_colorspace)."""
    return input_colorspace(info)[0]


def is_display_encoded(name: str) -> bool:
    """True for display-referred encodings (sRGB, gamma): what PNG/JPEG/TIFF normally hold."""
    cs = _config.getColorSpace(resolve_colorspace(name))
    return cs.getEncoding() in ("sdr-video", "") and not cs.isData() and not is_scene_linear(name)


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
