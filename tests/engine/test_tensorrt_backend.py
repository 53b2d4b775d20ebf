"""TensorRT backend.

The shape logic (chunking, exact sub-tiling of inputs larger than the engine profile,
in-order assembly under read-ahead) runs everywhere, with ONNX Runtime on the CPU
standing in for the engine. The GPU tests need tensorrt + pycuda + a CUDA GPU and skip
with the reason otherwise; where they run they compare with the ONNX Runtime CPU
backend on reference frames: FP16 alpha max |diff| <= 2/255 and mean <= 1e-3.
The glue (contexts across threads, errors, streams, events, pinned buffers) is tested
against tests/engine/gpu_doubles.py, which enforces pycuda's and TensorRT's rules; so
far it has run only against those doubles, never on a real GPU.
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


# --------------------------------------------------------------------------- the GPU glue, against doubles
#
# tests/engine/gpu_doubles.py stands in for pycuda and tensorrt and enforces their rules
# (per-thread context stacks, context-dependent objects, deferred streams, the bindings'
# exceptions, profile per context); the fixture fails a test that broke one of them.

import gc  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import types  # noqa: E402

from tests.engine.gpu_doubles import (  # noqa: E402
    AutoPrimaryFinder,
    CudaMemoryError,
    FakeCuda,
    FakeTensorRT,
    LogicError,
)


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch):
    """Install the pycuda and tensorrt doubles; `.use(version)` switches TensorRT versions."""
    from gsrender.engine.backends import cuda_context
    from gsrender.export import engine_build as eb

    gpu = FakeCuda()
    for name, mod in gpu.module.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, "pycuda.autoprimaryctx", raising=False)
    monkeypatch.setattr(sys, "meta_path", [AutoPrimaryFinder(gpu), *sys.meta_path])
    monkeypatch.setattr(eb, "_TRT_LOGGER", None)
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


def _backend(model: Path, cache: Path, **kw):
    from gsrender.engine.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(model, cache_dir=cache, **kw)


def test_fake_gpu_trt10_fp16_build_and_infer(fake_gpu, stressed_model: Path, session, tmp_path: Path) -> None:
    b = _backend(stressed_model, tmp_path, precision="fp16")
    try:
        (rec,) = fake_gpu.trt.builds
        assert rec["network_flags"] == 0
        assert {"FP16", "OBEY_PRECISION_CONSTRAINTS", "TF32"} <= set(rec["flags"])
        assert "PREFER_PRECISION_CONSTRAINTS" not in rec["flags"]  # PREFER may run the head in FP16
        # the input arithmetic before the first convolution and the head after the last, as
        # TensorRT's parser makes them (slices, element-wise, activations, reductions); the
        # constants they read are CONSTANT layers and are not touched, nor is any convolution
        pinned = set(rec["pinned"])
        assert {"SLICE", "ELEMENTWISE", "ACTIVATION"} <= pinned
        assert not pinned & {"CONVOLUTION", "CONSTANT", "RESIZE"}
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
    assert len(fake_gpu.trt.builds) == 1  # loaded from the cache


def test_fake_gpu_pipeline_and_oversized(fake_gpu, stressed_model: Path, session, tmp_path: Path) -> None:
    b = _backend(stressed_model, tmp_path, precision="fp32", max_tile=64, max_batch=2)
    try:
        flags = fake_gpu.trt.builds[0]["flags"]
        assert "TF32" not in flags and "FP16" not in flags
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
        with pytest.raises(BackendError, match="being iterated"):
            b.close()  # instead of waiting forever for its own lock
        it.close()  # abandoning the iterator releases the backend
        b.infer(p, s)
    finally:
        b.close()
    with pytest.raises(BackendError, match="closed"):
        b.infer(p, s)


def test_fake_gpu_trt11_builds_strongly_typed_from_fp16_onnx(
    fake_gpu, stressed_model: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch", reason="the FP16 exporter needs the [train] extra")
    fake_gpu.use("11.0.0.9")
    b = _backend(stressed_model, tmp_path, precision="fp16")
    try:
        (rec,) = fake_gpu.trt.builds
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
    """TensorRT 10's STRONGLY_TYPED is enum value 1 (EXPLICIT_BATCH is 0): flag bit 1 << 1."""
    pytest.importorskip("torch", reason="the FP16 exporter needs the [train] extra")
    from gsrender.export import engine_build as eb

    node = eb.detect_node()
    req = eb.prepare_request(stressed_model, precision="fp16", node=node, cache_dir=tmp_path, typing="strong")
    assert eb.build_with_tensorrt(req) is not None, fake_gpu.trt.build_errors
    assert (
        fake_gpu.trt.builds[-1]["network_flags"] == 1 << 1 and "FP16" not in fake_gpu.trt.builds[-1]["flags"]
    )
    assert fake_gpu.trt.builds[-1]["pinned"] == []


