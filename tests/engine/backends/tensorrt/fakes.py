"""Stand-ins shared by the TensorRT tests: node identities, a fake builder, requests, CPU execution.

The builder step is injected: `fake_builder` writes bytes derived from the request, so
everything around TensorRT (key, lock, atomic rename, sidecar validation) runs without a
GPU; `cpu_execute` runs chunks through ONNX Runtime on the CPU the way the GPU pipeline
does (reading ahead), so the shape logic is checked against real inference.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort

from gsrender.engine.atomic_files import file_sha256
from gsrender.engine.backends.tensorrt.cache import BuildRequest
from gsrender.engine.backends.tensorrt.jobs import Chunk
from gsrender.engine.backends.tensorrt.node import NodeIdentity
from gsrender.engine.backends.tensorrt.profile import DEFAULT_MAX_BATCH, DEFAULT_MAX_TILE, select_profile
from gsrender.engine.backends.tensorrt.runner import TensorRTBackend

NODE_A = NodeIdentity("10.7.0.23", "NVIDIA H100 80GB HBM3", "9.0")
NODE_B = NodeIdentity("10.7.0.23", "NVIDIA A100-SXM4-80GB", "8.0")
HALO, STRIDE = 88, 8


def fake_builder(request: BuildRequest) -> bytes:
    """Stands in for TensorRT: deterministic bytes from the key; counts calls in a side file."""
    counter = os.environ.get("GSRENDER_TEST_BUILD_COUNTER")
    if counter:
        with open(counter, "a") as f:  # only ever written while the engine lock is held
            f.write(f"{os.getpid()}\n")
    time.sleep(float(os.environ.get("GSRENDER_TEST_BUILD_SECONDS", "0")))
    return ("ENGINE:" + request.key).encode() * 64


def make_request(model: Path, node: NodeIdentity = NODE_A, precision: str = "fp16") -> BuildRequest:
    """A weakly typed request for `model` with the default profile (no ONNX parsing)."""
    return BuildRequest(
        onnx_path=model,
        model_sha256=file_sha256(model),
        precision=precision,
        strongly_typed=False,
        profile=select_profile(DEFAULT_MAX_TILE, HALO, STRIDE, DEFAULT_MAX_BATCH),
        node=node,
    )


def leftovers(folder: Path) -> list[str]:
    """Temporary files left in `folder` (there must be none after any build, failed or not)."""
    return [p.name for p in folder.iterdir() if ".tmp" in p.name]


def cpu_execute(
    session: ort.InferenceSession, read_ahead: int = 2
) -> Callable[[Iterable[Chunk]], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """An `execute` that behaves like the GPU pipeline: it pulls chunks ahead of its results."""

    def execute(chunks: Iterable[Chunk]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        pending: list[Chunk] = []
        for chunk in chunks:
            pending.append(chunk)
            if len(pending) > read_ahead:
                yield run(pending.pop(0))
        while pending:
            yield run(pending.pop(0))

    def run(chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        p = np.clip(np.stack([c[0] for c in chunk]), 0, 1)
        s = np.clip(np.stack([c[1] for c in chunk]), 0, 1)
        a, b = session.run(["alpha", "bg"], {"plate": p, "screen": s})
        return a, b

    return execute


def make_inputs(n: int, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A batch of random plates with a bright band (so alpha varies) and a flat green screen."""
    rng = np.random.default_rng(seed)
    plate = rng.random((n, 3, h, w), np.float32)
    plate[:, :, h // 3 : h // 2, :] = 0.9  # a bright band so alpha varies
    screen = np.broadcast_to(np.array([0.2, 0.7, 0.25], np.float32)[None, :, None, None], plate.shape).copy()
    return plate, screen


def make_backend(model: Path, cache: Path, **kw: object) -> TensorRTBackend:
    """A TensorRTBackend on `model` with its engine cache in `cache` (the loader builds when needed)."""
    return TensorRTBackend(model, cache_dir=cache, **kw)
