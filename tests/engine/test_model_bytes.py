"""A model is read once: every ONNX Runtime session a render builds runs the bytes that were
validated, even when the file is replaced while the render runs."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from gsrender.engine.backends import create_backend
from tests.engine.test_hardening import _onnx_model


def _inputs(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    plate = rng.random((1, 3, h, w), dtype=np.float32)
    screen = np.full((1, 3, h, w), 0.5, np.float32)
    return plate, screen, np.array([0.1, 0.5, 0.1], np.float32)


def test_sessions_for_later_shapes_run_the_validated_model_not_its_replacement(tmp_path: Path) -> None:
    model = _onnx_model(tmp_path / "m.onnx")  # alpha = mean of the plate's channels
    validated = hashlib.sha256(model.read_bytes()).hexdigest()
    backend, _ = create_backend("onnxruntime", model=model, threads=1)  # validated, probe included
    try:
        # replaced under the render by a model with the wrong alpha shape (3 channels)
        wrong = _onnx_model(tmp_path / "wrong.onnx", alpha_channels=3)
        shutil.copyfile(wrong, model)
        plate, screen, colour = _inputs(40, 56)  # a new shape: its own session is built now
        alpha, _ = backend.infer(plate, screen, colour)
        assert alpha.shape == (1, 1, 40, 56)
        np.testing.assert_allclose(alpha, plate.mean(axis=1, keepdims=True), rtol=1e-6)
        # a deleted file changes nothing either
        model.unlink()
        alpha, _ = backend.infer(*_inputs(24, 24))
        assert alpha.shape == (1, 1, 24, 24)
        assert f"sha256 {validated[:12]}" in backend.describe()  # the log names the bytes that run
    finally:
        backend.close()