def test_fake_gpu_unloadable_cached_engine_is_rebuilt(fake_gpu, stressed_model: Path, tmp_path: Path) -> None:
    from gsrender.export import engine_build as eb

    req = eb.prepare_request(stressed_model, precision="fp16", node=eb.detect_node(), cache_dir=tmp_path)
    eb.ensure_engine(req, tmp_path, lambda r: b"plan from another TensorRT build")  # valid sidecar, bad plan
    b = _backend(stressed_model, tmp_path, precision="fp16")
    b.close()
    assert len(fake_gpu.trt.builds) == 1
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


# ---------------------------------------------------------------- contexts across threads


def _in_thread(fn):
    """Run fn in a new thread that then exits (as the OFX worker's connection threads do)."""
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed to the test's thread
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


def test_fake_gpu_backends_made_and_used_in_threads_that_exit(
    fake_gpu, stressed_model: Path, session, tmp_path: Path
) -> None:
    """Two backends, each made in its own short-lived thread, used from other threads and
    closed from a third: nothing stays pushed when a thread exits (pycuda would abort),
    and every CUDA object is freed with its context current (the fixture checks both)."""
    first = _in_thread(lambda: _backend(stressed_model, tmp_path, precision="fp16"))
    second = _in_thread(lambda: _backend(stressed_model, tmp_path, precision="fp32"))
    assert len(fake_gpu.trt.builds) == 2 and not fake_gpu.gpu.aborts
    plate, screen = _inputs(2, 64, 96, seed=3)
    want_a, _ = session.run(["alpha", "bg"], {"plate": plate, "screen": screen})
    for backend in (first, second, first):
        a, _ = _in_thread(lambda backend=backend: backend.infer(plate, screen))
        np.testing.assert_allclose(a, want_a, atol=1e-6)
    a, _ = first.infer(plate, screen)  # and from the test's own thread
    np.testing.assert_allclose(a, want_a, atol=1e-6)
    piped = _in_thread(lambda: [x.copy() for x, _ in second.infer_batches([(plate, screen)] * 3)])
    assert len(piped) == 3 and all(np.abs(x - want_a).max() < 1e-6 for x in piped)
    _in_thread(first.close)
    _in_thread(second.close)
    assert not fake_gpu.gpu.aborts and fake_gpu.gpu.pushes > 0


