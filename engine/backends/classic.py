"""The classic colour-difference keyer behind the backend interface (`--keyer classic`).

It keys in linear light from the decoded tiles (the bounded encoding: what the network sees,
clipped to [0, 1]) and keeps the screen guide as the local screen colour. Its default form
looks RADIUS pixels around each pixel for the subject's colour, so tiles carry that halo
(classic_keyer.halo_for) and assemble exactly like the whole frame.
"""

from __future__ import annotations

import numpy as np

from ..classic_keyer import classic_key, halo_for
from ..encoding import srgb_eotf
from .base import Backend, ModelInfo


class ClassicBackend(Backend):
    name = "classic"

    def __init__(self, form: str = "local") -> None:
        """form: classic_keyer.FORMS; the command line keys with the default."""
        self.form = form
        self.info = ModelInfo(name="classic", stride=1, halo=halo_for(form), clean_plate_guide=True)

    def infer(
        self, plate: np.ndarray, screen: np.ndarray, screen_colour: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        alphas = []
        for p, s in zip(plate, screen, strict=True):
            p_lin = srgb_eotf(p.transpose(1, 2, 0))
            s_lin = srgb_eotf(s.transpose(1, 2, 0))
            alphas.append(classic_key(p_lin, s_lin, screen_colour, form=self.form)[None])
        return np.stack(alphas).astype(np.float32), screen.astype(np.float32, copy=True)

    def describe(self) -> str:
        return f"classic colour-difference keyer ({self.form} form)"
