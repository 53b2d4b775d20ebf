"""Turn alpha and the local screen colour into a foreground, in linear light.

The plate is I = a*F + (1 - a)*B. With alpha and the screen colour B behind the
subject, the premultiplied foreground a*F = I - (1 - a)*B needs no division, keeps
every value of the source (HDR included) where alpha is 1, and is what EXR stores.
Despill then limits the screen channel of the foreground to what the other two
channels allow (the green light the screen bounced onto the subject).
"""

from __future__ import annotations

import numpy as np

from .encoding import srgb_eotf

ALPHA_EPS = 1.0 / 4096.0
DENSE_FRACTION = 0.3  # above this share of semi-transparent pixels, whole-frame arithmetic wins


def screen_channel(screen_colour: np.ndarray) -> int:
    """Index of the screen's dominant channel: 1 for green, 2 for blue."""
    return 2 if float(screen_colour[2]) > float(screen_colour[1]) else 1


def premultiplied_foreground(plate: np.ndarray, alpha: np.ndarray, bg_enc: np.ndarray) -> np.ndarray:
    """a*F = I - (1-a)*B, zero where alpha is zero, never negative.

    bg_enc is the network's 3xHxW encoded local screen colour. Most pixels are exactly
    opaque (a*F = I) or clear (0), so B is decoded only where 0 < alpha < 1, unless so
    many pixels are semi-transparent that whole-frame arithmetic is cheaper than gathers.
    """
    opaque = alpha >= 1.0
    mixed = (alpha > ALPHA_EPS) & ~opaque
    if np.count_nonzero(mixed) > DENSE_FRACTION * alpha.size:
        premult = plate - (1.0 - alpha[..., None]) * srgb_eotf(bg_enc.transpose(1, 2, 0))
        premult *= (alpha > ALPHA_EPS)[..., None]
    else:
        premult = plate * opaque[..., None]
        ys, xs = np.nonzero(mixed)
        if len(ys):
            a = alpha[ys, xs][:, None]
            premult[ys, xs] = plate[ys, xs] - (1.0 - a) * srgb_eotf(bg_enc[:, ys, xs].T)
    np.maximum(premult, 0.0, out=premult)
    return premult.astype(np.float32, copy=False)


def despill(premult: np.ndarray, screen_colour: np.ndarray, strength: float) -> np.ndarray:
    """Limit the screen channel to the mean of the other two (Keylight-style average).

    Works on premultiplied values: the limit is linear in colour, so despilling aF
    equals premultiplying the despilled F. strength 0 = off, 1 = full.
    """
    if strength <= 0.0:
        return premult
    c = screen_channel(screen_colour)
    others = [i for i in range(3) if i != c]
    limit = 0.5 * (premult[..., others[0]] + premult[..., others[1]])
    excess = np.maximum(premult[..., c] - limit, 0.0)
    out = premult.copy()
    out[..., c] -= strength * excess
    return out


def straight_foreground(premult: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """F = aF / a where alpha is meaningful, 0 elsewhere."""
    a = alpha[..., None]
    return np.where(a > ALPHA_EPS, premult / np.maximum(a, ALPHA_EPS), 0.0).astype(np.float32)
