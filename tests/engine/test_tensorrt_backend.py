"""TensorRT backend.

The shape logic (chunking, exact sub-tiling of inputs larger than the engine profile,
in-order assembly under read-ahead) runs everywhere, with ONNX Runtime on the CPU
standing in for the engine. The GPU tests need tensorrt + pycuda + a CUDA GPU and skip
with the reason otherwise; where they run they compare with the ONNX Runtime CPU
backend on reference frames: FP16 alpha max |diff| <= 2/255 and mean <= 1e-3.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from gsrender.engine.backends.onnx_runtime import OnnxRuntimeBackend
from gsrender.engine.backends.tensorrt_backend import (
    FP16_ALPHA_MAX_ABS,
    FP16_ALPHA_MEAN_ABS,
    FP32_ALPHA_MAX_ABS,
    Chunk,
    chunk_size,
    make_job,
    run_jobs,
    subtile_core,
)
from gsrender.engine.errors import BackendError
from gsrender.engine.keyer import key_frame
from tests.conftest import make_plate

HALO, STRIDE = 88, 8


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


def cpu_execute(session: ort.InferenceSession, read_ahead: int = 2):
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


def _inputs(n: int, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    plate = rng.random((n, 3, h, w), np.float32)
    plate[:, :, h // 3 : h // 2, :] = 0.9  # a bright band so alpha varies
    screen = np.broadcast_to(np.array([0.2, 0.7, 0.25], np.float32)[None, :, None, None], plate.shape).copy()
    return plate, screen


# --------------------------------------------------------------------------- shape logic, no GPU


def test_chunk_size() -> None:
    assert chunk_size(4, 1200, 1200, 4) == 1  # big tiles: one per call, calls overlap
    assert chunk_size(8, 256, 256, 4) == 4  # small tiles: batched up to max_batch
    assert chunk_size(3, 64, 64, 16) == 3
    assert chunk_size(1, 4000, 4000, 1) == 1


def test_subtile_core_fits_the_profile() -> None:
    assert subtile_core((1200, 1200), HALO, STRIDE) == 1024
    assert subtile_core((2560, 2560), HALO, STRIDE) == 2384
    with pytest.raises(BackendError, match="--max-tile"):
        subtile_core((160, 160), HALO, STRIDE)


def test_in_profile_batch_is_chunked_and_assembled(session) -> None:
    plate, screen = _inputs(5, 64, 96)
    job = make_job(plate, screen, max_batch=2, min_hw=(8, 8), max_hw=(256, 256), halo=HALO, stride=STRIDE)
    assert [len(c) for c in job.chunks] == [2, 2, 1] and not job.passthrough
    ((a, b),) = list(run_jobs([job], cpu_execute(session)))
    want_a, want_b = session.run(["alpha", "bg"], {"plate": plate, "screen": screen})
    np.testing.assert_allclose(a, want_a, atol=1e-6)
    np.testing.assert_allclose(b, want_b, atol=1e-6)
    single = make_job(
        plate[:1], screen[:1], max_batch=2, min_hw=(8, 8), max_hw=(256, 256), halo=HALO, stride=STRIDE
    )
    assert single.passthrough and len(single.chunks) == 1


def test_oversized_input_is_subtiled_exactly(session) -> None:
    """An input larger than the profile equals one call on the whole input (tile invariance)."""
    plate, screen = _inputs(2, 240, 320)
    job = make_job(plate, screen, max_batch=2, min_hw=(8, 8), max_hw=(256, 256), halo=HALO, stride=STRIDE)
    assert all(c[0][0].shape[1] <= 256 and c[0][0].shape[2] <= 256 for c in job.chunks)
    assert sum(len(c) for c in job.chunks) == 2 * 12  # 80-pixel cores: 3 x 4 per item
    ((a, b),) = list(run_jobs([job], cpu_execute(session)))
    want_a, want_b = session.run(["alpha", "bg"], {"plate": plate, "screen": screen})
    assert float(want_a.std()) > 1e-3, "reference alpha is flat: the test would prove nothing"
    assert np.abs(a - want_a).max() < 1e-4 and np.abs(b - want_b).max() < 1e-4


def test_results_stay_in_order_under_read_ahead(session) -> None:
    batches = [
        _inputs(n, h, w, seed=i)
        for i, (n, h, w) in enumerate([(1, 64, 64), (3, 32, 48), (1, 240, 320), (2, 64, 64)])
    ]
    jobs = [
        make_job(p, s, max_batch=1, min_hw=(8, 8), max_hw=(256, 256), halo=HALO, stride=STRIDE)
        for p, s in batches
    ]
    results = [(a.copy(), b.copy()) for a, b in run_jobs(jobs, cpu_execute(session, read_ahead=3))]
    assert len(results) == len(batches)
    for (p, s), (a, _) in zip(batches, results, strict=True):
        want, _ = session.run(["alpha", "bg"], {"plate": p, "screen": s})
        assert a.shape == want.shape and np.abs(a - want).max() < 1e-4


def test_bad_shapes_are_refused() -> None:
    p, s = _inputs(1, 60, 64)  # not a multiple of the stride
    with pytest.raises(BackendError, match="stride"):
        make_job(p, s, max_batch=1, min_hw=(8, 8), max_hw=(256, 256), halo=HALO, stride=STRIDE)
    with pytest.raises(BackendError, match="one shape"):
        make_job(p, s[:, :, :32], max_batch=1, min_hw=(8, 8), max_hw=(256, 256), halo=HALO, stride=STRIDE)


def test_backend_without_the_gpu_stack_says_why(model_path: Path) -> None:
    if all(importlib.util.find_spec(m) for m in ("tensorrt", "pycuda")):
        pytest.skip("TensorRT and pycuda are installed here")
    from gsrender.engine.backends import create_backend

    with pytest.raises(BackendError, match=r"TensorRT is not installed|pycuda unavailable"):
        create_backend("tensorrt", model=model_path)


# --------------------------------------------------------------------------- on a GPU


def _gpu_stack_reason() -> str | None:
    for mod in ("tensorrt", "pycuda"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install 'gsrender[tensorrt]')"
    try:
        import pycuda.driver as cuda

        cuda.init()
        if cuda.Device.count() == 0:
            return "no CUDA GPU"
    except Exception as exc:
        return f"CUDA unusable: {str(exc).splitlines()[0] if str(exc) else exc!r}"
    return None


GPU_REASON = _gpu_stack_reason()
gpu = pytest.mark.skipif(GPU_REASON is not None, reason=f"needs TensorRT + pycuda + a GPU: {GPU_REASON}")


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, model_path: Path):
    from gsrender.engine.backends.tensorrt_backend import TensorRTBackend

    cache = tmp_path_factory.mktemp("engines")
    made = {p: TensorRTBackend(model_path, precision=p, cache_dir=cache) for p in ("fp16", "fp32")}
    yield made, cache
    for b in made.values():
        b.close()


REFERENCE_FRAMES = [(1080, 1920, 0), (2160, 3840, 1), (1556, 2048, 2)]


@gpu
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_matches_onnxruntime_cpu_on_reference_frames(engines, model_path: Path, precision: str) -> None:
    made, _ = engines
    cpu = OnnxRuntimeBackend(model_path, threads=0)
    for h, w, seed in REFERENCE_FRAMES:
        plate = make_plate(h, w, seed=seed, hdr=True)
        want = key_frame(plate, cpu)
        got = key_frame(plate, made[precision])
        diff = np.abs(got.alpha - want.alpha)
        assert np.isfinite(got.alpha).all() and np.isfinite(got.premult).all()
        if precision == "fp16":
            assert diff.max() <= FP16_ALPHA_MAX_ABS and diff.mean() <= FP16_ALPHA_MEAN_ABS, (h, w, diff.max())
        else:
            assert diff.max() <= FP32_ALPHA_MAX_ABS, (h, w, diff.max())


@gpu
def test_hdr_input_gives_no_nan(engines) -> None:
    made, _ = engines
    plate = make_plate(544, 960, seed=3, hdr=True)
    plate[100:200, 100:300] = 5e4  # far above 1, e.g. a specular highlight or a lamp
    plate[300:310, :] = 65504.0  # the largest half-float value an EXR can hold
    for backend in made.values():
        k = key_frame(plate, backend)
        assert np.isfinite(k.alpha).all() and np.isfinite(k.premult).all()
        assert k.alpha.min() >= 0 and k.alpha.max() <= 1
    raw = np.full((1, 3, 256, 256), 1e6, np.float32)  # out-of-range encoding sent straight to infer
    a, b = made["fp16"].infer(raw, raw, np.zeros(3, np.float32))
    assert np.isfinite(a).all() and np.isfinite(b).all()


@gpu
def test_pipelined_batches_equal_single_calls(engines) -> None:
    backend = engines[0]["fp16"]
    batches = [_inputs(1, 1200, 1200, seed=i) for i in range(3)] + [_inputs(2, 200, 856, seed=9)]
    single = [backend.infer(p, s) for p, s in batches]
    piped = [(a.copy(), b.copy()) for a, b in backend.infer_batches(batches)]
    for (a1, b1), (a2, b2) in zip(single, piped, strict=True):  # the two contexts may pick other tactics
        np.testing.assert_allclose(a1, a2, atol=FP16_ALPHA_MAX_ABS)
        np.testing.assert_allclose(b1, b2, atol=FP16_ALPHA_MAX_ABS)


@gpu
def test_oversized_input_on_the_gpu(engines, model_path: Path) -> None:
    backend = engines[0]["fp32"]
    p, s = _inputs(1, 2176, 3840)  # a whole 4K frame: larger than the profile, sub-tiled in the backend
    a, _ = backend.infer(p, s)
    want, _ = OnnxRuntimeBackend(model_path).infer(p, s, np.zeros(3, np.float32))
    assert np.abs(a - want).max() <= FP32_ALPHA_MAX_ABS


@gpu
def test_engine_cache_is_reused_and_foreign_engines_refused(engines, model_path: Path) -> None:
    from gsrender.engine.backends.tensorrt_backend import TensorRTBackend
    from gsrender.export import engine_build as eb

    made, cache = engines
    before = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.engine")}
    again = TensorRTBackend(model_path, precision="fp16", cache_dir=cache, allow_build=False)
    again.close()
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.engine")} == before
    engine = made["fp16"].engine_path
    meta = eb.read_sidecar(engine)
    meta["gpu_name"] = "Some Other GPU"
    eb.sidecar_path(engine).write_text(__import__("json").dumps(meta))
    with pytest.raises(BackendError, match="another node"):
        TensorRTBackend(model_path, precision="fp16", cache_dir=cache, engine_path=engine)


# --------------------------------------------------------------------------- the GPU glue, against fakes
#
# Stand-ins for tensorrt and pycuda that follow their documented semantics closely enough
# to catch glue bugs here: streams are deferred queues (a copy or an execution happens only
# when an event on its stream is synchronized), async copies read/write host memory when
# they run (as DMA does), execute_async_v3 captures shapes/addresses at enqueue and runs
# the ONNX model with ONNX Runtime. The builder records what it was asked to do.

import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import types  # noqa: E402
from collections import deque  # noqa: E402


class _Stream:
    by_handle: dict[int, _Stream] = {}

    def __init__(self, flags: int = 0) -> None:
        self.ops: deque = deque()
        self.handle = id(self)
        _Stream.by_handle[self.handle] = self

    def enqueue(self, fn) -> None:
        self.ops.append(fn)

    def run_until(self, marker=None) -> None:
        while self.ops:
            op = self.ops.popleft()
            op()
            if op is marker:
                return

    def synchronize(self) -> None:
        self.run_until(None)

    def wait_for_event(self, ev: _Event) -> None:
        self.enqueue(ev.synchronize)


class _Event:
    def __init__(self, flags: int = 0) -> None:
        self.done, self.stream, self.marker = True, None, None

    def record(self, stream: _Stream) -> None:
        def mark() -> None:
            self.done = True

        self.done, self.stream, self.marker = False, stream, mark
        stream.enqueue(mark)

    def synchronize(self) -> None:
        if not self.done:
            self.stream.run_until(self.marker)

    def time_since(self, other: _Event) -> float:
        return 0.25


class _DevMem:
    mem: dict[int, np.ndarray] = {}
    _ids = itertools.count(4096, 4096)

    def __init__(self, nbytes: int) -> None:
        self.addr = next(_DevMem._ids)
        _DevMem.mem[self.addr] = np.full(nbytes, 0xFF, np.uint8)  # garbage until written

    def __int__(self) -> int:
        return self.addr

    def free(self) -> None:
        del _DevMem.mem[self.addr]


def _htod(dst: _DevMem, src: np.ndarray, stream: _Stream) -> None:
    stream.enqueue(
        lambda: _DevMem.mem[int(dst)].__setitem__(slice(0, src.nbytes), src.reshape(-1).view(np.uint8))
    )


def _dtoh(dst: np.ndarray, src: _DevMem, stream: _Stream) -> None:
    stream.enqueue(
        lambda: dst.reshape(-1).view(np.uint8).__setitem__(slice(None), _DevMem.mem[int(src)][: dst.nbytes])
    )


class _PrimaryContext:
    pushes = 0

    def push(self) -> None:
        _PrimaryContext.pushes += 1


class _Device:
    def name(self) -> str:
        return "NVIDIA Fake GPU"

    def compute_capability(self) -> tuple[int, int]:
        return (9, 0)


def fake_pycuda() -> dict[str, types.ModuleType]:
    drv = types.ModuleType("pycuda.driver")
    drv.Stream, drv.Event = _Stream, _Event
    drv.pagelocked_empty = lambda n, dtype: np.full(n, np.nan, dtype)
    drv.mem_alloc = _DevMem
    drv.memset_d8 = lambda d, v, n: _DevMem.mem[int(d)][:n].fill(v)
    drv.memcpy_htod_async, drv.memcpy_dtoh_async = _htod, _dtoh
    auto = types.ModuleType("pycuda.autoprimaryctx")
    auto.device, auto.context = _Device(), _PrimaryContext()
    pkg = types.ModuleType("pycuda")
    pkg.driver, pkg.autoprimaryctx = drv, auto
    return {"pycuda": pkg, "pycuda.driver": drv, "pycuda.autoprimaryctx": auto}


class _Tensor:
    def __init__(self, name: str) -> None:
        self.name, self.dtype = name, "float32"


class _Layer:
    def __init__(self, kind: str, ins: list[str], outs: list[str]) -> None:
        self.type = kind
        self._in, self._out = [_Tensor(n) for n in ins], [_Tensor(n) for n in outs]
        self.num_inputs, self.num_outputs = len(ins), len(outs)
        self.precision = None
        self.output_types: dict[int, str] = {}

    def get_input(self, i: int) -> _Tensor:
        return self._in[i]

    def get_output(self, i: int) -> _Tensor:
        return self._out[i]

    def set_output_type(self, i: int, dt: str) -> None:
        self.output_types[i] = dt


class _Network:
    def __init__(self, flags: int) -> None:
        self.flags, self.layers, self.inputs, self.onnx_path = flags, [], [], None

    num_layers = property(lambda self: len(self.layers))
    num_inputs = property(lambda self: len(self.inputs))

    def get_layer(self, i: int) -> _Layer:
        return self.layers[i]

    def get_input(self, i: int) -> _Tensor:
        return self.inputs[i]


class _Parser:
    def __init__(self, network: _Network, logger) -> None:
        self.network, self.num_errors = network, 0

    def parse_from_file(self, path: str) -> bool:
        g = onnx.load(path).graph
        kinds = {"Conv": "CONVOLUTION", "Constant": "CONSTANT", "Shape": "SHAPE"}
        self.network.layers = [
            _Layer(kinds.get(n.op_type, n.op_type), list(n.input), list(n.output)) for n in g.node
        ]
        self.network.inputs = [_Tensor(i.name) for i in g.input]
        self.network.onnx_path = path
        return True


class _Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name: str, lo, opt, hi) -> None:
        self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))


class _TimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return self.data + b"+timing"

    def combine(self, other: _TimingCache, ignore: bool) -> bool:
        self.data += other.data
        return True


class _Config:
    def __init__(self, trt) -> None:
        self.flags = {"TF32"} if hasattr(trt.BuilderFlag, "TF32") else set()
        self.profiles: list[_Profile] = []
        self.cache = None

    def set_flag(self, f: str) -> None:
        self.flags.add(f)

    def clear_flag(self, f: str) -> None:
        self.flags.discard(f)

    def set_memory_pool_limit(self, pool, size: int) -> None:
        self.workspace = size

    def add_optimization_profile(self, p: _Profile) -> int:
        self.profiles.append(p)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> _TimingCache:
        return _TimingCache(bytes(data))

    def set_timing_cache(self, cache: _TimingCache, ignore: bool) -> bool:
        self.cache = cache
        return True

    def get_timing_cache(self) -> _TimingCache:
        return self.cache


BUILDS: list[dict] = []


class _Builder:
    def __init__(self, logger) -> None:
        pass

    def create_network(self, flags: int = 0) -> _Network:
        return _Network(flags)

    def create_builder_config(self) -> _Config:
        return _Config(sys.modules["tensorrt"])

    def create_optimization_profile(self) -> _Profile:
        return _Profile()

    def build_serialized_network(self, network: _Network, config: _Config) -> bytes:
        rec = {
            "onnx": network.onnx_path,
            "network_flags": network.flags,
            "flags": sorted(config.flags),
            "pinned": [lay.type for lay in network.layers if lay.precision == "float32"],
            "pinned_outputs": all(
                lay.output_types == {0: "float32"} for lay in network.layers if lay.precision == "float32"
            ),
            "profiles": [p.shapes["plate"] for p in config.profiles],
            "profile_inputs": [sorted(p.shapes) for p in config.profiles],
        }
        BUILDS.append(rec)
        return b"FAKEENGINE" + json.dumps(rec).encode()


class _ExecContext:
    def __init__(self, engine: _Engine) -> None:
        self.engine, self.shapes, self.addrs, self.profile = engine, {}, {}, 0

    def set_optimization_profile_async(self, i: int, handle: int) -> bool:
        self.profile = i
        return 0 <= i < self.engine.num_optimization_profiles

    def set_input_shape(self, name: str, shape) -> bool:
        lo, _, hi = self.engine.get_tensor_profile_shape(name, self.profile)
        self.shapes[name] = tuple(shape)
        return all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True))

    def get_tensor_shape(self, name: str) -> tuple:
        n, _, h, w = self.shapes["plate"]
        return {"alpha": (n, 1, h, w), "bg": (n, 3, h, w)}.get(name, self.shapes.get(name))

    def set_tensor_address(self, name: str, addr: int) -> bool:
        self.addrs[name] = addr
        return True

    def execute_async_v3(self, handle: int) -> bool:
        shapes = {k: self.get_tensor_shape(k) for k in ("plate", "screen", "alpha", "bg")}
        addrs = dict(self.addrs)  # captured at enqueue, as TensorRT does
        eng = self.engine

        def run() -> None:
            def dev(name: str) -> np.ndarray:
                count = int(np.prod(shapes[name]))
                return _DevMem.mem[addrs[name]][: count * 4].view(np.float32).reshape(shapes[name])

            a, b = eng.session.run(["alpha", "bg"], {"plate": dev("plate"), "screen": dev("screen")})
            if eng.poison:
                a = a * np.nan
            dev("alpha")[...] = a
            dev("bg")[...] = b

        _Stream.by_handle[handle].enqueue(run)
        return True


class _Engine:
    def __init__(self, rec: dict) -> None:
        self.rec = rec
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        self.session = ort.InferenceSession(rec["onnx"], so, providers=["CPUExecutionProvider"])
        self.num_io_tensors = 4
        self.num_optimization_profiles = len(rec["profiles"])
        self.poison = False

    def get_tensor_name(self, i: int) -> str:
        return ("plate", "screen", "alpha", "bg")[i]

    def get_tensor_mode(self, name: str) -> str:
        return "INPUT" if name in ("plate", "screen") else "OUTPUT"

    def get_tensor_dtype(self, name: str) -> str:
        return "float32"

    def get_tensor_profile_shape(self, name: str, i: int) -> list:
        return [list(s) for s in self.rec["profiles"][i]]

    def create_execution_context(self) -> _ExecContext:
        return _ExecContext(self)


class _Runtime:
    def __init__(self, logger) -> None:
        pass

    def deserialize_cuda_engine(self, data: bytes) -> _Engine | None:
        if not data.startswith(b"FAKEENGINE"):
            return None  # what TensorRT does with a foreign or corrupt plan
        return _Engine(json.loads(data[len(b"FAKEENGINE") :]))


def fake_tensorrt(version: str) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.Logger = type("Logger", (), {"WARNING": 2, "INFO": 3, "__init__": lambda self, s=2: None})
    trt.Builder, trt.OnnxParser, trt.Runtime = _Builder, _Parser, _Runtime
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=0)
    flags = ["TF32"] if version.startswith("11") else ["FP16", "PREFER_PRECISION_CONSTRAINTS", "TF32"]
    trt.BuilderFlag = types.SimpleNamespace(**{f: f for f in flags})  # 11 removed the weak typing flags
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.LayerType = types.SimpleNamespace(CONVOLUTION="CONVOLUTION", CONSTANT="CONSTANT", SHAPE="SHAPE")
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.float32, trt.float16 = "float32", "float16"
    trt.nptype = lambda dt: {"float32": np.float32, "float16": np.float16}[dt]
    return trt


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch):
    """Install fake tensorrt/pycuda; returns a function switching the TensorRT version."""
    from gsrender.export import engine_build as eb

    for name, mod in fake_pycuda().items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(eb, "_TRT_LOGGER", None)
    BUILDS.clear()

    def use(version: str = "10.7.0.23") -> None:
        monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(version))

    use()
    yield use
    assert not _DevMem.mem, "device memory leaked"


def _backend(model: Path, cache: Path, **kw):
    from gsrender.engine.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(model, cache_dir=cache, **kw)


def test_fake_gpu_trt10_fp16_build_and_infer(fake_gpu, stressed_model: Path, session, tmp_path: Path) -> None:
    b = _backend(stressed_model, tmp_path, precision="fp16")
    try:
        (rec,) = BUILDS
        assert rec["network_flags"] == 0 and {"FP16", "PREFER_PRECISION_CONSTRAINTS", "TF32"} <= set(
            rec["flags"]
        )
        assert sorted(rec["pinned"]) == sorted(
            ["Slice", "Add", "Clip", "Slice", "Tanh", "Mul", "Add", "Clip"]
        )
        assert rec["pinned_outputs"]
        assert rec["profiles"] == [((1, 3, 8, 8), (1, 3, 1712, 1712), (1, 3, 2560, 2560))] * 2
        assert rec["profile_inputs"] == [["plate", "screen"]] * 2
        assert b.name == "tensorrt-fp16" and b.max_batch == 1 and len(b._slots) == 2
        assert "NVIDIA Fake GPU" in b.describe()
        plate, screen = _inputs(3, 64, 96)
        a, bg = b.infer(plate, screen, np.zeros(3, np.float32))
        want_a, want_bg = session.run(["alpha", "bg"], {"plate": plate, "screen": screen})
        np.testing.assert_allclose(a, want_a, atol=1e-6)
        np.testing.assert_allclose(bg, want_bg, atol=1e-6)
        assert b.stats["batches"] == 3 and b.stats["tiles"] == 3  # max batch 1: three calls, two streams
        timing = [p.name for p in tmp_path.glob("timing-*.cache")]
        assert timing == ["timing-nvidia-fake-gpu-sm90-trt10.7.0.23.cache"]
    finally:
        b.close()
    again = _backend(stressed_model, tmp_path, precision="fp16", allow_build=False)
    again.close()
    assert len(BUILDS) == 1  # loaded from the cache


def test_fake_gpu_pipeline_and_oversized(fake_gpu, stressed_model: Path, session, tmp_path: Path) -> None:
    b = _backend(stressed_model, tmp_path, precision="fp32", max_tile=64, max_batch=2)
    try:
        assert "TF32" not in BUILDS[0]["flags"] and "FP16" not in BUILDS[0]["flags"]
        assert b.profile_max_hw == (2560, 2560) and b.max_batch == 2
        batches = [_inputs(1, 64, 64, i) for i in range(4)] + [_inputs(2, 32, 48, 7)]
        want = [session.run(["alpha", "bg"], {"plate": p, "screen": s}) for p, s in batches]
        got = [(a.copy(), c.copy()) for a, c in b.infer_batches(batches)]
        for (wa, wb), (ga, gb) in zip(want, got, strict=True):
            np.testing.assert_allclose(ga, wa, atol=1e-6)
            np.testing.assert_allclose(gb, wb, atol=1e-6)
        b.profile_max_hw = (256, 256)  # as if the engine were smaller than this input
        p, s = _inputs(1, 240, 320)
        a, _ = b.infer(p, s)
        wa, _ = session.run(["alpha", "bg"], {"plate": p, "screen": s})
        assert np.abs(a - wa).max() < 1e-4
        calls = b.engine_calls(2, 240, 320)
        assert sum(n for n, _, _ in calls) == 24 and all(h <= 256 and w <= 256 for _, h, w in calls)
        assert b.time_device([(1, 64, 64), (2, 32, 48)], repeats=2) > 0
        it = b.infer_batches(batches)
        next(it)
        with pytest.raises(BackendError, match="re-entered"):
            b.infer(p, s)
        it.close()  # abandoning the iterator releases the backend
        b.infer(p, s)
    finally:
        b.close()


def test_fake_gpu_trt11_builds_strongly_typed_from_fp16_onnx(
    fake_gpu, stressed_model: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch", reason="the FP16 exporter needs the [train] extra")
    fake_gpu("11.0.0.9")
    b = _backend(stressed_model, tmp_path, precision="fp16")
    try:
        (rec,) = BUILDS
        assert rec["onnx"].endswith(".fp16.onnx") and rec["network_flags"] == 0
        assert "FP16" not in rec["flags"] and rec["pinned"] == []  # precision comes from the ONNX types
        assert "fp16-typed" in b.engine_path.name
        plate, screen = _inputs(1, 64, 64)
        a, _ = b.infer(plate, screen)
        assert np.isfinite(a).all()
    finally:
        b.close()


def test_fake_gpu_trt10_strong_typing_sets_the_network_flag(
    fake_gpu, stressed_model: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch", reason="the FP16 exporter needs the [train] extra")
    from gsrender.export import engine_build as eb

    node = eb.detect_node()
    req = eb.prepare_request(stressed_model, precision="fp16", node=node, cache_dir=tmp_path, typing="strong")
    eb.build_with_tensorrt(req)
    assert BUILDS[-1]["network_flags"] == 1 << 0 and "FP16" not in BUILDS[-1]["flags"]


def test_fake_gpu_unloadable_cached_engine_is_rebuilt(fake_gpu, stressed_model: Path, tmp_path: Path) -> None:
    from gsrender.export import engine_build as eb

    req = eb.prepare_request(stressed_model, precision="fp16", node=eb.detect_node(), cache_dir=tmp_path)
    eb.ensure_engine(req, tmp_path, lambda r: b"plan from another TensorRT build")  # valid sidecar, bad plan
    b = _backend(stressed_model, tmp_path, precision="fp16")
    b.close()
    assert len(BUILDS) == 1
    bad = eb.ensure_engine(req, tmp_path, lambda r: b"garbage", force=True)
    with pytest.raises(BackendError, match="cannot load this engine"):
        _backend(stressed_model, tmp_path, precision="fp16", engine_path=bad.path)


def test_fake_gpu_nan_output_is_an_error(fake_gpu, stressed_model: Path, tmp_path: Path) -> None:
    b = _backend(stressed_model, tmp_path, precision="fp16")
    try:
        b._engine.poison = True
        with pytest.raises(BackendError, match="NaN"):
            b.infer(*_inputs(1, 64, 64))
    finally:
        b.close()


def test_fake_gpu_other_thread_gets_the_context(fake_gpu, stressed_model: Path, tmp_path: Path) -> None:
    b = _backend(stressed_model, tmp_path, precision="fp16")
    try:
        before = _PrimaryContext.pushes
        out: list = []
        t = threading.Thread(target=lambda: out.append(b.infer(*_inputs(1, 64, 64))))
        t.start()
        t.join()
        assert out and _PrimaryContext.pushes == before + 1
        b.infer(*_inputs(1, 64, 64))  # the constructing thread already has it
        assert _PrimaryContext.pushes == before + 1
    finally:
        b.close()


def test_fake_gpu_key_frame_matches_cpu(fake_gpu, stressed_model: Path, tmp_path: Path) -> None:
    """The whole keyer path (prepare, tiles, assemble, unmix) through the TensorRT glue."""
    b = _backend(stressed_model, tmp_path, precision="fp32")
    try:
        plate = make_plate(96, 136, seed=1, hdr=True)
        want = key_frame(plate, OnnxRuntimeBackend(stressed_model, threads=1), tile=64)
        got = key_frame(plate, b, tile=64)
        assert np.abs(got.alpha - want.alpha).max() < 1e-5
    finally:
        b.close()
