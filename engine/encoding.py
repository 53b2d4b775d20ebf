"""The bounded encoding the network sees, shared by training and rendering.

The engine keys in scene-linear Rec.709. The network gets the sRGB transfer curve of
the clipped linear values: bounded, perceptually even, and the same encoding whether
the plate came from an 8-bit PNG or a half-float EXR. Values above 1.0 only clip in
what the network sees; the output foreground is unmixed from the untouched linear
plate, so HDR highlights survive.
"""

from __future__ import annotations

import numpy as np

HALF_MAX = 65504.0  # the largest finite half float: EXR half pixels and sane colour values end here


def srgb_oetf(linear: np.ndarray) -> np.ndarray:
    """Linear [0,1] -> sRGB-encoded [0,1] (IEC 61966-2-1 piecewise curve)."""
    return _oetf_in_place(np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0))


def _oetf_in_place(x: np.ndarray) -> np.ndarray:
    """srgb_oetf of an owned, already clipped float32 array, overwriting it (one full-size array)."""
    x = np.asarray(x)
    toe = x <= np.float32(0.0031308)
    toe_values = x[toe] * np.float32(12.92)
    np.power(x, np.float32(1.0 / 2.4), out=x)
    x *= np.float32(1.055)
    x -= np.float32(0.055)
    x[toe] = toe_values
    return x


def srgb_eotf(encoded: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0,1] -> linear [0,1]."""
    v = np.clip(encoded, 0.0, 1.0).astype(np.float32, copy=False)
    return np.where(v <= 0.04045, v / 12.92, np.power((v + 0.055) / 1.055, 2.4)).astype(np.float32)


def encode_for_network(linear_hwc: np.ndarray, padded: tuple[int, int] | None = None) -> np.ndarray:
    """Scene-linear HxWx3 -> network encoding as a 3xHxW float32 array.

    ``padded`` (rows, cols) >= (H, W) returns a larger array whose extra bottom rows and
    right columns repeat the last ones, written in place (no second full-size copy).
    """
    h, w = linear_hwc.shape[:2]
    ph, pw = padded or (h, w)
    chw = np.empty((3, ph, pw), np.float32)
    core = chw[:, :h, :w]
    np.copyto(core, np.transpose(linear_hwc, (2, 0, 1)), casting="same_kind")
    np.clip(core, 0.0, 1.0, out=core)
    _oetf_in_place(core)
    if ph > h:
        chw[:, h:, :w] = chw[:, h - 1 : h, :w]
    if pw > w:
        chw[:, :, w:] = chw[:, :, w - 1 : w]
    return chw
