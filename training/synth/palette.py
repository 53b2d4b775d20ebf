"""Colours the subject samplers share: skin and hair tones, near-green and random tints."""

from __future__ import annotations

import numpy as np

SKIN = np.array(
    [[0.62, 0.42, 0.32], [0.45, 0.28, 0.19], [0.3, 0.17, 0.1], [0.14, 0.07, 0.04], [0.06, 0.03, 0.02]],
    np.float32,
)
HAIR = np.array(
    [
        [0.012, 0.009, 0.007],  # black
        [0.05, 0.028, 0.014],  # dark brown
        [0.12, 0.07, 0.035],  # brown
        [0.38, 0.27, 0.13],  # blond
        [0.55, 0.45, 0.3],  # platinum
        [0.22, 0.06, 0.02],  # red
        [0.3, 0.3, 0.3],  # grey
    ],
    np.float32,
)


def green_tint(rng: np.random.Generator) -> np.ndarray:
    """A foreground colour close to, but not equal to, a chroma green (the hard case)."""
    return np.array([rng.uniform(0.05, 0.6), rng.uniform(0.7, 1.0), rng.uniform(0.05, 0.6)], np.float32)


def random_tint(rng: np.random.Generator) -> np.ndarray:
    """A random object colour: any hue, moderate saturation, dim to bright."""
    return rng.uniform(0.25, 1.0, 3).astype(np.float32) * np.float32(rng.uniform(0.4, 1.0))
