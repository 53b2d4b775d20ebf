"""The keyer models: network definitions, checkpoint I/O, model-file metadata, the shipped weights.

The bottom layer of gsrender: it imports no other gsrender package. This module and
``gsrender.models.metadata`` stay free of torch and onnx, so the render engine can find and
describe a model without them; ``networks`` and ``checkpoint`` need torch.

Shipped files (beside this module): gskey.onnx (FP32, what the engine runs by default),
gskey_fp16.onnx (for TensorRT), gskey.pt (weights-only checkpoint) and README.md (the model card).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SHIPPED_MODEL = "gskey.onnx"


def shipped_model_path() -> Path:
    """The bundled FP32 ONNX keyer (models/gskey.onnx in the repository): the engine's default model."""
    return Path(str(files(__name__) / SHIPPED_MODEL))


__all__ = ["SHIPPED_MODEL", "shipped_model_path"]
