"""Straight output colour is stable under the tiny alpha differences of another CPU or host."""

from __future__ import annotations

import numpy as np

from gsrender.engine.backends.onnx_runtime import OnnxRuntimeBackend
from gsrender.engine.keyer import key_frame
from gsrender.engine.unpremultiply import STRAIGHT_MIN_ALPHA, straight_for_output
from tests.conftest import SCREEN


def _soft_glow_plate(h: int = 250, w: int = 750) -> np.ndarray:
    """A subject whose coverage falls off over ~150 px: many pixels of faint, real alpha."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.exp(-((np.maximum(d - 40, 0) / 45) ** 2))[..., None]
    plate = alpha * np.array([0.55, 0.35, 0.25], np.float32) + (1 - alpha) * SCREEN
    return (plate + np.random.default_rng(3).normal(0, 0.002, plate.shape)).astype(np.float32)


def test_one_float_step_of_input_moves_straight_colour_by_under_1e4(model_path):
    """The plate one float step up (what a host's own pixel pipeline may hand the OpenFX
    plugin) moves alpha by ~5e-7; dividing by alpha near 1e-3 used to turn that into 1.4e-3
    of straight colour. Alpha itself must differ, or this would prove nothing."""
    backend = OnnxRuntimeBackend(model_path, threads=1)
    plate = _soft_glow_plate()
    a = key_frame(plate, backend)
    b = key_frame(np.nextafter(plate, np.float32(2)), backend)
    assert np.abs(a.alpha - b.alpha).max() > 1e-7
    assert ((a.alpha > 1e-4) & (a.alpha < STRAIGHT_MIN_ALPHA)).sum() > 10  # faint pixels are there
    assert np.abs(a.foreground - b.foreground).max() < 1e-4


def test_straight_is_exact_above_the_threshold_and_bounded_below():
    alpha = np.array([[0.0, 1e-3, 0.01, 0.5, 1.0]], np.float32)
    premult = np.repeat(alpha[..., None] * np.float32(0.6), 3, axis=2)  # F = 0.6 everywhere
    f = straight_for_output(premult, alpha)
    np.testing.assert_allclose(f[0, 2:], 0.6, rtol=1e-6)  # unchanged from 1% up
    np.testing.assert_allclose(f[0, 1], 0.06, rtol=1e-6)  # aF / 0.01 below
    assert f[0, 0].tolist() == [0.0, 0.0, 0.0] and f.dtype == np.float32
