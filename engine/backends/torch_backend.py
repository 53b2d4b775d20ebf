"""PyTorch backend for machines without TensorRT: CUDA when present, else CPU.

Loads a training checkpoint (weights only, never arbitrary pickles); given the bundled
ONNX model it uses the checkpoint shipped beside it (models/gskey.pt).
Torch is an optional extra; it is imported only when this backend is chosen.

Precision matches the TensorRT engines: FP32 runs IEEE FP32 convolutions (cuDNN would
otherwise use TF32, about 1e-3 relative off the FP32 reference); half mode runs the
network in FP16 but its output head (everything after the last convolution: the +0.5,
tanh, the add to the screen guide, the clamps) and the screen guide it adds in FP32,
as the FP16 ONNX and the TensorRT FP16 engine do. On CUDA, tiles go through reusable
page-locked buffers with asynchronous copies, and the wait at the end sleeps (a
blocking-sync event) instead of spinning a core the reader and writer threads need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError
from .base import Backend, ModelInfo


def use_ieee_fp32(torch: Any) -> None:
    """FP32 convolutions and matmuls in full FP32 (no TF32) for this process."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):  # torch >= 2.9: the precision API
        conv.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    else:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def half_with_fp32_head(model: Any, torch: Any) -> Any:
    """The deploy model in FP16 whose output head runs in FP32.

    The convolutions that read the network input take it in any dtype and cast it to
    FP16; the last convolution hands its output on in FP32, so the head arithmetic (and
    the FP32 screen guide it adds) is FP32 by type promotion, not FP16.
    """
    nn = torch.nn

    class CastIn(nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            return self.inner(x.to(torch.float16))

    class FloatOut(nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            return self.inner(x).float()

    model = model.half()
    model.e1a = CastIn(model.e1a)
    if hasattr(model, "h_in_x"):  # GsKeyNet3's head reads no full-resolution input
        model.h_in_x = CastIn(model.h_in_x)
    model.h_out = FloatOut(model.h_out)
    return model


class _Pinned:
    """Reusable page-locked host tensors per name, grown as needed (CUDA only)."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        self.buffers: dict[str, Any] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        t = self.torch
        count = int(np.prod(shape))
        buf = self.buffers.get(name)
        if buf is None or buf.numel() < count or buf.dtype != dtype:
            buf = self.buffers[name] = t.empty(int(count * 1.25), dtype=dtype, pin_memory=True)
        return buf[:count].view(shape)


class TorchBackend(Backend):
    def __init__(self, checkpoint: str | Path, *, device: str = "auto", half: bool = False) -> None:
        try:
            import torch

            from gsrender.models.checkpoint import (
                CheckpointFileError,
                checkpoint_model_config,
                model_from_checkpoint,
                read_checkpoint,
            )
            from gsrender.models.metadata import halo_for
            from gsrender.models.networks import deploy_module, is_keyer, receptive_radius
        except ImportError as exc:
            raise BackendError(None, f"torch backend needs the [train] extra ({exc})") from None
        path = Path(checkpoint)
        if path.suffix == ".onnx" and path.with_suffix(".pt").is_file():
            path = path.with_suffix(".pt")  # the bundled model ships its checkpoint beside the ONNX
        if path.suffix != ".pt":
            raise BackendError(path, "the torch backend loads a training checkpoint (.pt)")
        try:
            ckpt = read_checkpoint(path)
        except CheckpointFileError as exc:
            raise BackendError(path, exc.problem) from None
        # weights-only checkpoints without a model config have always meant GsKeyNet
        name, _ = checkpoint_model_config(ckpt, default_name="gskey")
        if not is_keyer(name):
            raise BackendError(path, f"the render engine runs gskey models, this checkpoint is '{name}'")
        model = model_from_checkpoint(ckpt, default_name="gskey")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.torch = torch
        self.device = torch.device(device)
        self.half = half and self.device.type == "cuda"
        # the inference arrangement of the same weights: same outputs, less full-resolution work
        deploy = deploy_module(model.eval()).to(self.device).eval()
        if self.half:
            self.model = half_with_fp32_head(deploy, torch)
        else:
            use_ieee_fp32(torch)
            self.model = deploy
        stride = model.stride
        self.info = ModelInfo(name=name, stride=stride, halo=halo_for(receptive_radius(model), stride))
        self.name = f"torch-{self.device.type}" + ("-fp16" if self.half else "")
        self.cpu_bound = self.device.type == "cpu"
        self._pinned = _Pinned(torch) if self.device.type == "cuda" else None

    def infer(
        self, plate: np.ndarray, screen: np.ndarray, screen_colour: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        t = self.torch
        with t.inference_mode():
            if self._pinned is None:
                alpha, bg = self.model(t.from_numpy(plate), t.from_numpy(screen))
                return alpha.numpy(), bg.numpy()
            return self._infer_cuda(plate, screen)

    def _infer_cuda(self, plate: np.ndarray, screen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pinned staging, asynchronous copies both ways, one sleeping wait at the end."""
        t, pin = self.torch, self._pinned
        assert pin is not None
        inputs = []
        for name, arr in (("plate", plate), ("screen", screen)):
            host = pin.get(name, arr.shape, t.float32)
            host.numpy()[...] = arr
            inputs.append(host.to(self.device, non_blocking=True))
        alpha, bg = self.model(*inputs)
        out = []
        for name, dev in (("alpha", alpha), ("bg", bg)):
            host = pin.get(name, tuple(dev.shape), t.float32)
            host.copy_(dev, non_blocking=True)
            out.append(host)
        done = t.cuda.Event(blocking=True)
        done.record()
        done.synchronize()
        return out[0].numpy().copy(), out[1].numpy().copy()  # the pinned buffers are reused next call
