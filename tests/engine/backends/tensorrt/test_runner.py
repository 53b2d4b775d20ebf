"""The TensorRT Backend that executes an engine.

The GPU tests need tensorrt + pycuda + a CUDA GPU and skip with the reason otherwise;
where they run they compare with the ONNX Runtime CPU backend on reference frames: FP16
alpha max |diff| <= 2/255 and mean <= 1e-3. The glue (contexts across threads, errors,
streams, events, pinned buffers) is tested against gpu_doubles.py beside this file, which
enforces pycuda's and TensorRT's rules; so far it has run only against those doubles,
never on a real GPU.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest

from gsrender.engine.backends.onnx_runtime import OnnxRuntimeBackend
from gsrender.engine.backends.tensorrt.cache import CACHE_ENV, read_sidecar, sidecar_path
from gsrender.engine.backends.tensorrt.runner import (
    FP16_ALPHA_MAX_ABS,
    FP16_ALPHA_MEAN_ABS,
    FP32_ALPHA_MAX_ABS,
    TensorRTBackend,
)
from gsrender.engine.errors import BackendError
from gsrender.engine.keyer import key_frame
from tests.conftest import make_plate
from tests.engine.backends.tensorrt.fakes import make_backend, make_inputs
from tests.engine.backends.tensorrt.gpu_doubles import CudaMemoryError, LogicError

# ----------------------------------------------------- without the GPU stack


def test_the_test_tree_does_not_shadow_the_gpu_stack() -> None:
    """pytest puts test folders without __init__.py on sys.path. A test module directly in
    tests/engine/backends/ would put this folder's parent there, and `tensorrt` would then
    import as an empty namespace package made of tests: every "is TensorRT installed" check
    in the suite would lie. Keep test modules of the backends out of that folder."""
    for name in ("tensorrt", "pycuda"):
        spec = importlib.util.find_spec(name)
        assert spec is None or spec.origin is not None, (name, list(spec.submodule_search_locations or []))


def test_backend_without_the_gpu_stack_says_why(model_path: Path) -> None:
    if all(importlib.util.find_spec(m) for m in ("tensorrt", "pycuda")):
        pytest.skip("TensorRT and pycuda are installed here")
    from gsrender.engine.backends import create_backend

    with pytest.raises(BackendError, match=r"TensorRT is not installed|pycuda unavailable"):
        create_backend("tensorrt", model=model_path)


# ------------------------------------------------------------------ on a GPU


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
    batches = [make_inputs(1, 1200, 1200, seed=i) for i in range(3)] + [make_inputs(2, 200, 856, seed=9)]
    single = [backend.infer(p, s) for p, s in batches]
    piped = [(a.copy(), b.copy()) for a, b in backend.infer_batches(batches)]
    for (a1, b1), (a2, b2) in zip(single, piped, strict=True):  # the two contexts may pick other tactics
        np.testing.assert_allclose(a1, a2, atol=FP16_ALPHA_MAX_ABS)
        np.testing.assert_allclose(b1, b2, atol=FP16_ALPHA_MAX_ABS)


@gpu
def test_oversized_input_on_the_gpu(engines, model_path: Path) -> None:
    backend = engines[0]["fp32"]
    p, s = make_inputs(1, 2176, 3840)  # a whole 4K frame: larger than the profile, sub-tiled in the backend
    a, _ = backend.infer(p, s)
    want, _ = OnnxRuntimeBackend(model_path).infer(p, s, np.zeros(3, np.float32))
    assert np.abs(a - want).max() <= FP32_ALPHA_MAX_ABS


@gpu
def test_engine_cache_is_reused_and_foreign_engines_refused(engines, model_path: Path) -> None:
    made, cache = engines
    before = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.engine")}
    again = TensorRTBackend(model_path, precision="fp16", cache_dir=cache, allow_build=False)
    again.close()
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.engine")} == before
    engine = made["fp16"].engine_path
    meta = read_sidecar(engine)
    meta["gpu_name"] = "Some Other GPU"
    sidecar_path(engine).write_text(__import__("json").dumps(meta))
    with pytest.raises(BackendError, match="another node"):
        TensorRTBackend(model_path, precision="fp16", cache_dir=cache, engine_path=engine)


# ------------------------- the GPU glue, against doubles (conftest.fake_gpu)


def test_fake_gpu_trt10_fp16_build_and_infer(
    fake_gpu, stressed_model: Path, session, tmp_path: Path, shipped_halo: int
) -> None:
    b = make_backend(stressed_model, tmp_path, precision="fp16")
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
        assert not pinned & {"CONVOLUTION", "CONSTANT"}
        # the trunk's two upsamples (GsKeyNet3's decoder) stay FP16; those after the last
        # convolution (the shipped GsKeyNet3 upsamples its half-resolution correction: the guided
        # alpha correction's two coefficients and the screen-colour correction) are the FP32 head
        resizes = [n.op_type for n in onnx.load(str(stressed_model)).graph.node].count("Resize")
        assert list(rec["pinned"]).count("RESIZE") == resizes - 2
        assert rec["pinned_outputs"]
        opt = 1536 + 2 * shipped_halo  # the default tile and the model's halo
        assert rec["profiles"] == [((1, 3, 8, 8), (1, 3, opt, opt), (1, 3, 2560, 2560))] * 2
        assert rec["profile_inputs"] == [["plate", "screen"]] * 2
        assert b.name == "tensorrt-fp16" and b.max_batch == 1 and len(b._slots) == 2
        assert "NVIDIA Fake GPU" in b.describe()
        plate, screen = make_inputs(3, 64, 96)
        a, bg = b.infer(plate, screen, np.zeros(3, np.float32))
        want_a, want_bg = session.run(["alpha", "bg"], {"plate": plate, "screen": screen})
        np.testing.assert_allclose(a, want_a, atol=1e-6)
        np.testing.assert_allclose(bg, want_bg, atol=1e-6)
        assert b.stats["batches"] == 3 and b.stats["tiles"] == 3  # max batch 1: three calls, two streams
        timing = [p.name for p in tmp_path.glob("timing-*.cache")]
        assert timing == ["timing-nvidia-fake-gpu-sm90-trt10.7.0.23.cache"]
    finally:
        b.close()
    again = make_backend(stressed_model, tmp_path, precision="fp16", allow_build=False)
    again.close()
    assert len(fake_gpu.trt.builds) == 1  # loaded from the cache


def test_fake_gpu_pipeline_and_oversized(
    fake_gpu, stressed_model: Path, session, shipped_halo: int, tmp_path: Path
) -> None:
    b = make_backend(stressed_model, tmp_path, precision="fp32", max_tile=64, max_batch=2)
    try:
        flags = fake_gpu.trt.builds[0]["flags"]
        assert "TF32" not in flags and "FP16" not in flags
        assert b.profile_max_hw == (2560, 2560) and b.max_batch == 2
        batches = [make_inputs(1, 64, 64, i) for i in range(4)] + [make_inputs(2, 32, 48, 7)]
        want = [session.run(["alpha", "bg"], {"plate": p, "screen": s}) for p, s in batches]
        got = [(a.copy(), c.copy()) for a, c in b.infer_batches(batches)]
        for (wa, wb), (ga, gb) in zip(want, got, strict=True):
            np.testing.assert_allclose(ga, wa, atol=1e-6)
            np.testing.assert_allclose(gb, wb, atol=1e-6)
        side = 2 * shipped_halo + 64  # as if the engine were smaller than this input: 64-pixel cores
        b.profile_max_hw = (side, side)
        p, s = make_inputs(1, 240, 320)
        a, _ = b.infer(p, s)
        wa, _ = session.run(["alpha", "bg"], {"plate": p, "screen": s})
        assert np.abs(a - wa).max() < 1e-4
        calls = b.engine_calls(2, 240, 320)
        assert sum(n for n, _, _ in calls) == 2 * 4 * 5 and all(h <= side and w <= side for _, h, w in calls)
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
    b = make_backend(stressed_model, tmp_path, precision="fp16")
    try:
        (rec,) = fake_gpu.trt.builds
        assert rec["onnx"].endswith(".fp16.onnx") and rec["network_flags"] == 0
        assert "FP16" not in rec["flags"] and rec["pinned"] == []  # precision comes from the ONNX types
        assert "fp16-typed" in b.engine_path.name
        plate, screen = make_inputs(1, 64, 64)
        a, _ = b.infer(plate, screen)
        assert np.isfinite(a).all()
    finally:
        b.close()


def test_fake_gpu_nan_output_is_an_error(fake_gpu, stressed_model: Path, tmp_path: Path) -> None:
    b = make_backend(stressed_model, tmp_path, precision="fp16")
    try:
        b._engine.poison = True
        with pytest.raises(BackendError, match="NaN"):
            b.infer(*make_inputs(1, 64, 64))
    finally:
        b.close()


def test_fake_gpu_key_frame_matches_cpu(fake_gpu, stressed_model: Path, tmp_path: Path) -> None:
    """The whole keyer path (prepare, tiles, assemble, unmix) through the TensorRT glue."""
    b = make_backend(stressed_model, tmp_path, precision="fp32")
    try:
        plate = make_plate(96, 136, seed=1, hdr=True)
        want = key_frame(plate, OnnxRuntimeBackend(stressed_model, threads=1), tile=64)
        got = key_frame(plate, b, tile=64)
        assert np.abs(got.alpha - want.alpha).max() < 1e-5
    finally:
        b.close()


# --------------------------------------------------- contexts across threads


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
    first = _in_thread(lambda: make_backend(stressed_model, tmp_path, precision="fp16"))
    second = _in_thread(lambda: make_backend(stressed_model, tmp_path, precision="fp32"))
    assert len(fake_gpu.trt.builds) == 2 and not fake_gpu.gpu.aborts
    plate, screen = make_inputs(2, 64, 96, seed=3)
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
    from gsrender.ofx_bridge.protocol import Settings
    from gsrender.ofx_bridge.worker import WarmKeyer

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
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
    b = make_backend(stressed_model, tmp_path, precision="fp32")
    try:
        batches = [make_inputs(1, 64, 64, seed=i) for i in range(4)]

        def read_one() -> None:
            it = b.infer_batches(batches)
            next(it)
            it.close()

        _in_thread(read_one)
        a, _ = b.infer(*batches[3])
        assert np.isfinite(a).all()
    finally:
        b.close()


# ------------------------------------------------------------------ failures


def test_fake_gpu_failed_execution_keeps_the_queued_copy_safe(
    fake_gpu, stressed_model: Path, session, tmp_path: Path
) -> None:
    """execute_async_v3 returning False after the input copies were queued: a BackendError,
    and the next submission waits for those copies before refilling the pinned input."""
    b = make_backend(stressed_model, tmp_path, precision="fp32", streams=1)
    try:
        b._engine.fail_executions = 1
        p1, s1 = make_inputs(1, 64, 64, seed=1)
        with pytest.raises(BackendError, match="execute_async_v3 failed"):
            b.infer(p1, s1)
        p2, s2 = make_inputs(1, 64, 64, seed=2)
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
    b = make_backend(stressed_model, tmp_path, precision="fp32", streams=1)
    try:
        fake_gpu.gpu.fail[where] = exc
        with pytest.raises(BackendError, match="buffers failed: CudaMemoryError: .*out of memory"):
            b.infer(*make_inputs(1, 2400, 2400))  # larger than the buffers made at construction
        a, _ = b.infer(*make_inputs(1, 64, 64))
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

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    side, key, exc = CONSTRUCTION_FAILURES[failure]
    (fake_gpu.gpu if side == "gpu" else fake_gpu.trt).fail[key] = exc
    with caplog.at_level(logging.INFO, logger="gsrender"):
        backend = create_backend("auto", model=stressed_model)
        note = backend.auto_note
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
    from gsrender.cli.render import main
    from gsrender.engine.backends import default_model_path

    cache = tmp_path / "engines"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    make_backend(default_model_path(), cache).close()  # the engine is cached: no build lines below
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
