"""ONNX Runtime backend: the default, runs anywhere (CPU), CUDA provider when installed."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

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


class OnnxRuntimeBackend(Backend):
    """Runs the exported keyer with onnxruntime."""

    def __init__(self, model_path: str | Path, *, device: str = "cpu", threads: int = 0) -> None:
        import onnxruntime as ort

        path = Path(model_path)
        if not path.is_file():
            raise BackendError(path, "model file not found")
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
        try:
            self.session = ort.InferenceSession(str(path), so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(path, f"cannot load ONNX model: {str(exc).splitlines()[0]}") from None
        self.info = read_model_info(self.session.get_modelmeta().custom_metadata_map, path)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.name = f"onnxruntime-{self.device}"
        self.cpu_bound = self.device == "cpu"
        self.model_path = path

    def infer(
        self, plate: np.ndarray, screen: np.ndarray, screen_colour: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        alpha, bg = self.session.run(["alpha", "bg"], {"plate": plate, "screen": screen})
        return alpha, bg

    def describe(self) -> str:
        return f"{self.name} ({self.model_path.name})"
