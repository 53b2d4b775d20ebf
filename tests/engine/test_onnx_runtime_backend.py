"""ONNX Runtime backend: sessions specialised to an input shape give the general session's key,
the first SHAPE_SESSIONS shapes keep theirs, and later shapes never evict them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gsrender.engine.backends import onnx_runtime
from gsrender.engine.backends.onnx_runtime import SHAPE_SESSIONS, OnnxRuntimeBackend


def _inputs(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    plate = rng.random((1, 3, h, w), dtype=np.float32)
    screen = np.broadcast_to(np.array([0.3, 0.75, 0.35], np.float32)[None, :, None, None], (1, 3, h, w))
    return plate, np.ascontiguousarray(screen), np.array([0.08, 0.45, 0.1], np.float32)


def test_a_specialised_session_keys_like_the_general_one(model_path: Path) -> None:
    backend = OnnxRuntimeBackend(model_path, threads=1)
    plate, screen, colour = _inputs(64, 96)
    alpha, bg = backend.infer(plate, screen, colour)
    assert (1, 3, 64, 96) in backend._by_shape  # the first shape got its own session
    want_alpha, want_bg = backend.session.run(["alpha", "bg"], {"plate": plate, "screen": screen})
    # fusing additions into the convolutions reorders float sums, nothing more
    assert np.abs(alpha - want_alpha).max() < 1e-5 and np.abs(bg - want_bg).max() < 1e-5


def test_later_shapes_use_the_general_session_and_evict_nothing(model_path: Path) -> None:
    backend = OnnxRuntimeBackend(model_path, threads=1)
    shapes = [(40, 48), (48, 40), (56, 64), (64, 56)]
    assert len(shapes) > SHAPE_SESSIONS
    for _ in range(2):  # a tiled frame's shapes come round again on every frame
        for h, w in shapes:
            backend.infer(*_inputs(h, w))
    kept = list(backend._by_shape)
    assert kept == [(1, 3, h, w) for h, w in shapes[:SHAPE_SESSIONS]]
    assert backend._session_for((1, 3, 56, 64)) is backend.session


def test_a_model_whose_inputs_do_not_share_symbolic_sizes_is_not_specialised(model_path: Path) -> None:
    backend = OnnxRuntimeBackend(model_path, threads=1)
    assert backend._dim_names == ("batch", "", "height", "width")

    class Input:
        def __init__(self, name: str, shape: list) -> None:
            self.name, self.shape = name, shape

    class Session:
        def __init__(self, shapes: dict[str, list]) -> None:
            self.shapes = shapes

        def get_inputs(self) -> list[Input]:
            return [Input(k, v) for k, v in self.shapes.items()]

    fixed = [1, 3, 64, 64]
    assert onnx_runtime._symbolic_dims(Session({"plate": fixed, "screen": fixed})) is None
    mixed = Session({"plate": ["n", 3, "h", "w"], "screen": ["n", 3, "h2", "w2"]})
    assert onnx_runtime._symbolic_dims(mixed) is None


@pytest.mark.parametrize("threads", [1, 2])
def test_the_options_of_the_general_session_carry_over(model_path: Path, threads: int) -> None:
    backend = OnnxRuntimeBackend(model_path, threads=threads)
    backend.infer(*_inputs(32, 32))
    (session,) = backend._by_shape.values()
    assert session.get_session_options().intra_op_num_threads == threads
