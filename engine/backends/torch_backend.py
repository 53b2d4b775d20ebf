"""PyTorch backend for machines without TensorRT: CUDA when present, else CPU.

Loads a training checkpoint (weights only, never arbitrary pickles); given the bundled
ONNX model it uses the checkpoint shipped beside it (models/gskey.pt).
Torch is an optional extra; it is imported only when this backend is chosen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BackendError
from .base import Backend, ModelInfo


class TorchBackend(Backend):
    def __init__(self, checkpoint: str | Path, *, device: str = "auto", half: bool = False) -> None:
        try:
            import torch

            from gsrender.training.models import build_model, deploy_module, is_keyer
            from gsrender.training.models.gskey import receptive_radius
        except ImportError as exc:
            raise BackendError(None, f"torch backend needs the [train] extra ({exc})") from None
        path = Path(checkpoint)
        if path.suffix == ".onnx" and path.with_suffix(".pt").is_file():
            path = path.with_suffix(".pt")  # the bundled model ships its checkpoint beside the ONNX
        if path.suffix != ".pt":
            raise BackendError(path, "the torch backend loads a training checkpoint (.pt)")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise BackendError(path, f"cannot load checkpoint: {str(exc).splitlines()[0]}") from None
        config = ckpt.get("config", {})
        model_cfg = config.get("model", {}) if isinstance(config, dict) else {}
        name = model_cfg.get("name", "gskey")
        if not is_keyer(name):
            raise BackendError(path, f"the render engine runs gskey models, this checkpoint is '{name}'")
        model = build_model(name, **model_cfg.get("kwargs", {}))
        model.load_state_dict(ckpt["model"])
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.torch = torch
        self.device = torch.device(device)
        self.dtype = torch.float16 if half and self.device.type == "cuda" else torch.float32
        # the inference arrangement of the same weights: same outputs, less full-resolution work
        self.model = deploy_module(model.eval()).to(self.device, self.dtype).eval()
        stride = model.stride
        self.info = ModelInfo(name=name, stride=stride, halo=-(-receptive_radius() // stride) * stride)
        self.name = f"torch-{self.device.type}"
        self.cpu_bound = self.device.type == "cpu"

    def infer(
        self, plate: np.ndarray, screen: np.ndarray, screen_colour: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        t = self.torch
        with t.inference_mode():
            p = t.from_numpy(plate).to(self.device, self.dtype)
            s = t.from_numpy(screen).to(self.device, self.dtype)
            alpha, bg = self.model(p, s)
            return alpha.float().cpu().numpy(), bg.float().cpu().numpy()
