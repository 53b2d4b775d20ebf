"""The bounded encoding the network sees, shared by training and rendering.

The engine keys in scene-linear Rec.709. The network gets the sRGB transfer curve of
the clipped linear values: bounded, perceptually even, and the same encoding whether
the plate came from an 8-bit PNG or a half-float EXR. Values above 1.0 only clip in
what the network sees; the output foreground is unmixed from the untouched linear
plate, so HDR highlights survive.
"""

from __future__ import annotations

import numpy as np


def srgb_oetf(linear: np.ndarray) -> np.ndarray:
    """Linear [0,1] -> sRGB-encoded [0,1] (IEC 61966-2-1 piecewise curve)."""
    x = np.asarray(np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0))
    y = np.asarray(np.power(x, np.float32(1.0 / 2.4)))
    y *= np.float32(1.055)
    y -= np.float32(0.055)
    np.copyto(y, x * np.float32(12.92), where=x <= 0.0031308)
    return y


def srgb_eotf(encoded: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0,1] -> linear [0,1]."""
    v = np.clip(encoded, 0.0, 1.0).astype(np.float32, copy=False)
    return np.where(v <= 0.04045, v / 12.92, np.power((v + 0.055) / 1.055, 2.4)).astype(np.float32)


def encode_for_network(linear_hwc: np.ndarray) -> np.ndarray:
    """Scene-linear HxWx3 -> network encoding as a 3xHxW float32 array."""
    return srgb_oetf(np.ascontiguousarray(np.transpose(linear_hwc, (2, 0, 1))))
