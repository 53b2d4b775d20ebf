"""Turn alpha and the local screen colour into a foreground, in linear light.

The plate is I = a*F + (1 - a)*B. With alpha and the screen colour B behind the
subject, the premultiplied foreground a*F = I - (1 - a)*B needs no division, keeps
every value of the source (HDR included) where alpha is 1, and is what EXR stores.
Despill then limits the screen channel of the foreground to what the other two
channels allow (the green light the screen bounced onto the subject).

Bounds, where 0 < alpha < 1 (opaque pixels stay the plate, negative values included): an
error e in the network's screen colour becomes e/alpha in the straight foreground, which
at alpha 0.004 made a 0.18 subject 47 bright. So the foreground is capped, per channel, at
the brightest the plate is nearby (LOCAL_CELL cells and their neighbours), loosened in
proportion to alpha above FULL_BOUND_ALPHA so that it only bites where alpha is very low
(on synthetic plates with ground truth, composites over grey and white got slightly
better, over black up to 6% worse, and the largest straight foreground fell from ~190 to ~4). Below,
aF >= a*min(I, 0): negative values only where the plate had them (out-of-gamut colours).
"""

from __future__ import annotations

import numpy as np

from .encoding import srgb_eotf

ALPHA_EPS = 1.0 / 4096.0
DENSE_FRACTION = 0.3  # above this share of semi-transparent pixels, whole-frame arithmetic wins
LOCAL_CELL = 32  # pixels per side of the cells whose plate maximum (with neighbours) caps F
FULL_BOUND_ALPHA = 1.0 / 32.0  # below this alpha F <= the local plate maximum; above, a/this times it


def _max_pool(img: np.ndarray, cell: int) -> np.ndarray:
    """Maximum over blocks of `cell` rows (the last block may be shorter): strided passes, no copy."""
    h = img.shape[0]
    full = (h // cell) * cell
    out = np.empty((-(-h // cell), *img.shape[1:]), np.float32)
    if full:
        body = out[: full // cell]
        np.copyto(body, img[0:full:cell])
        for dy in range(1, cell):
            np.maximum(body, img[dy:full:cell], out=body)
    if full < h:
        out[-1] = img[full:].max(axis=0)
    return out


def local_plate_max(plate: np.ndarray, cell: int = LOCAL_CELL) -> np.ndarray:
    """Per-channel maximum of the plate in each cell and its 8 neighbours: (H/cell)x(W/cell)x3, >= 0."""
    rows = _max_pool(plate, cell)  # (gh, W, 3)
    grid = _max_pool(rows.transpose(1, 0, 2), cell).transpose(1, 0, 2)  # (gh, gw, 3)
    gh, gw = grid.shape[:2]
    padded = np.pad(grid, ((1, 1), (1, 1), (0, 0)), mode="edge")
    out = np.maximum(grid, 0.0)
    for dy in range(3):
        for dx in range(3):
            np.maximum(out, padded[dy : dy + gh, dx : dx + gw], out=out)
    return out


def _bound(premult: np.ndarray, plate: np.ndarray, a: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Clip aF to [a*min(I, 0), cap*max(a, a^2/FULL_BOUND_ALPHA)] (see the module docstring)."""
    lower = a * np.minimum(plate, 0.0)
    upper = cap * np.maximum(a, a * a * (1.0 / FULL_BOUND_ALPHA))
    return np.minimum(np.maximum(premult, lower), upper)


def premultiplied_foreground(
    plate: np.ndarray, alpha: np.ndarray, bg_enc: np.ndarray | None = None, bg_lin: np.ndarray | None = None
) -> np.ndarray:
    """a*F = I - (1-a)*B, zero where alpha is zero, bounded as the module docstring says.

    B is the linear screen behind each pixel: ``bg_lin`` (HxWx3, e.g. the artist's clean plate)
    when given, else the network's 3xHxW encoded local screen colour ``bg_enc``. Most pixels are
    exactly opaque (a*F = I) or clear (0), so B is decoded only where 0 < alpha < 1, unless so
    many pixels are semi-transparent that whole-frame arithmetic is cheaper than gathers.
    """
    if bg_lin is None and bg_enc is None:
        raise ValueError("premultiplied_foreground needs the screen behind the subject (bg_lin or bg_enc)")
    opaque = alpha >= 1.0
    mixed = (alpha > ALPHA_EPS) & ~opaque
    count = np.count_nonzero(mixed)
    if not count:
        return (plate * opaque[..., None]).astype(np.float32, copy=False)
    cells = local_plate_max(plate)
    if count > DENSE_FRACTION * alpha.size:
        h, w = alpha.shape
        cap = cells[np.arange(h) // LOCAL_CELL][:, np.arange(w) // LOCAL_CELL]
        a = alpha[..., None]
        behind = bg_lin if bg_lin is not None else srgb_eotf(bg_enc.transpose(1, 2, 0))
        premult = plate - (1.0 - a) * behind
        premult = np.where(opaque[..., None], plate, _bound(premult, plate, a, cap))
        premult *= (alpha > ALPHA_EPS)[..., None]
    else:
        premult = plate * opaque[..., None]
        ys, xs = np.nonzero(mixed)
        a = alpha[ys, xs][:, None]
        values = plate[ys, xs]
        behind = bg_lin[ys, xs] if bg_lin is not None else srgb_eotf(bg_enc[:, ys, xs].T)
        unmixed = values - (1.0 - a) * behind
        premult[ys, xs] = _bound(unmixed, values, a, cells[ys // LOCAL_CELL, xs // LOCAL_CELL])
    return premult.astype(np.float32, copy=False)


def despill(premult: np.ndarray, channel: int, strength: float) -> np.ndarray:
    """Limit the screen channel (ScreenEstimate.channel) to the mean of the other two (Keylight-style).

    Works on premultiplied values: the limit is linear in colour, so despilling aF
    equals premultiplying the despilled F. strength 0 = off, 1 = full.
    """
    if strength <= 0.0:
        return premult
    c = channel
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
