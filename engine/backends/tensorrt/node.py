"""The node an engine is built for: TensorRT version, GPU name and compute capability.

A TensorRT engine is only valid for the GPU model, compute capability and TensorRT
version it was built with, so these three are part of its cache key. nvidia-smi is here
too: `gsrender doctor` reports the GPUs without importing TensorRT or pycuda.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from ...errors import BackendError


@dataclass(frozen=True)
class NodeIdentity:
    """What makes an engine valid on a node: TensorRT version and the GPU."""

    trt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"

    def describe(self) -> str:
        """One line for logs and the CLI."""
        return f"{self.gpu_name} (sm {self.compute_capability}), TensorRT {self.trt_version}"


def trt_major(version: str) -> int:
    """10 for "10.7.0.23"; 0 when unreadable (the build then takes TensorRT 10's paths)."""
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def import_tensorrt() -> Any:
    """The tensorrt module, or a BackendError that says how to install it (it is optional)."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendError(
            None, f"TensorRT is not installed ({exc}): pip install 'gsrender[tensorrt]'"
        ) from None
    return trt


def cuda_device() -> Any:
    """The pycuda device whose retained primary context TensorRT and pycuda share.

    Nothing is pushed here: users make the context current per use (engine/backends/cuda_context).
    """
    from ..cuda_context import primary_context

    return primary_context().device


def detect_node(device: Any = None) -> NodeIdentity:
    """TensorRT version plus the name and compute capability of the CUDA device in use."""
    trt = import_tensorrt()
    dev = device if device is not None else cuda_device()
    major, minor = dev.compute_capability()
    return NodeIdentity(
        trt_version=trt.__version__, gpu_name=dev.name(), compute_capability=f"{major}.{minor}"
    )


def nvidia_smi() -> dict[str, Any]:
    """GPUs, driver and CUDA (driver API) version from nvidia-smi; {'error': ...} when unavailable."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return {"error": "nvidia-smi not found"}
    fields = ["index", "name", "driver_version", "memory.total", "compute_cap"]
    for attempt in (fields, fields[:-1]):  # compute_cap needs a 2021+ driver
        try:
            res = subprocess.run(
                [exe, f"--query-gpu={','.join(attempt)}", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=20,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return {"error": f"nvidia-smi failed: {exc}"}
        if res.returncode == 0:
            break
    else:
        return {"error": f"nvidia-smi failed: {(res.stderr or res.stdout).strip().splitlines()[:1]}"}
    gpus = []
    for line in res.stdout.strip().splitlines():
        vals = [v.strip() for v in line.split(",")]
        if len(vals) >= 4:
            gpus.append(
                {
                    "index": vals[0],
                    "name": vals[1],
                    "driver": vals[2],
                    "memory_mib": vals[3],
                    "compute_capability": vals[4] if len(vals) > 4 else None,
                }
            )
    info: dict[str, Any] = {"gpus": gpus}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run([exe], capture_output=True, text=True, timeout=20).stdout
        m = re.search(r"CUDA Version:\s*([\d.]+)", head)
        if m:
            info["cuda"] = m.group(1)
    return info
