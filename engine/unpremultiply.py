"""Straight (unpremultiplied) colour for outputs: F = aF / max(a, STRAIGHT_MIN_ALPHA).

Dividing the unmixed foreground by alpha amplifies whatever error alpha and aF carry by
1/alpha. Below about 1% coverage aF is mostly plate noise, so F = aF / a turns into
meaningless colours (5x the plate's brightness at alpha 6e-4 on the test plates), and a
1e-7 change of alpha (another CPU's rounding, a host that hands the OpenFX plugin the
frame one float step off) moves it by 1e-3. Dividing by max(a, 0.01) instead keeps F
continuous, bounds it by 100x aF, and bounds that change by about (|d aF| + |F| |d a|) /
0.01, under 1e-4 for alpha noise up to ~1e-6; above 1% alpha nothing changes. What is
lost below 1%: a consumer that premultiplies again gets aF * a / 0.01 instead of aF,
at most 1% of the foreground's brightness, in pixels that are 99% transparent.

Premultiplied linear outputs (EXR) never divide and are unaffected.
"""

from __future__ import annotations

import numpy as np

STRAIGHT_MIN_ALPHA = 0.01


def straight_for_output(premult: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """HxWx3 straight colour from HxWx3 premultiplied colour and HxW alpha (0 where aF is 0)."""
    a = np.maximum(alpha, STRAIGHT_MIN_ALPHA)[..., None]
    return (premult / a).astype(np.float32, copy=False)
