"""The torch backend gives the same key as ONNX Runtime (CPU here, CUDA where present)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch backend needs the [train] extra")

from gsrender.engine.backends import create_backend  # noqa: E402
from gsrender.engine.backends.torch_backend import TorchBackend, half_with_fp32_head  # noqa: E402
from gsrender.engine.keyer import key_frame  # noqa: E402
from tests.conftest import make_plate  # noqa: E402


def test_torch_backend_matches_onnxruntime_on_the_bundled_model(model_path):
    torch_backend = create_backend("torch", model=model_path)
    ort_backend = create_backend("onnxruntime", model=model_path)
    assert torch_backend.name.startswith("torch-") and torch_backend.info.halo == ort_backend.info.halo
    plate = make_plate(120, 176, seed=9)
    a = key_frame(plate, torch_backend, tile=64)
    b = key_frame(plate, ort_backend, tile=64)
    assert np.abs(a.alpha - b.alpha).max() < 1e-4
    assert np.abs(a.premult - b.premult).max() < 1e-3


def test_fp32_turns_tf32_off(model_path):
    """cuDNN runs FP32 convolutions in TF32 by default (~1e-3 relative); the FP32 backend is
    the reference the TensorRT FP32 engine keeps, so it asks for IEEE FP32."""
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = conv.fp32_precision, matmul.fp32_precision
    try:
        conv.fp32_precision = matmul.fp32_precision = "tf32"
        TorchBackend(model_path, device="cpu")
        assert conv.fp32_precision == "ieee" and matmul.fp32_precision == "ieee"
    finally:
        conv.fp32_precision, matmul.fp32_precision = before


def test_half_mode_keeps_the_output_head_in_fp32(model_path):
    """Half mode: the body in FP16, the head (after the last convolution) and the input
    arithmetic in FP32 with the FP32 screen guide, as the FP16 ONNX and TensorRT's FP16 engine
    do. Checked by running the FP32 network with its last convolution's output replaced by the
    half model's: an FP32 head agrees to ~1e-7, an FP16 head or guide would be ~5e-4 off."""
    fp32 = TorchBackend(model_path, device="cpu").model
    model = half_with_fp32_head(copy.deepcopy(fp32), torch)
    rng = np.random.default_rng(0)
    plate = torch.from_numpy(rng.random((1, 3, 64, 64), np.float32))
    screen = torch.from_numpy((0.3 + 0.01 * rng.random((1, 3, 64, 64))).astype(np.float32))
    seen = {}
    model.h_out.register_forward_hook(lambda m, i, o: seen.update(o=o))
    with torch.inference_mode():
        alpha, bg = model(plate, screen)
    assert alpha.dtype == bg.dtype == torch.float32 and seen["o"].dtype == torch.float32
    assert model.e2a.weight.dtype == torch.float16  # the body is FP16
    fp32.h_out.register_forward_hook(lambda m, i, o: seen["o"])  # same body output, FP32 head
    with torch.inference_mode():
        want_alpha, want_bg = fp32(plate, screen)
    assert (alpha - want_alpha).abs().max() < 1e-6
    assert (bg - want_bg).abs().max() < 1e-6
