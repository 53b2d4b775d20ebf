"""A model is input too: validated once when loaded, before any frame depends on it.

An ONNX file with the right tensor names but the wrong shapes renders garbage mattes with
exit 0; a stride of 0 or a negative halo in its metadata, or a checkpoint with the wrong
weights, ends in a traceback deep in tiling. Checking the declared interface, the tiling
metadata and one small probe inference turns each of those into one line and exit 5.
What is validated is what runs: the ONNX Runtime backend reads the file's bytes once and builds
every later session (one per input shape) from them, never from the path again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .backends.base import Backend, ModelInfo
from .errors import BackendError, describe_exception, listing

INPUTS = {"plate": 3, "screen": 3}  # name -> channels (NCHW)
OUTPUTS = {"alpha": 1, "bg": 3}
MAX_STRIDE = 256  # the network downsamples by 2**k; beyond this the metadata is nonsense
MAX_HALO = 4096
PROBE_SIDE = 64  # rounded up to the stride


def check_info(info: ModelInfo, path: Path | str | None) -> None:
    """Tiling metadata in range: stride 1..256, halo 0..4096 and a multiple of the stride."""
    stride, halo = info.stride, info.halo
    if not isinstance(stride, int) or not 1 <= stride <= MAX_STRIDE:
        raise BackendError(path, f"model metadata: stride {stride!r} is not between 1 and {MAX_STRIDE}")
    if not isinstance(halo, int) or not 0 <= halo <= MAX_HALO:
        raise BackendError(path, f"model metadata: halo {halo!r} is not between 0 and {MAX_HALO}")
    if halo % stride:
        raise BackendError(path, f"model metadata: halo {halo} is not a multiple of the stride {stride}")


def check_onnx_interface(session: object, path: Path | str | None) -> None:
    """Input/output names, ranks and channel counts of an onnxruntime session."""
    for kind, declared, wanted in (
        ("input", session.get_inputs(), INPUTS),  # type: ignore[attr-defined]
        ("output", session.get_outputs(), OUTPUTS),  # type: ignore[attr-defined]
    ):
        by_name = {t.name: t.shape for t in declared}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            have = listing(sorted(by_name)) or "none"
            raise BackendError(
                path, f"not a gsrender model: {kind} {', '.join(missing)} missing (has {have})"
            )
        for name, channels in wanted.items():
            shape = by_name[name]
            if len(shape) != 4:
                raise BackendError(path, f"{kind} '{name}' has rank {len(shape)}, a keyer needs 4 (NCHW)")
            if isinstance(shape[1], int) and shape[1] != channels:
                raise BackendError(path, f"{kind} '{name}' has {shape[1]} channels, a keyer needs {channels}")


def probe(backend: Backend, path: Path | str | None) -> None:
    """One inference on a small tile: outputs must have the tile's shape and finite values."""
    side = -(-PROBE_SIDE // backend.info.stride) * backend.info.stride
    rng = np.random.default_rng(0)
    plate = rng.random((1, 3, side, side), dtype=np.float32)
    screen = np.empty_like(plate)
    screen[:] = np.array([0.3, 0.7, 0.3], np.float32).reshape(1, 3, 1, 1)
    colour = np.array([0.07, 0.42, 0.09], np.float32)
    try:
        alpha, bg = backend.infer(plate, screen, colour)
    except Exception as exc:
        raise BackendError(path, f"model failed a probe inference: {describe_exception(exc)}") from None
    for name, value, channels in (("alpha", alpha, 1), ("bg", bg, 3)):
        shape = tuple(getattr(value, "shape", ()))
        if shape != (1, channels, side, side):
            raise BackendError(
                path,
                f"model output '{name}' has shape {shape} for a {side}x{side} tile, "
                f"expected {(1, channels, side, side)}",
            )
        if not np.isfinite(value).all():
            raise BackendError(path, f"model output '{name}' holds NaN or Inf for a plain tile")


def validate(backend: Backend, path: Path | str | None, *, run_probe: bool = True) -> None:
    """Everything above that applies to this backend; BackendError (exit 5) on the first problem."""
    check_info(backend.info, path)
    session = getattr(backend, "session", None)
    if session is not None and hasattr(session, "get_outputs"):
        check_onnx_interface(session, path)
    if run_probe:
        probe(backend, path)