def test_fake_gpu_ofx_worker_keys_in_connection_threads(
    fake_gpu, stressed_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OFX worker's warm keyer: the TensorRT backend is made in the first connection's
    thread, used by later ones, each thread exits after its frame, and it is closed from yet
    another thread on shutdown; the keys equal ONNX Runtime's."""
    from gsrender.export import engine_build as eb
    from gsrender.ofx_bridge.protocol import Settings
    from gsrender.ofx_bridge.worker import WarmKeyer

    monkeypatch.setattr(eb, "default_cache_dir", lambda: tmp_path)
    gpu_keyer, cpu_keyer = WarmKeyer(cache_frames=1), WarmKeyer(cache_frames=1)
    gpu = Settings(model=str(stressed_model), backend="tensorrt")
    cpu = Settings(model=str(stressed_model), backend="onnxruntime")
    for i in range(3):
        plate = make_plate(72, 104, seed=i)
        got, _, _ = _in_thread(
            lambda plate=plate, i=i: gpu_keyer.keyed(f"f{i}", (72, 104), lambda: plate, gpu)
        )
        want, _, _ = cpu_keyer.keyed(f"f{i}", (72, 104), lambda plate=plate: plate, cpu)
        assert np.abs(got.alpha - want.alpha).max() < 1e-5
    assert gpu_keyer.stats()["backends"][0].startswith("tensorrt-fp16")
    _in_thread(gpu_keyer.close)
    cpu_keyer.close()


def test_fake_gpu_iterator_abandoned_in_a_thread(fake_gpu, stressed_model: Path, tmp_path: Path) -> None:
    """A thread that stops reading infer_batches part way and exits leaves no context pushed
    and no copy queued into the buffers the next user fills."""
    b = _backend(stressed_model, tmp_path, precision="fp32")
    try:
        batches = [_inputs(1, 64, 64, seed=i) for i in range(4)]

        def read_one() -> None:
            it = b.infer_batches(batches)
            next(it)
            it.close()

        _in_thread(read_one)
        a, _ = b.infer(*batches[3])
        assert np.isfinite(a).all()
    finally:
        b.close()


# ---------------------------------------------------------------- failures


def test_fake_gpu_failed_execution_keeps_the_queued_copy_safe(
    fake_gpu, stressed_model: Path, session, tmp_path: Path
) -> None:
    """execute_async_v3 returning False after the input copies were queued: a BackendError,
    and the next submission waits for those copies before refilling the pinned input."""
    b = _backend(stressed_model, tmp_path, precision="fp32", streams=1)
    try:
        b._engine.fail_executions = 1
        p1, s1 = _inputs(1, 64, 64, seed=1)
        with pytest.raises(BackendError, match="execute_async_v3 failed"):
            b.infer(p1, s1)
        p2, s2 = _inputs(1, 64, 64, seed=2)
        a, _ = b.infer(p2, s2)
        want, _ = session.run(["alpha", "bg"], {"plate": p2, "screen": s2})
        np.testing.assert_allclose(a, want, atol=1e-6)
    finally:
        b.close()
    assert not fake_gpu.gpu.races  # the fixture checks again after teardown


@pytest.mark.parametrize(
    "where, exc",
    [
        ("mem_alloc", CudaMemoryError("cuMemAlloc failed: out of memory")),
        ("pagelocked_empty", CudaMemoryError("cuMemHostAlloc failed: out of memory")),
    ],
)
def test_fake_gpu_submission_errors_are_backend_errors(
    fake_gpu, stressed_model: Path, tmp_path: Path, where: str, exc: Exception
) -> None:
    """Growing the buffers for a larger tile runs out of memory: a BackendError (exit 5),
    not a pycuda traceback, and the backend still works for tiles that fit."""
    b = _backend(stressed_model, tmp_path, precision="fp32", streams=1)
    try:
        fake_gpu.gpu.fail[where] = exc
        with pytest.raises(BackendError, match="buffers failed: CudaMemoryError: .*out of memory"):
            b.infer(*_inputs(1, 2400, 2400))  # larger than the buffers made at construction
        a, _ = b.infer(*_inputs(1, 64, 64))
        assert np.isfinite(a).all()
    finally:
        b.close()


CONSTRUCTION_FAILURES = {
    "no GPU": ("gpu", "init", LogicError("cuInit failed: no CUDA-capable device is detected")),
    "stream": ("gpu", "Stream", LogicError("cuStreamCreate failed: out of memory")),
    "event": ("gpu", "Event", LogicError("cuEventCreate failed: out of memory")),
    "pinned memory": ("gpu", "pagelocked_empty", CudaMemoryError("cuMemHostAlloc failed: out of memory")),
    "device memory": ("gpu", "mem_alloc", CudaMemoryError("cuMemAlloc failed: out of memory")),
    "runtime": ("trt", "Runtime", RuntimeError("CUDA initialization failure with error: 35")),
    "execution context": ("trt", "create_execution_context", True),
    "profile": (
        "trt",
        "set_optimization_profile_async",
        RuntimeError("Error in set optimization profile async."),
    ),
}


@pytest.mark.parametrize("failure", sorted(CONSTRUCTION_FAILURES))
def test_fake_gpu_each_construction_failure_falls_back_under_auto(
    fake_gpu, stressed_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog, failure: str
) -> None:
    from gsrender.engine.backends import create_backend
    from gsrender.export import engine_build as eb

    monkeypatch.setattr(eb, "default_cache_dir", lambda: tmp_path)
    side, key, exc = CONSTRUCTION_FAILURES[failure]
    (fake_gpu.gpu if side == "gpu" else fake_gpu.trt).fail[key] = exc
    with caplog.at_level(logging.INFO, logger="gsrender"):
        backend, note = create_backend("auto", model=stressed_model)
    try:
        assert backend.name == "onnxruntime-cpu"
        assert note.startswith("onnxruntime (TensorRT unavailable here: ") and "\n" not in note
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # the note is the one line
    finally:
        backend.close()
    fake_gpu.gpu.fail.clear()
    fake_gpu.trt.fail.clear()
    with pytest.raises(BackendError, match="TensorRT backend unavailable"):
        (fake_gpu.gpu if side == "gpu" else fake_gpu.trt).fail[key] = exc
        create_backend("tensorrt", model=stressed_model)


def test_fake_gpu_auto_fallback_is_one_log_line(
    fake_gpu, plate_seq, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog, capsys
) -> None:
    """The CLI with --backend auto on a node whose GPU runs out of memory: it renders on the
    CPU and says why in one line (no traceback)."""
    from gsrender.engine.backends import default_model_path
    from gsrender.engine.cli import main
    from gsrender.export import engine_build as eb

    cache = tmp_path / "engines"
    monkeypatch.setattr(eb, "default_cache_dir", lambda: cache)
    _backend(default_model_path(), cache).close()  # the engine is cached: no build lines below
    fake_gpu.gpu.fail["mem_alloc"] = CudaMemoryError("cuMemAlloc failed: out of memory")
    src = plate_seq(frames=[1001])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gsrender"):
        assert main([str(src / "plate.####.png"), "-o", str(tmp_path / "out.####.exr")]) == 0
    lines = [r.getMessage() for r in caplog.records if "TensorRT" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "onnxruntime" in lines[0] and "out of memory" in lines[0] and "\n" not in lines[0]
    assert "Traceback" not in capsys.readouterr().err
    assert (tmp_path / "out.1001.exr").is_file()


def test_fake_gpu_foreign_timing_cache_is_replaced(
    fake_gpu, stressed_model: Path, tmp_path: Path, caplog
) -> None:
    """A timing cache TensorRT refuses (another version wrote it) costs a warning, not the build."""
    stale = tmp_path / "timing-nvidia-fake-gpu-sm90-trt10.7.0.23.cache"
    stale.write_bytes(b"timing cache written by TensorRT 8.6")
    with caplog.at_level(logging.WARNING, logger="gsrender"):
        _backend(stressed_model, tmp_path, precision="fp32").close()
    (rec,) = fake_gpu.trt.builds
    assert rec["refused_caches"] == 1 and rec["timing_cache"]
    assert any("timing cache" in r.getMessage() and "unusable" in r.getMessage() for r in caplog.records)
    assert stale.read_bytes().startswith(b"FAKETC1:")  # a fresh cache in its place
