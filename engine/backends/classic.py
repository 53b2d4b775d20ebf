"""The classic colour-difference keyer behind the backend interface (`--keyer classic`).

It is per pixel, so it needs no halo and is trivially tile-invariant. It keys in linear
light from the decoded tiles and keeps the screen guide as the local screen colour.
"""

from __future__ import annotations

import numpy as np

from ..classic_keyer import classic_key
from ..encoding import srgb_eotf
from .base import Backend, ModelInfo


class ClassicBackend(Backend):
    name = "classic"

    def __init__(self) -> None:
        self.info = ModelInfo(name="classic", stride=1, halo=0, clean_plate_guide=True)

    def infer(
        self, plate: np.ndarray, screen: np.ndarray, screen_colour: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        alphas = []
        for p, s in zip(plate, screen, strict=True):
            p_lin = srgb_eotf(p.transpose(1, 2, 0))
            s_lin = srgb_eotf(s.transpose(1, 2, 0))
            alphas.append(classic_key(p_lin, s_lin, screen_colour)[None])
        return np.stack(alphas).astype(np.float32), screen.astype(np.float32, copy=True)

    def describe(self) -> str:
        return "classic colour-difference keyer"
