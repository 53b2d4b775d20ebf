"""A classic colour-difference keyer: the non-learned baseline artists know, with edges kept.

A pixel's screen "strength" is how much its screen channel (green for a green screen, blue for
a blue one) exceeds the other two, and alpha = 1 - s(plate) / s(clean screen at the same
pixel). Using the per-pixel clean screen (IBK's "clean plate", here the engine's smooth screen
estimate) instead of one screen colour keys an unevenly lit screen to 0 everywhere. Three forms:

- ``"max"`` (Keylight-style): s(p) = p[screen] - max(p[other1], p[other2]). A neutral subject's
  mix gets its exact fraction, and anything whose screen channel is not the largest is opaque,
  which holds yellows, cyans and skin; but a brown or blond strand (red above green) gets more
  alpha than its coverage, and the clip below erases faint strands.
- ``"weighted"`` (IBK): s(p) = p[screen] - (w * p[other1] + (1 - w) * p[other2]), w = rb_weight.
- ``"local"`` (the default): the weighted strength (w = 0.5) scaled by 1 - (its other-channel
  mix), as Blender's Keying node computes its saturation, corrected by the strength of the
  subject next to the pixel (engine/local_foreground.py) so a strand of any colour gets its
  coverage. A pixel is held opaque as its "lead" (how far another channel exceeds the screen
  channel, as a share of its brightest channel) goes from -0.02 to 0.02 (HOLD_LEAD): a
  turquoise or yellow costume stays solid where the "max" form would hold it, and a brown strand
  is thickened only where it covers the pixel nearly fully. The hold lets go where the pixel is a
  clear mix of clear screen nearby and a subject the correction keys exactly (a blue prop's
  defocused edge keys with its coverage, not opaque from half of it; local_foreground.py).

Then the clean-up clip (raw alpha <= clip_black -> 0, >= clip_white -> 1), optionally only away
from edges (``clip_edges``, engine/edge_clip.py). The "local" form and ``clip_edges`` look
around each pixel, so a tile then needs a halo (``halo_for``; the classic backend asks for it).
numpy only: this runs on render nodes.
"""

from __future__ import annotations

import numpy as np

from . import edge_clip, local_foreground
from .edge_clip import clip_key
from .screen_estimate import channel_of_colour

MIN_STRENGTH = 1e-6  # absolute floor on the clean screen's strength (guards the division)
MIN_STRENGTH_FRAC = 0.05  # ... and relative to the global screen colour's strength
FORMS = ("local", "max", "weighted")  # the strength forms (see the module docstring)
LOCAL_RB_WEIGHT = 0.5  # the "local" form's weight of each other channel (Blender's screen balance)
HOLD_LEAD = (-0.02, 0.02)  # "local": held opaque from 0 at the first to 1 at the second lead (below)


def halo_for(form: str = "local", clip_edges: bool = False) -> int:
    """Pixels a tile needs around its core to key it exactly as the whole frame."""
    return (local_foreground.RADIUS if form == "local" else 0) + (edge_clip.HALO if clip_edges else 0)


def _strength(img: np.ndarray, screen_ch: int, rb_weight: float | None, bright: bool = False) -> np.ndarray:
    """Screen-channel excess over the other two channels, for ...x3 arrays.

    bright: scaled by 1 - (the other channels' mix, at most 1), the Keying node's form: a light
    pixel needs more excess to count as screen."""
    a, b = (c for c in range(3) if c != screen_ch)
    if rb_weight is None:
        other = np.maximum(img[..., a], img[..., b])
    else:
        other = rb_weight * img[..., a] + (1.0 - rb_weight) * img[..., b]
    s = img[..., screen_ch] - other
    if bright:
        s = s * (1.0 - np.minimum(other, 1.0))
    return s.astype(np.float32, copy=False)


def _strengths(
    plate: np.ndarray,
    screen: np.ndarray,
    colour: np.ndarray,
    screen_ch: int,
    rb_weight: float | None,
    bright: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(s(screen) floored as MIN_STRENGTH* say, s(plate)): the raw key is 1 - s(plate) / s(screen)."""
    global_s = float(_strength(colour, screen_ch, rb_weight, bright))
    floor = max(MIN_STRENGTH, MIN_STRENGTH_FRAC * global_s)
    ref = np.maximum(_strength(screen, screen_ch, rb_weight, bright), np.float32(floor))
    return ref, _strength(plate, screen_ch, rb_weight, bright)


def _local_key(plate: np.ndarray, screen: np.ndarray, colour: np.ndarray, screen_ch: int) -> np.ndarray:
    """The "local" form's raw key (module docstring)."""
    ref_max, s_max = _strengths(plate, screen, colour, screen_ch, None)
    plain_max = 1.0 - s_max / ref_max
    ref, s_plate = _strengths(plate, screen, colour, screen_ch, LOCAL_RB_WEIGHT, bright=True)
    raw, release = local_foreground.subject_corrected_key(plate, screen, s_plate, ref, plain_max)
    a, b = (c for c in range(3) if c != screen_ch)
    lead = (np.maximum(plate[..., a], plate[..., b]) - plate[..., screen_ch]) / np.maximum(
        plate.max(axis=-1), np.float32(1e-6)
    )
    lo, hi = HOLD_LEAD
    return np.maximum(raw, local_foreground.ramp(lead, lo, hi) * (1.0 - release))


def classic_key(
    plate_lin: np.ndarray,
    screen_lin: np.ndarray,
    screen_colour: np.ndarray,
    *,
    clip_black: float = 0.05,
    clip_white: float = 0.95,
    form: str = "local",
    rb_weight: float | None = None,
    clip_edges: bool = False,
    channel: int | None = None,
) -> np.ndarray:
    """Colour-difference alpha (HxW float32 in [0, 1]) of a green- or blue-screen plate.

    plate_lin: HxWx3 scene-linear Rec.709. screen_lin: HxWx3 smooth clean-screen estimate
    (linear), the reference strength per pixel. screen_colour: (3,) linear screen colour;
    its strength sets the floor for a clean-screen guess that is too dark or contaminated to
    divide by. channel: the screen's channel (ScreenEstimate.channel); None takes it from
    screen_colour by the same rule (screen_estimate.channel_of_colour), never red.
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
    if form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    if rb_weight is not None:
        form = "weighted"
    elif form == "weighted":
        rb_weight = LOCAL_RB_WEIGHT

    screen_ch = channel_of_colour(colour) if channel is None else channel
    plate = np.nan_to_num(plate, nan=0.0, posinf=0.0, neginf=0.0)
    screen = np.nan_to_num(screen, nan=0.0, posinf=0.0, neginf=0.0)

    if form == "local":
        raw = _local_key(plate, screen, colour, screen_ch)
    else:
        ref, s_plate = _strengths(plate, screen, colour, screen_ch, rb_weight)
        raw = 1.0 - s_plate / ref
    return clip_key(raw, clip_black, clip_white, clip_edges)
