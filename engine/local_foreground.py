"""The colour of the subject next to an edge, for a key that gives a strand its true coverage.

A colour-difference key assumes the subject has no screen strength of its own. That holds for
grey, but a brown or blond strand (red above green) has a negative strength and a cyan or
yellow costume a positive one, so the plain key thickens the one and thins the other. A pixel
that is a fraction ``a`` of a subject F over the screen S has, for a strength s linear in the
colour, ``s(p) = a s(F) + (1 - a) s(S)``, so

    a = (s(S) - s(p)) / (s(S) - s(F)).

s(F) is not known per pixel, but the subject nearby is: the mean strength of the pixels within
RADIUS that the plain key calls opaque (weighted by a ramp, OPAQUE_KEY). Where few such pixels
are near, the estimate fades back to the plain key (s(F) = 0), so a lone strand over clean
screen keys as before; so does a pixel that is not a mix of that subject and the screen (a black
belt beside a red shirt: its colour lies far from the line between the two), which the correction
would otherwise thin.

The same estimate says where the keyer's hue hold (a pixel whose other channel leads the screen
channel is held opaque: a turquoise costume, skin) may let go: where the pixel is a clear mix
(corrected key below 0.75) of the screen and a nearby subject whose strength is under the cap (so
the correction is exact: a blue prop's defocused edge over a green screen), next to clear screen
(spill on skin far from the screen stays held). ``release`` ramps over each of these.

The box mean counts only pixels inside the frame, so a tile that stops at the frame edge keys
like the whole frame; a tile needs a halo of RADIUS pixels. numpy only: this runs on render nodes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

RADIUS = 8  # the box's half width: the subject colour is taken from within this many pixels
OPAQUE_KEY = (0.8, 1.0)  # a pixel counts as subject from 0 at the first plain key to fully at the second
FULL_CONFIDENCE = 0.5  # the share of opaque pixels in the box at which the estimate is trusted fully
MAX_SUBJECT_SHARE = 0.5  # s(F) at most half the screen's own strength, so s(S) - s(F) stays large
MIX_TOLERANCE = (0.2, 0.4)  # distance from the screen-subject line, / |F - S|: trusted below, not above
RELEASE_SUBJECT = (0.5, 0.2)  # the hold lets go as s(F) / s(S) falls from the first to the second share
RELEASE_MIX = (0.75, 0.55)  # ... as the corrected key falls from the first to the second value
CLEAR_KEY = 0.1  # a pixel counts as clear screen as its plain key falls from this to 0
RELEASE_CLEAR = 0.02  # ... and the hold lets go fully where this share of the square is clear screen


class SubjectKey(NamedTuple):
    """The subject-corrected raw key and where the hue hold may let go (0 = keep it, 1 = let go)."""

    key: np.ndarray
    release: np.ndarray


def _box_sum_1d(x: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Sum over 2 * radius + 1 neighbours along one axis, zero beyond the frame (running sums)."""
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (radius + 1, radius)
    c = np.cumsum(np.pad(x, pad), axis=axis, dtype=np.float64)
    hi = [slice(None)] * x.ndim
    lo = [slice(None)] * x.ndim
    hi[axis] = slice(2 * radius + 1, 2 * radius + 1 + n)
    lo[axis] = slice(0, n)
    return c[tuple(hi)] - c[tuple(lo)]


def _inside_counts(n: int, radius: int) -> np.ndarray:
    i = np.arange(n)
    return (np.minimum(i + radius, n - 1) - np.maximum(i - radius, 0) + 1).astype(np.float64)


def box_mean(x: np.ndarray, radius: int = RADIUS) -> np.ndarray:
    """Mean of an HxW (or HxWxC, per channel) array over (2 * radius + 1)^2 squares, counting
    only pixels inside the frame. Running sums in float64, so large frames lose no precision."""
    h, w = x.shape[:2]
    total = _box_sum_1d(_box_sum_1d(x, radius, 0), radius, 1)
    count = np.outer(_inside_counts(h, radius), _inside_counts(w, radius))
    if total.ndim == 3:
        count = count[..., None]
    return (total / count).astype(np.float32)


