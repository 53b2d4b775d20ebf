"""The README's compositor-inputs picture: plate, matte, matte with a garbage matte.

A synthetic plate (never a real photograph) with yellow tracking markers: the despot keys out
those on clear screen, and a garbage matte drawn as a feathered box around the subject throws
away the one the frame's edge cuts.
Run from the repository root:

    python docs/make_compositor_inputs_figure.py docs/compositor_inputs.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from gsrender.engine.backends import create_backend
from gsrender.engine.compositor_inputs import FrameInputs
from gsrender.engine.encoding import srgb_oetf
from gsrender.engine.image_write import write_frame
from gsrender.engine.keyer import key_frame
from gsrender.training.synth.generator import generate_plate

SEED, HEIGHT, WIDTH = 132, 216, 384
KINDS = ["solid", "markers", "dark_screen"]
MARGIN, FEATHER = 12, 8  # pixels around the subject kept, and the garbage matte's soft edge
GAP = 4


def garbage_box(alpha: np.ndarray) -> np.ndarray:
    """1 outside a box around the subject (ground truth alpha > 0.01), a linear ramp FEATHER wide."""
    ys, xs = np.nonzero(alpha > 0.01)
    h, w = alpha.shape
    y0, y1, x0, x1 = ys.min() - MARGIN, ys.max() + MARGIN, xs.min() - MARGIN, xs.max() + MARGIN
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    outside = np.maximum.reduce([y0 - yy, yy - y1, x0 - xx, xx - x1])  # > 0 outside the box
    return np.clip(outside / FEATHER + 0.5, 0.0, 1.0).astype(np.float32)


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/compositor_inputs.png")
    plate = generate_plate(SEED, HEIGHT, WIDTH, KINDS)
    backend = create_backend("onnxruntime", threads=1)
    garbage = garbage_box(plate.alpha)
    plain = key_frame(plate.plate, backend).alpha
    matted = key_frame(plate.plate, backend, inputs=FrameInputs(garbage=garbage)).alpha
    edge = (garbage > 0.0) & (garbage < 1.0)
    with_edge = np.repeat(matted[..., None], 3, axis=2)
    with_edge[edge] = 0.6 * with_edge[edge] + 0.4 * np.array([1.0, 0.2, 0.2])  # where the matte was drawn
    panels = [srgb_oetf(plate.plate), np.repeat(plain[..., None], 3, axis=2), with_edge]
    gap = np.ones((HEIGHT, GAP, 3), np.float32)
    strip = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    write_frame(out, np.ascontiguousarray(strip, dtype=np.float32), ["R", "G", "B"], None)
    print(f"{out}: plate, matte, matte with a garbage matte (seed {SEED})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
