"""Despot: small, solid islands of key ringed by clear screen are keyed out (tracking markers).

Why: tracking markers taped on the screen in a colour that is not the screen's (yellow, pink,
grey, black) key as solid subject in every colour-difference key, the network's included, and
a compositor paints them out frame by frame. A marker is small, solid and surrounded by clear
screen; hair, fur and leaves are either joined to the subject or, where they break up into
fragments, thin and faint. So an island is keyed out when all of these hold:

- it fits inside a square of ``size`` pixels (the option; 0 turns the despot off);
- a band BAND pixels wide all round that square is clear screen (alpha below CLEAR);
- it holds at least SOLID_COUNT pixels keyed SOLID or more (a strand's fragment rarely does).

Everything inside such a square is set to 0, including the faint fringe around the island.
An island touching the frame's edge is kept, since it may go on outside the frame. Each pixel's
answer depends only on the key within ``size + 2 * BAND`` pixels of it; the keyer runs it on the
assembled frame (engine/keyer.py finish_frame), so tiles never change it. numpy only.
"""

from __future__ import annotations

import numpy as np

DEFAULT_SIZE = 32  # pixels: tracking markers on a 1080p plate of a full-length shot are about this size
MAX_SIZE = 4096  # the largest size the option takes
CLEAR = 0.1  # alpha below which the band around an island counts as clear screen
BAND = 2  # pixels of clear screen needed all round the island's square
SOLID = 0.9  # alpha from which a pixel counts as solid ...
SOLID_COUNT = 12  # ... and how many solid pixels an island needs to be keyed out


def _integral(mask: np.ndarray, dtype: type) -> np.ndarray:
    """Summed-area table with a leading row and column of zeros, wrapping in an unsigned dtype.

    The sums of squares taken from it are exact while they stay below the dtype's range
    (modular arithmetic), so a narrow dtype serves any frame size; uint16 halves the time.
    """
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype)
    np.cumsum(mask, axis=0, dtype=dtype, out=table[1:, 1:])
    np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
    return table


def _box_sums(table: np.ndarray, side: int) -> np.ndarray:
    """The sum over every side x side square, indexed by its top-left pixel."""
    return table[side:, side:] - table[:-side, side:] - table[side:, :-side] + table[:-side, :-side]


def checked_size(size: int) -> int:
    """The despot size if it is one the option takes (0 .. MAX_SIZE), else ValueError saying so."""
    if not 0 <= size <= MAX_SIZE:
        raise ValueError(f"must be from 0 (off) to {MAX_SIZE} pixels, got {size}")
    return size


def despot(alpha: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
    """The key (HxW float32) with small solid islands on clear screen keyed out (module docstring).

    Returns the input itself when nothing is keyed out (or ``size`` is 0), else a new array.
    """
    if size < 0:
        raise ValueError(f"despot size must be 0 (off) or more, got {size}")
    h, w = alpha.shape
    outer_side = size + 2 * BAND
    if size == 0 or h < outer_side or w < outer_side:
        return alpha
    dtype = np.uint16 if outer_side * outer_side <= np.iinfo(np.uint16).max else np.uint32
    keyed = _integral(alpha >= CLEAR, dtype)
    solid = _integral(alpha >= SOLID, dtype)
    rows, cols = h - outer_side + 1, w - outer_side + 1  # every square that fits with its band
    inner = _box_sums(keyed, size)[BAND : BAND + rows, BAND : BAND + cols]
    cores = _box_sums(solid, size)[BAND : BAND + rows, BAND : BAND + cols]
    islands = (_box_sums(keyed, outer_side) == inner) & (cores >= SOLID_COUNT)
    if not islands.any():
        return alpha
    # A pixel y is keyed out when an island square covers it: one whose top-left t has its
    # interior (t + BAND .. t + BAND + size - 1) over y. Shifted by that offset into a frame-sized
    # map, the squares covering a pixel are those in the size x size block below-right of it.
    offset = BAND + size - 1
    shifted = np.zeros((h + size - 1, w + size - 1), bool)
    shifted[offset : offset + rows, offset : offset + cols] = islands
    covered = _box_sums(_integral(shifted, dtype), size) != 0
    out = alpha.copy()
    out[covered] = 0.0
    return out