def _off_the_line(plate: np.ndarray, screen: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """Distance of each plate colour from the line through screen and subject colour, / |F - S|."""
    d = subject - screen
    q = plate - screen
    dd = np.maximum(np.einsum("...c,...c->...", d, d), np.float32(1e-12))
    t = np.einsum("...c,...c->...", q, d) / dd
    off = q - t[..., None] * d
    return np.sqrt(np.einsum("...c,...c->...", off, off) / dd)


def subject_corrected_key(
    plate: np.ndarray, screen: np.ndarray, s_plate: np.ndarray, s_screen: np.ndarray, plain_key: np.ndarray
) -> SubjectKey:
    """The raw key ``(s(S) - s(p)) / (s(S) - s(F))`` with s(F) from nearby opaque pixels, and
    where the hue hold may let go (module docstring).

    plate, screen: HxWx3 linear plate and clean screen behind it. s_plate, s_screen: their HxW
    screen strengths (s_screen > 0). plain_key: the key that decides which pixels are subject
    (OPAQUE_KEY). Only the subject's bounding box grown by 2 * RADIUS is filtered: beyond RADIUS
    from every opaque pixel the estimate has no subject to use and the key is the plain one, so
    a frame that is mostly screen costs little more than the plain key.
    """
    # a ramp, not a threshold: a tiny change in the plate changes the key a little
    lo_key, hi_key = OPAQUE_KEY
    opaque = ramp(plain_key, lo_key, hi_key)
    plain = (1.0 - s_plate / s_screen).astype(np.float32, copy=False)
    rows = np.flatnonzero(opaque.any(axis=1))
    if rows.size == 0:
        return SubjectKey(plain, np.zeros_like(plain))
    cols = np.flatnonzero(opaque.any(axis=0))
    reach = 2 * RADIUS + 1
    h, w = plain.shape
    win = (
        slice(max(int(rows[0]) - reach, 0), min(int(rows[-1]) + reach + 1, h)),
        slice(max(int(cols[0]) - reach, 0), min(int(cols[-1]) + reach + 1, w)),
    )
    clear = ramp(plain_key[win], CLEAR_KEY, 0.0)
    key, release = plain.copy(), np.zeros_like(plain)
    key[win], release[win] = _corrected(
        plate[win], screen[win], s_plate[win], s_screen[win], opaque[win], plain[win], clear
    )
    return SubjectKey(key, release)


def ramp(x: np.ndarray, start: float, full: float) -> np.ndarray:
    """0 at start, 1 at full (either order), linear between."""
    return np.clip((x - np.float32(start)) * np.float32(1.0 / (full - start)), 0.0, 1.0)


def _corrected(
    plate: np.ndarray,
    screen: np.ndarray,
    s_plate: np.ndarray,
    s_screen: np.ndarray,
    opaque: np.ndarray,
    plain: np.ndarray,
    clear: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """subject_corrected_key inside its window (module docstring): (key, release)."""
    stack = [opaque[..., None], (opaque * s_plate)[..., None], opaque[..., None] * plate, clear[..., None]]
    means = box_mean(np.concatenate(stack, -1))
    share = means[..., 0]
    inv_share = 1.0 / np.maximum(share, np.float32(1e-6))
    s_subject_mean = means[..., 1] * inv_share
    s_subject = np.minimum(s_subject_mean, np.float32(MAX_SUBJECT_SHARE) * s_screen)
    subject = means[..., 2:5] * inv_share[..., None]
    corrected = (s_screen - s_plate) / (s_screen - s_subject)
    lo, hi = MIX_TOLERANCE
    trust = ramp(share, 0.0, FULL_CONFIDENCE) * ramp(_off_the_line(plate, screen, subject), hi, lo)
    key = (plain + trust * (corrected - plain)).astype(np.float32, copy=False)
    release = (
        trust
        * ramp(s_subject_mean / s_screen, *RELEASE_SUBJECT)
        * ramp(corrected, *RELEASE_MIX)
        * ramp(means[..., 5], 0.0, RELEASE_CLEAR)
    )
    return key, release.astype(np.float32, copy=False)
