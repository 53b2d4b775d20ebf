"""Frame-level keying with the bundled model: tile invariance, HDR, determinism."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gsrender.engine.backends.onnx_runtime import OnnxRuntimeBackend
from gsrender.engine.keyer import infer_frame, key_frame, prepare_frame
from tests.conftest import make_plate


@pytest.fixture(scope="module")
def backend(model_path):
    return OnnxRuntimeBackend(model_path, threads=1)


def test_tiles_assemble_to_the_untiled_result(backend):
    frame = prepare_frame(make_plate(203, 290, seed=11))
    alpha0, bg0 = infer_frame(frame, backend, tile=0)
    assert 0.05 < float(alpha0.mean()) < 0.95  # a real key, not a constant
    for tile in (40, 64, 128):
        alpha, bg = infer_frame(frame, backend, tile=tile)
        assert np.abs(alpha - alpha0).max() <= 1e-4
        assert np.abs(bg - bg0).max() <= 1e-4


def test_preparing_at_the_model_stride_equals_padding_afterwards(backend):
    """prepare_frame(stride=8) writes the padded inputs directly; nothing else changes."""
    plate = make_plate(203, 290, seed=11)
    plain, aligned = prepare_frame(plate), prepare_frame(plate, stride=backend.info.stride)
    assert aligned.plate_padded.shape == (3, 208, 296) and plain.plate_padded.shape == (3, 203, 290)
    edge = ((0, 0), (0, 5), (0, 6))
    np.testing.assert_array_equal(aligned.plate_padded, np.pad(plain.plate_enc, edge, mode="edge"))
    np.testing.assert_allclose(aligned.screen_padded, np.pad(plain.screen_enc, edge, mode="edge"), atol=1e-6)
    np.testing.assert_array_equal(aligned.plate_enc, plain.plate_enc)
    for tile in (0, 64):
        a0, bg0 = infer_frame(plain, backend, tile=tile)
        a1, bg1 = infer_frame(aligned, backend, tile=tile)
        assert np.abs(a0 - a1).max() <= 1e-5 and np.abs(bg0 - bg1).max() <= 1e-5


def test_a_halo_smaller_than_the_receptive_field_is_detectable(backend):
    """The invariance test above can fail: with too little halo the seams show."""
    frame = prepare_frame(make_plate(203, 290, seed=11))
    alpha0, _ = infer_frame(frame, backend, tile=0)
    short = OnnxRuntimeBackend(backend.model_path, threads=1)
    short.info = replace(short.info, halo=8)
    alpha, _ = infer_frame(frame, short, tile=40)
    assert np.abs(alpha - alpha0).max() > 1e-4


def test_hdr_foreground_survives_and_screen_goes_transparent(backend):
    plate = make_plate(96, 128, seed=2, hdr=True)
    keyed = key_frame(plate, backend)
    assert keyed.premult.max() > 5.0  # 6.0 highlight kept (linear unmix, no clipping)
    assert keyed.alpha[2, 2] < 0.05 and keyed.alpha[2, -3] < 0.05  # screen corners
    assert np.isfinite(keyed.premult).all() and np.isfinite(keyed.alpha).all()


def test_keying_is_deterministic(backend):
    plate = make_plate(64, 80, seed=4)
    a = key_frame(plate, backend)
    b = key_frame(plate.copy(), backend)
    np.testing.assert_array_equal(a.alpha, b.alpha)
    np.testing.assert_array_equal(a.premult, b.premult)


def test_the_render_and_the_ofx_worker_key_through_one_keyer(tmp_path, monkeypatch):
    """Both callers run Keyer.infer (not a copy of its steps), so their pixels cannot drift apart."""
    from gsrender.cli.render import main
    from gsrender.engine.keyer import Keyer
    from gsrender.ofx_bridge.protocol import Settings
    from gsrender.ofx_bridge.worker import WarmKeyer
    from tests.conftest import write_plate

    callers = []
    infer = Keyer.infer

    def spy(self: Keyer, frame):  # noqa: ANN001, ANN202 - a pass-through
        callers.append(self.backend.name)
        return infer(self, frame)

    monkeypatch.setattr(Keyer, "infer", spy)
    plate = make_plate(40, 56)
    src = write_plate(tmp_path / "plate.exr", plate)
    assert main([str(src), "-o", str(tmp_path / "k.exr"), "--keyer", "classic", "-q"]) == 0
    assert callers == ["classic"]
    worker = WarmKeyer()
    keyed, _, cached = worker.keyed("d", plate.shape[:2], lambda: plate, Settings(keyer="classic"))
    assert not cached and callers == ["classic", "classic"] and keyed.alpha.shape == plate.shape[:2]
    worker.close()
