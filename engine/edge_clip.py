"""The key's clean-up clip, applied only away from edges.

A colour-difference key is cleaned by a clip: raw alpha at or below ``black`` becomes 0, at or
above ``white`` 1, linear between. On flat screen that removes grain, on a flat subject the last
few percent of spill. On an edge it erases faint strands (their raw key is below ``black``) and
hardens soft edges (the remap steepens every transition). So, as Blender's Keying node does when
its clip is set, pixels whose neighbourhood is not flat keep the unclipped key.

Flatness is the range (max - min) of the [0, 1]-clamped key, 3x3-averaged first, over a square
of EDGE_RADIUS pixels around the pixel: below EDGE_TOLERANCE the pixel is flat and clipped, above
twice that it is an edge and left alone, with a linear blend between (no seam where the rule
switches). The 3x3 mean keeps camera grain from reading as edges (on the path-traced plates the
plain key's range called 90% of the clean screen an edge; the averaged key's 55%). Both filters
ignore what lies beyond the frame (the mean divides by the pixels inside, a max or min does not
change), so a tile that stops at the frame edge keys like the whole frame, and a tile needs a
halo of HALO pixels to key its core like the whole frame.

numpy only: this runs on render nodes.
"""

from __future__ import annotations

import numpy as np

EDGE_RADIUS = 3  # Blender's Keying node's default edge kernel radius
EDGE_TOLERANCE = 0.1  # ... and its default edge kernel tolerance
HALO = EDGE_RADIUS + 1  # the 3x3 mean reaches one pixel further


def _filter_1d(x: np.ndarray, radius: int, axis: int, op: np.ufunc) -> np.ndarray:
    """op (np.maximum or np.minimum) over 2 * radius + 1 neighbours along one axis, edges replicated."""
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (radius, radius)
    p = np.pad(x, pad, mode="edge")
    out = np.take(p, range(0, n), axis=axis).copy()
    for d in range(1, 2 * radius + 1):
        op(out, np.take(p, range(d, d + n), axis=axis), out=out)
    return out


def local_range(key: np.ndarray, radius: int = EDGE_RADIUS) -> np.ndarray:
    """max - min of an HxW array over (2 * radius + 1)^2 squares (separable)."""
    hi = _filter_1d(_filter_1d(key, radius, 0, np.maximum), radius, 1, np.maximum)
    lo = _filter_1d(_filter_1d(key, radius, 0, np.minimum), radius, 1, np.minimum)
    return hi - lo


def mean3(x: np.ndarray) -> np.ndarray:
    """3x3 mean of an HxW array over the pixels inside the frame."""
    h, w = x.shape
    p = np.pad(x, 1)
    ones = np.pad(np.ones((h, w), np.float32), 1)
    acc = np.zeros((h, w), np.float32)
    cnt = np.zeros((h, w), np.float32)
    for dy in range(3):
        for dx in range(3):
            acc += p[dy : dy + h, dx : dx + w]
            cnt += ones[dy : dy + h, dx : dx + w]
    return acc / cnt


def flatness(key: np.ndarray, radius: int = EDGE_RADIUS, tolerance: float = EDGE_TOLERANCE) -> np.ndarray:
    """1 where the averaged, clamped key's local range is at most tolerance, 0 from twice that."""
    rng = local_range(mean3(np.clip(key, 0.0, 1.0).astype(np.float32, copy=False)), radius)
    return np.clip((2.0 * tolerance - rng) * (1.0 / tolerance), 0.0, 1.0).astype(np.float32, copy=False)


def clip_key(raw: np.ndarray, black: float, white: float, edges: bool) -> np.ndarray:
    """The raw key clipped to [black, white] and remapped to [0, 1]; with ``edges`` only where flat."""
    clipped = np.clip((raw - np.float32(black)) * np.float32(1.0 / (white - black)), 0.0, 1.0)
    if not edges:
        return clipped.astype(np.float32, copy=False)
    plain = np.clip(raw, 0.0, 1.0)
    flat = flatness(raw)
    return (plain + flat * (clipped - plain)).astype(np.float32, copy=False)
