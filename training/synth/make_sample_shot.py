"""Write a small deterministic sample shot with ground-truth alpha.

    python tools/make_sample_shot.py OUT_DIR [--frames 4] [--width 960]
        [--height 540] [--seed 7]

Writes OUT_DIR/plate.1001.png ... (sRGB 8-bit, what the camera recorded) and
OUT_DIR/gt/alpha.1001.png ... (8-bit coverage). Same arguments, same bytes: the demo
renders and regression checks can rely on it. Noise is kept modest so the PNGs stay small.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from gsrender.engine.encoding import srgb_oetf

from ..datasets import write_png
from .generator import sample_scene
from .sequence import render_sequence

SHOT_KINDS = ("solid", "hair", "thin", "markers", "8bit_420")
FIRST_FRAME = 1001


def make_sample_shot(
    out_dir: str | Path, frames: int = 4, width: int = 960, height: int = 540, seed: int = 7
) -> list[Path]:
    """Render the shot and write it; returns the plate paths."""
    out = Path(out_dir)
    (out / "gt").mkdir(parents=True, exist_ok=True)
    scene = sample_scene(np.random.default_rng(seed), height, width, SHOT_KINDS)
    # a clean modern camera: low noise, no sharpening (and noise compresses badly in PNG)
    scene.camera = dataclasses.replace(scene.camera, shot=2e-5, read=4e-4, sharpen=0.0, exposure=1.0)
    written = []
    for i, p in enumerate(render_sequence(scene, seed, frames)):
        n = FIRST_FRAME + i
        path = out / f"plate.{n}.png"
        write_png(path, srgb_oetf(p.plate))
        write_png(out / "gt" / f"alpha.{n}.png", p.alpha[..., None])
        written.append(path)
    return written
