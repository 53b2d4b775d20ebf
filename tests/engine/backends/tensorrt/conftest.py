"""Fixtures of the TensorRT tests: a model with lively outputs, its CPU session, the GPU doubles."""

from __future__ import annotations

import gc
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from tests.engine.backends.tensorrt.gpu_doubles import AutoPrimaryFinder, FakeCuda, FakeTensorRT


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A model file for the cache tests: hashed, never parsed (the fake builder ignores it)."""
    p = tmp_path / "m.onnx"
    p.write_bytes(b"not really onnx, the fake builder does not parse it")
    return p


@pytest.fixture
def shipped_halo(model_path: Path) -> int:
    """The bundled model's halo (its stressed copy's too), from its metadata: the tile margins the
    engine profiles follow and the context sub-tiles need to key exactly."""
    from gsrender.engine.backends.tensorrt.request import read_onnx_metadata

    return int(read_onnx_metadata(model_path)["gsrender.halo"])


@pytest.fixture(scope="module")
def stressed_model(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """The bundled model with conv weights x3: the placeholder's outputs are near constant,
    which would make every comparison below pass trivially."""
    m = onnx.load(str(model_path))
    for t in m.graph.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype == np.float32 and a.ndim == 4:
            t.CopyFrom(numpy_helper.from_array(a * np.float32(3.0), t.name))
    path = tmp_path_factory.mktemp("trt") / "stressed.onnx"
    onnx.save(m, str(path))
    return path


@pytest.fixture(scope="module")
def session(stressed_model: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(stressed_model), so, providers=["CPUExecutionProvider"])


# gpu_doubles.py stands in for pycuda and tensorrt and enforces their rules (per-thread
# context stacks, context-dependent objects, deferred streams, the bindings' exceptions,
# profile per context); the fixture fails a test that broke one of them.


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch):
    """Install the pycuda and tensorrt doubles; `.use(version)` switches TensorRT versions."""
    from gsrender.engine.backends import cuda_context
    from gsrender.engine.backends.tensorrt import builder

    gpu = FakeCuda()
    for name, mod in gpu.module.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, "pycuda.autoprimaryctx", raising=False)
    monkeypatch.setattr(sys, "meta_path", [AutoPrimaryFinder(gpu), *sys.meta_path])
    monkeypatch.setattr(builder, "_TRT_LOGGER", None)
    monkeypatch.setattr(cuda_context, "_contexts", {})
    state = types.SimpleNamespace(gpu=gpu, trt=None)

    def use(version: str = "10.7.0.23") -> FakeTensorRT:
        state.trt = FakeTensorRT(version, gpu)
        monkeypatch.setitem(sys.modules, "tensorrt", state.trt.module)
        return state.trt

    state.use = use
    use()
    yield state
    gpu.exit_hooks()
    gc.collect()
    assert not gpu.aborts, f"pycuda would abort the process: {gpu.aborts}"
    assert not gpu.cleanup_failures, f"CUDA objects freed without their context: {gpu.cleanup_failures}"
    assert not gpu.races, gpu.races
    assert gpu.spins == 0, f"{gpu.spins} waits spun a CPU core (events not blocking-sync)"
    assert not gpu.stack(), "a context was left pushed on the test's thread"
    assert not gpu.live, f"CUDA objects leaked: {sorted(set(gpu.live.values()))}"
