"""A classic colour-difference keyer: the non-learned baseline artists know.

Keylight/IBK-style: a pixel's screen "strength" is how much its screen channel (green
for a green screen, blue for a blue one) exceeds the other two,

    s(p) = p[screen] - max(p[other1], p[other2])        (Keylight-style, default)
    s(p) = p[screen] - (w * p[other1] + (1-w) * p[other2])   (IBK "rb weight" = w)

and alpha = 1 - s(plate) / s(clean screen at the same pixel). Using the per-pixel clean
screen (IBK's "clean plate", here the engine's smooth screen estimate) instead of one
screen colour keys an unevenly lit screen to 0 everywhere. Because linear light mixes
additively, a pixel that is a fraction ``a`` of a neutral subject over the screen gets
alpha ``a`` exactly.

The key itself is per pixel; its clean-up clip can be kept off edges (``clip_edges``,
engine/edge_clip.py), which looks EDGE_RADIUS pixels around each pixel, so a tile then needs a
halo of that many pixels (the classic backend asks for it). numpy only: this runs on render nodes.
"""

from __future__ import annotations

import numpy as np

from .edge_clip import clip_key

MIN_STRENGTH = 1e-6  # absolute floor on the clean screen's strength (guards the division)
MIN_STRENGTH_FRAC = 0.05  # ... and relative to the global screen colour's strength


def _strength(img: np.ndarray, screen_ch: int, rb_weight: float | None) -> np.ndarray:
    """Screen-channel excess over the other two channels, for ...x3 arrays."""
    a, b = (c for c in range(3) if c != screen_ch)
    if rb_weight is None:
        other = np.maximum(img[..., a], img[..., b])
    else:
        other = rb_weight * img[..., a] + (1.0 - rb_weight) * img[..., b]
    return (img[..., screen_ch] - other).astype(np.float32, copy=False)


def classic_key(
    plate_lin: np.ndarray,
    screen_lin: np.ndarray,
    screen_colour: np.ndarray,
    *,
    clip_black: float = 0.05,
    clip_white: float = 0.95,
    rb_weight: float | None = None,
    clip_edges: bool = False,
) -> np.ndarray:
    """Colour-difference alpha (HxW float32 in [0, 1]) of a green- or blue-screen plate.

    plate_lin: HxWx3 scene-linear Rec.709. screen_lin: HxWx3 smooth clean-screen estimate
    (linear), the reference strength per pixel. screen_colour: (3,) linear screen colour;
    its largest channel picks the screen channel (green or blue) and its strength sets
    the floor for a clean-screen guess that is too dark or contaminated to divide by.
    clip_black / clip_white: raw alpha at or below clip_black becomes 0 and at or above
    clip_white becomes 1 (linear remap in between), cleaning noise in screen and core.
    rb_weight: None uses the max of the two other channels (Keylight-style, holds
    yellows and skin); a float w in [0, 1] uses w*other1 + (1-w)*other2 in RGB order
    (IBK's weighted mix; 0.5 is IBK's default). clip_edges: clip only where the key is flat
    (engine/edge_clip.py), so faint strands and soft edges keep the unclipped key. Non-finite plate
    values key as opaque.
    """
    plate = np.asarray(plate_lin, dtype=np.float32)
    screen = np.asarray(screen_lin, dtype=np.float32)
    colour = np.asarray(screen_colour, dtype=np.float32).reshape(-1)
    if plate.ndim != 3 or plate.shape[2] != 3:
        raise ValueError(f"plate_lin must be HxWx3, got shape {plate.shape}")
    if screen.shape != plate.shape:
        raise ValueError(f"screen_lin shape {screen.shape} does not match plate {plate.shape}")
    if colour.shape != (3,):
        raise ValueError(f"screen_colour must have 3 values, got shape {colour.shape}")
    if not clip_black < clip_white:
        raise ValueError(f"clip_black ({clip_black}) must be below clip_white ({clip_white})")
    if rb_weight is not None and not 0.0 <= rb_weight <= 1.0:
        raise ValueError(f"rb_weight must be in [0, 1] or None, got {rb_weight}")

    screen_ch = int(np.argmax(colour))
    plate = np.nan_to_num(plate, nan=0.0, posinf=0.0, neginf=0.0)
    screen = np.nan_to_num(screen, nan=0.0, posinf=0.0, neginf=0.0)

    global_s = float(_strength(colour, screen_ch, rb_weight))
    floor = max(MIN_STRENGTH, MIN_STRENGTH_FRAC * global_s)
    ref = np.maximum(_strength(screen, screen_ch, rb_weight), np.float32(floor))
    raw = 1.0 - _strength(plate, screen_ch, rb_weight) / ref

    return clip_key(raw, clip_black, clip_white, clip_edges)
