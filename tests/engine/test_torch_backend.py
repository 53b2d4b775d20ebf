"""The torch backend gives the same key as ONNX Runtime (CPU here, CUDA where present)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the torch backend needs the [train] extra")

from gsrender.engine.backends import create_backend  # noqa: E402
from gsrender.engine.keyer import key_frame  # noqa: E402
from tests.conftest import make_plate  # noqa: E402


def test_torch_backend_matches_onnxruntime_on_the_bundled_model(model_path):
    torch_backend, _ = create_backend("torch", model=model_path)
    ort_backend, _ = create_backend("onnxruntime", model=model_path)
    assert torch_backend.name.startswith("torch-") and torch_backend.info.halo == ort_backend.info.halo
    plate = make_plate(120, 176, seed=9)
    a = key_frame(plate, torch_backend, tile=64)
    b = key_frame(plate, ort_backend, tile=64)
    assert np.abs(a.alpha - b.alpha).max() < 1e-4
    assert np.abs(a.premult - b.premult).max() < 1e-3
