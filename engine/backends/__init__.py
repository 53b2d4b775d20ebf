"""Backend selection: one interface, several ways to run the keyer.

`auto` prefers TensorRT when the GPU stack is importable, then ONNX Runtime with CUDA,
then ONNX Runtime on the CPU; the choice is logged once by the caller.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import BackendError, UsageError
from .base import Backend, ModelInfo, default_model_path
from .cuda_context import first_line

BACKENDS = ("auto", "onnxruntime", "cuda", "torch", "tensorrt")


def _tensorrt_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("tensorrt", "pycuda"))


def _ort_cuda_available() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def resolve_auto(model_path: Path) -> tuple[str, str]:
    """What `--backend auto` picks on this node, and why (nothing is built)."""
    if model_path.suffix == ".pt":
        return "torch", "a .pt checkpoint was given"
    if _tensorrt_available():
        return "tensorrt", "TensorRT and pycuda found"
    if _ort_cuda_available():
        return "cuda", "onnxruntime CUDA provider (no TensorRT)"
    return "onnxruntime", "onnxruntime CPU (no TensorRT or CUDA provider found)"


def create_backend(
    name: str = "auto",
    *,
    model: str | Path | None = None,
    keyer: str = "neural",
    threads: int = 0,
    precision: str = "fp16",
    classic_form: str = "local",
) -> Backend:
    """Build a backend; for `auto` its auto_note says why it was picked. A context manager:
    `with create_backend(...) as backend:` closes it (device memory, sessions) on the way out."""
    if keyer == "classic":
        from .classic import ClassicBackend

        return ClassicBackend(classic_form)
    if keyer != "neural":
        raise UsageError(None, f"unknown keyer '{keyer}' (neural, classic)")
    if name not in BACKENDS:
        raise UsageError(None, f"unknown backend '{name}' ({', '.join(BACKENDS)})")
    model_path = Path(model) if model else default_model_path()
    note = None
    if name == "auto":
        name, note = resolve_auto(model_path)
    if name == "tensorrt":
        try:
            from .tensorrt.runner import TensorRTBackend

            trt = TensorRTBackend(model_path, precision=precision)
            _validated(trt, model_path, run_probe=False)  # its shape profile may not take a probe tile
            return _noted(trt, note)
        except Exception as exc:  # every construction failure: auto falls back, explicit fails
            reason = getattr(exc, "message", None) or first_line(exc)
            if note is None:  # --backend tensorrt asked explicitly: fail with the reason
                raise BackendError(None, f"TensorRT backend unavailable: {reason}") from None
            name = "cuda" if _ort_cuda_available() else "onnxruntime"
            note = f"{name} (TensorRT unavailable here: {reason})"  # the caller logs it: one line
    if name == "torch":
        from .torch_backend import TorchBackend

        return _noted(_validated(_loaded(TorchBackend, model_path), model_path), note)
    from .onnx_runtime import OnnxRuntimeBackend

    device = "cuda" if name == "cuda" else "cpu"
    backend = _validated(_loaded(OnnxRuntimeBackend, model_path, device=device, threads=threads), model_path)
    return _noted(backend, note)


def _noted(backend: Backend, note: str | None) -> Backend:
    backend.auto_note = note
    return backend


def _loaded(cls: type, model_path: Path, **kwargs: object) -> Backend:
    """Construct a backend; a model it chokes on (wrong weights, odd file) is one line, exit 5."""
    try:
        return cls(model_path, **kwargs)
    except (BackendError, UsageError):
        raise
    except Exception as exc:
        from ..errors import describe_exception

        raise BackendError(model_path, f"cannot load the model: {describe_exception(exc)}") from None


def _validated(backend: Backend, model_path: Path, *, run_probe: bool = True) -> Backend:
    """Metadata ranges, interface and one probe inference (engine/model_check.py); closes it on failure."""
    from ..model_check import validate

    try:
        validate(backend, model_path, run_probe=run_probe)
    except BaseException:
        backend.close()
        raise
    return backend


__all__ = ["Backend", "ModelInfo", "BACKENDS", "create_backend", "default_model_path", "resolve_auto"]
