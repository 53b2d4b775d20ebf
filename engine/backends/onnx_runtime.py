"""ONNX Runtime backend: the default, runs anywhere (CPU), CUDA provider when installed."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gsrender.models.metadata import MetadataError, parse_metadata

from ..errors import BackendError
from .base import Backend, ModelInfo


def read_model_info(meta: Mapping[str, str], path: Path) -> ModelInfo:
    """Tiling facts from the ONNX metadata written by `gsrender export` (gsrender.models.metadata)."""
    try:
        md = parse_metadata(meta, default_name=path.stem)
    except MetadataError:
        raise BackendError(
            path, "not a gsrender model (ONNX metadata gsrender.stride/halo missing)"
        ) from None
    return ModelInfo(name=md.name, stride=md.stride, halo=md.halo, clean_plate_guide=md.clean_plate_guide)


def read_model_bytes(path: Path) -> bytes:
    """The model file's bytes, read once: what is validated is what every session runs."""
    if not path.is_file():
        raise BackendError(path, "model file not found")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BackendError(path, f"cannot read the model ({exc.strerror or exc})") from None


SHAPE_SESSIONS = 2  # input shapes that get a specialised session (a render uses one or a few)


class OnnxRuntimeBackend(Backend):
    """Runs the exported keyer with onnxruntime.

    On the CPU each input shape gets its own session with the model's symbolic dimensions
    (batch, height, width) fixed. With unknown spatial sizes ONNX Runtime cannot prove that the
    two operands of an add have the same shape, so it keeps additions and activations as
    separate passes over full-resolution tensors; with the sizes fixed it fuses them into the
    convolutions (12% less CPU time per 1080p frame for GsKeyNet2, measured). The first
    SHAPE_SESSIONS shapes get a session and keep it; later shapes run in the general session.
    Never evicting matters: a tiled 4K frame has six tile shapes, and recreating sessions in turn
    would cost more than the fusion saves. An untiled render (up to 2560x1440) has one shape.
    """

    def __init__(self, model_path: str | Path, *, device: str = "cpu", threads: int = 0) -> None:
        import onnxruntime as ort

        path = Path(model_path)
        model_bytes = read_model_bytes(path)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # auto: every core; with spinning off, idle inference threads yield to the reader and
        # writer (1 and 2 threads measured within noise of each other on 2 cores)
        so.intra_op_num_threads = threads if threads > 0 else max(1, os.cpu_count() or 1)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        # Idle intra-op threads spin by default, stealing the core the reader and writer
        # threads need: with spinning off the stages overlap instead of competing.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendError(None, "onnxruntime has no CUDA provider here (install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        self._ort, self._options, self._providers = ort, so, providers
        try:
            self.session = ort.InferenceSession(model_bytes, so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(path, f"cannot load ONNX model: {str(exc).splitlines()[0]}") from None
        self.info = read_model_info(self.session.get_modelmeta().custom_metadata_map, path)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.name = f"onnxruntime-{self.device}"
        self.cpu_bound = self.device == "cpu"
        self.model_path = path
        # Every session is built from these bytes, the ones validated: the file may be replaced
        # under a running render, and a later input shape must not pick up the replacement.
        self._model_bytes = model_bytes
        self.model_sha256 = hashlib.sha256(model_bytes).hexdigest()  # what the log names: these bytes
        self._dim_names = _symbolic_dims(self.session)
        self._by_shape: dict[tuple[int, ...], Any] = {}
        self._lock = threading.Lock()  # the OFX worker and renders may share one backend

    def _session_for(self, shape: tuple[int, ...]) -> Any:
        """The session specialised to this input shape (the general one when that cannot be done)."""
        if not self.cpu_bound or self._dim_names is None:
            return self.session
        with self._lock:
            return self._specialised(shape)

    def _specialised(self, shape: tuple[int, ...]) -> Any:
        session = self._by_shape.get(shape)
        if session is not None:
            return session
        if len(self._by_shape) >= SHAPE_SESSIONS:
            return self.session
        so = self._ort.SessionOptions()
        for attr in ("graph_optimization_level", "intra_op_num_threads", "inter_op_num_threads",
                     "log_severity_level"):  # fmt: skip
            setattr(so, attr, getattr(self._options, attr))
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        for name, size in zip(self._dim_names, shape, strict=True):
            if name:
                so.add_free_dimension_override_by_name(name, size)
        try:
            session = self._ort.InferenceSession(self._model_bytes, so, providers=self._providers)
        except Exception:  # a model this loader cannot specialise still runs unspecialised
            self._dim_names = None
            return self.session
        self._by_shape[shape] = session
        return session

    def infer(
        self, plate: np.ndarray, screen: np.ndarray, screen_colour: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        session = self._session_for(plate.shape)
        alpha, bg = session.run(["alpha", "bg"], {"plate": plate, "screen": screen})
        return alpha, bg

    def describe(self) -> str:
        return f"{self.name} ({self.model_path.name}, sha256 {self.model_sha256[:12]})"


def _symbolic_dims(session: Any) -> tuple[str, ...] | None:
    """The names of the plate's symbolic dimensions ('' for fixed ones), when both inputs share them.

    Specialising by name is only safe when every input's symbolic dimension means the same size.
    """
    shapes = {i.name: i.shape for i in session.get_inputs()}
    plate, screen = shapes.get("plate"), shapes.get("screen")
    if plate is None or plate != screen or len(plate) != 4:
        return None
    names = tuple(d if isinstance(d, str) else "" for d in plate)
    return names if any(names) else None
