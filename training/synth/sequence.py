"""Temporal sequences: one scene, rendered at successive times.

The screen, subject, spill and camera settings are drawn once; each frame moves the
subject groups along smooth paths (drift plus a slow wobble and rotation), sways hair
strands, and draws fresh sensor noise. That is what a shot looks like to a keyer, and
it lets a flicker metric compare consecutive frames whose ground truth moves smoothly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .generator import Plate, Scene, render_plate, sample_scene


def render_sequence(scene: Scene, seed: int, n_frames: int, start: int = 0) -> list[Plate]:
    """Render frames start..start+n_frames-1 of a scene; noise is seeded per frame."""
    return [
        render_plate(scene, float(i), np.random.default_rng([seed, i + 1]))
        for i in range(start, start + n_frames)
    ]


def generate_sequence(
    seed: int, n_frames: int, height: int, width: int, kinds: Sequence[str] | None = None
) -> list[Plate]:
    """The same subject and screen in every frame, with smooth motion between frames.

    Deterministic: the same arguments give bit-identical plates. `kinds` as in generate_plate.
    """
    scene = sample_scene(np.random.default_rng(seed), height, width, kinds)
    return render_sequence(scene, seed, n_frames)
