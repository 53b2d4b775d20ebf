"""The evidence's own fine detail put back into the corrected key, across its edges.

The correcting keyers predict their correction at half resolution (GsKeyNet3) or through a
trunk whose features are blurred by pooling, so the corrected key's edges are smoother than the
colour-difference key they started from: a strand one or two pixels wide, or a crisp edge the
plate resolves, comes out softened. The correction is right about levels (how opaque, where the
screen's estimate was contaminated) and wrong about fine structure, which the evidence resolves
per pixel. So across an edge the key's finest scale is swapped for the evidence's:

    alpha' = clamp(alpha + band * trust * ((key - S(key)) - (alpha - S(alpha))))

S smooths over ``scale`` pixels (three box means of 2 * scale + 1 pixels: nearly a Gaussian of
sigma sqrt(scale * (scale + 1)), and no convolution, so the FP16 export keeps its FP32 output
head). The detail only raises alpha where the colour gate lets the correction raise it.

- band: alpha strictly between BAND_LOW and BAND_HIGH, grown by BAND_GROW pixels, within
  NEAR_CLEAR pixels of clear screen. Solid subject and clear screen stay exactly as the
  correction keyed them; so do partial specks inside a subject, the texture of light clothing
  the correction filled in.
- trust: 1 where the smoothed key and alpha agree, 0 where they differ by LEVEL_TOLERANCE or
  more (the correction overruled the evidence there, as on a greenish leaf, and the evidence's
  texture is wrong too).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .box_filters import box_mean, grow

BAND_LOW = 0.02  # alpha above this ...
BAND_HIGH = 0.98  # ... and below this is an edge whose detail the evidence supplies
BAND_GROW = 1  # the band grown by this many pixels (the edge's last partial pixels)
NEAR_CLEAR = 4  # ... within this many pixels of clear screen (alpha <= BAND_LOW)
LEVEL_TOLERANCE = 0.3  # smoothed key and alpha this far apart: the evidence was overruled there
PASSES = 3  # box means per smoothing


def detail_reach(scale: int) -> int:
    """How much further an output pixel reaches than the corrected alpha it starts from."""
    return max(PASSES * scale, BAND_GROW, NEAR_CLEAR) if scale > 0 else 0


def smooth(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Three box means of 2 * scale + 1 pixels that ignore what lies beyond the frame, so a tile
    stopping at the frame's edge smooths its edge pixels exactly as the whole frame does."""
    for _ in range(PASSES):
        x = box_mean(x, scale)
    return x


def restore_detail(alpha: torch.Tensor, key: torch.Tensor, gate: torch.Tensor, scale: int) -> torch.Tensor:
    """alpha with its finest scale replaced by the key's across edges (see above); scale 0: alpha."""
    if scale <= 0:
        return alpha
    partial = ((alpha > BAND_LOW) & (alpha < BAND_HIGH)).to(alpha.dtype)
    clear = (alpha <= BAND_LOW).to(alpha.dtype)
    band = grow(partial, BAND_GROW) * grow(clear, NEAR_CLEAR)
    key_level, alpha_level = smooth(key, scale), smooth(alpha, scale)
    trust = torch.clamp(1.0 - torch.abs(key_level - alpha_level) * (1.0 / LEVEL_TOLERANCE), 0.0, 1.0)
    detail = (key - key_level) - (alpha - alpha_level)
    detail = F.relu(detail) * gate - F.relu(-detail)
    return torch.clamp(alpha + band * trust * detail, 0.0, 1.0)
