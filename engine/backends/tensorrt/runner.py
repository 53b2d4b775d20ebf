"""The TensorRT Backend: the keyer on an NVIDIA GPU, fed through page-locked buffers by pycuda.

How a batch of tiles runs: each tile is clipped into a page-locked (pinned) host buffer
(the network encoding is [0,1] already; the clip is free in the same pass and keeps
FP16 activations in their trained range whatever a caller sends), copied to the device
asynchronously, run with `execute_async_v3` after `set_input_shape`/`set_tensor_address`,
and copied back, all on one CUDA stream. There are two such "slots" (execution context,
stream, buffers, events), used in turn, so the copies of one batch overlap the compute
of the next. `infer()` returns when its batch is done (the Backend contract);
`infer_batches()` keeps two batches in flight across calls.

Shapes: the engine's optimization profile covers the tiles the keyer makes by default
(engine/tile_profile.py); a larger input is sub-tiled exactly (jobs.py).

This module executes; it does not decide when an engine is built. The constructor asks
the loader (engine/backends/tensorrt/loader.py) for the engine, passing `allow_build`
through: the loader builds it once when the cache has none and building is allowed.
TensorRT and pycuda are imported only when a backend is constructed, so the module
imports on machines without a GPU.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import BackendError
from ..base import Backend, ModelInfo
from ..cuda_context import first_line, gpu_errors, primary_context
from ..onnx_runtime import read_model_info
from .cache import PRECISIONS, BuildRequest
from .jobs import Chunk, Job, make_job, run_jobs
from .loader import load_engine
from .node import detect_node, import_tensorrt
from .profile import DEFAULT_MAX_BATCH, DEFAULT_MAX_TILE
from .request import prepare_request, read_onnx_metadata
from .slot import Slot

log = logging.getLogger("gsrender")

INPUTS = ("plate", "screen")
OUTPUTS = ("alpha", "bg")
OUT_CHANNELS = {"alpha": 1, "bg": 3}
# FP16 against the FP32 ONNX Runtime reference on the reference frames
# (tests/engine/backends/tensorrt/test_runner.py)
FP16_ALPHA_MAX_ABS = 2.0 / 255.0
FP16_ALPHA_MEAN_ABS = 1e-3
FP32_ALPHA_MAX_ABS = 1e-3  # TF32 is disabled for fp32 engines; kernels still differ from ONNX Runtime's


def model_info(path: Path) -> ModelInfo:
    """Stride/halo from the ONNX metadata (read without building an inference session when onnx is there)."""
    try:
        meta = read_onnx_metadata(path)
    except Exception as exc:
        raise BackendError(
            path, f"cannot read ONNX model: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        ) from None
    return read_model_info(meta, path)


class TensorRTBackend(Backend):
    """Runs the keyer's ONNX model as a TensorRT engine built (once) for this GPU.

    Usable from any thread, one user at a time: every use makes the process's retained
    primary CUDA context current for its duration (see cuda_context). Every TensorRT or
    pycuda failure, in construction or submission, is a BackendError, so `--backend auto`
    falls back to ONNX Runtime instead of showing a traceback.
    """

    cpu_bound = False

    def __init__(
        self,
        model_path: str | Path,
        *,
        precision: str = "fp16",
        cache_dir: str | Path | None = None,
        max_batch: int | None = None,
        max_tile: int | None = None,
        engine_path: str | Path | None = None,
        allow_build: bool = True,
        fp16_model: str | Path | None = None,
        streams: int = 2,
        check_finite: bool = True,
    ) -> None:
        """Load (`allow_build`: or build once, through the loader) the engine and set up the slots."""
        path = Path(model_path)
        if not path.is_file():
            raise BackendError(path, "model file not found")
        if precision not in PRECISIONS:
            raise BackendError(None, f"unknown TensorRT precision '{precision}' ({', '.join(PRECISIONS)})")
        self.info = model_info(path)
        self.model_path = path
        self.precision = precision
        self.check_finite = check_finite
        self._slots: list[Slot] = []
        self._engine = self._runtime = None
        self._lock = threading.Lock()
        self._owner: int | None = None
        trt = import_tensorrt()
        self._gpu = primary_context()
        self._cuda = self._gpu.cuda
        with gpu_errors("reading the CUDA device"):
            node = detect_node(self._gpu.device)
        request = prepare_request(
            path,
            precision=precision,
            node=node,
            cache_dir=cache_dir,
            max_tile=max_tile or DEFAULT_MAX_TILE,
            max_batch=max_batch or DEFAULT_MAX_BATCH,
            halo=self.info.halo,
            stride=self.info.stride,
            copies=max(1, streams),
            fp16_model=fp16_model,
        )
        with self._gpu.current():
            try:
                self._setup(trt, request, cache_dir, engine_path, allow_build, streams)
            except BaseException:
                self._release()  # nothing half-made outlives a failed construction
                raise
        self.name = f"tensorrt-{precision}"
        self.device_name = node.gpu_name
        self.stats = {"batches": 0, "tiles": 0, "h2d_ms": 0.0, "compute_ms": 0.0, "d2h_ms": 0.0}

    # ------------------------------------------------------------------ setup helpers

    def _setup(
        self,
        trt: Any,
        request: BuildRequest,
        cache_dir: str | Path | None,
        engine_path: str | Path | None,
        allow_build: bool,
        streams: int,
    ) -> None:
        """Engine, execution contexts, streams and first buffers (the CUDA context is current)."""
        # the explicit engine, else the cached one, else one the loader builds now (allow_build)
        loaded = load_engine(trt, request, cache_dir, engine_path=engine_path, allow_build=allow_build)
        entry, engine = loaded.entry, loaded.engine
        self._runtime = loaded.runtime
        self._trt, self._engine = trt, engine
        self.engine_path = entry.path
        with gpu_errors("reading the engine's tensors", entry.path):
            self._check_io(trt, engine)
            pmin, popt, pmax = (tuple(int(v) for v in s) for s in engine.get_tensor_profile_shape("plate", 0))
            n_profiles = int(engine.num_optimization_profiles)
        self.profile_min_hw = (pmin[2], pmin[3])
        self.profile_max_hw = (pmax[2], pmax[3])
        self.max_batch = int(pmax[0])
        if n_profiles < streams:  # an explicit engine built with fewer copies: one context per profile
            log.info("gsrender: engine has %d profile(s); running %d stream(s)", n_profiles, n_profiles)
        for i in range(max(1, min(streams, n_profiles))):
            with gpu_errors("creating a TensorRT execution context", entry.path):
                ctx = engine.create_execution_context()
            if ctx is None:
                raise BackendError(
                    entry.path, "cannot create a TensorRT execution context (out of GPU memory?)"
                )
            with gpu_errors("creating a CUDA stream and events", entry.path):
                slot = Slot(self._cuda, ctx, i)
            self._slots.append(slot)
            if n_profiles > 1:  # contexts running at once must not share a profile: one copy each
                # the bindings raise RuntimeError when TensorRT refuses (older ones returned False)
                with gpu_errors(f"selecting optimization profile {i}", entry.path):
                    ok = ctx.set_optimization_profile_async(i, slot.stream.handle)
                    slot.stream.synchronize()
                if ok is False:
                    raise BackendError(entry.path, f"cannot select optimization profile {i}")
            # buffers for the profile's typical tile now: out of memory is a construction error
            # (auto falls back) rather than a failure on the first frame
            n, _, h, w = popt
            with gpu_errors("allocating page-locked and device buffers", entry.path):
                for name, c in (("plate", 3), ("screen", 3), ("alpha", 1), ("bg", 3)):
                    slot.reserve(name, n * c * h * w, self._dtypes[name])

    def _release(self) -> None:
        """Free slots, contexts and the engine, in that order (the CUDA context is current)."""
        slots, self._slots = self._slots, []
        errors = []
        for slot in slots:
            try:
                slot.free()
            except Exception as exc:  # keep freeing the others
                errors.append(exc)
        self._engine = None
        self._runtime = None
        if errors:
            raise BackendError(self.model_path, f"freeing GPU buffers failed: {first_line(errors[0])}")

    def _check_io(self, trt: Any, engine: Any) -> None:
        names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        missing = [n for n in (*INPUTS, *OUTPUTS) if n not in names]
        if missing:
            raise BackendError(self.model_path, f"engine lacks tensors {missing} (has {sorted(names)})")
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in (*INPUTS, *OUTPUTS)}
        for n in INPUTS:
            if engine.get_tensor_mode(n) != trt.TensorIOMode.INPUT:
                raise BackendError(self.model_path, f"engine tensor '{n}' is not an input")

    @contextlib.contextmanager
    def _use(self) -> Iterator[None]:
        """One user of the slots at a time, with the CUDA context current on its thread.

        The same thread re-entering (infer inside an unfinished infer_batches loop) would
        overwrite buffers still being read, so that is refused.
        """
        tid = threading.get_ident()
        if self._owner == tid:
            raise BackendError(
                None,
                "TensorRT backend re-entered from the thread that is iterating "
                "infer_batches(); finish or close that iterator first",
            )
        with self._lock:
            if not self._slots:
                raise BackendError(self.model_path, "the TensorRT backend is closed")
            self._owner = tid
            try:
                yield
            finally:
                self._owner = None

    # ------------------------------------------------------------------ one engine call

    def _submit(self, slot: Slot, chunk: Chunk) -> None:
        """Queue copy-in, execute, copy-out of one chunk on the slot's stream (returns at once)."""
        # (no local alias of the stream: a traceback holding this frame must not keep a CUDA
        # object alive past close(), to be freed later on a thread without the context)
        cuda, ctx = self._cuda, slot.context
        slot.wait()  # an abandoned or failed earlier run: its copies must finish before we reuse the buffers
        n = len(chunk)
        _, h, w = chunk[0][0].shape
        shapes = {"plate": (n, 3, h, w), "screen": (n, 3, h, w), "alpha": (n, 1, h, w), "bg": (n, 3, h, w)}
        with gpu_errors("allocating page-locked and device buffers", self.engine_path):
            for name, shape in shapes.items():
                slot.reserve(name, math.prod(shape), self._dtypes[name])
        views = {name: slot.host[name][: math.prod(shape)].reshape(shape) for name, shape in shapes.items()}
        for i, (p, s) in enumerate(chunk):  # copy into pinned memory; the clip is free in the same pass
            np.clip(p, 0.0, 1.0, out=views["plate"][i], casting="same_kind")
            np.clip(s, 0.0, 1.0, out=views["screen"][i], casting="same_kind")
        with gpu_errors("setting TensorRT input shapes", self.engine_path):
            for name in INPUTS:
                if not ctx.set_input_shape(name, shapes[name]):
                    raise BackendError(
                        self.engine_path,
                        f"engine rejects input shape {shapes[name]} for '{name}' "
                        f"(profile {self.profile_min_hw}..{self.profile_max_hw})",
                    )
            for name in OUTPUTS:
                got = tuple(ctx.get_tensor_shape(name))
                if got != shapes[name]:
                    raise BackendError(
                        self.engine_path, f"engine output '{name}' has shape {got}, expected {shapes[name]}"
                    )
            for name in (*INPUTS, *OUTPUTS):
                if ctx.set_tensor_address(name, int(slot.dev[name])) is False:
                    raise BackendError(self.engine_path, f"TensorRT refused the address of '{name}'")
        slot.out = None
        try:
            with gpu_errors("queueing the TensorRT run", self.engine_path):
                slot.ev_start.record(slot.stream)
                slot.in_flight = True  # from the first queued copy on, the pinned input is the GPU's
                for name in INPUTS:
                    cuda.memcpy_htod_async(slot.dev[name], views[name], slot.stream)
                slot.ev_h2d.record(slot.stream)
                if not ctx.execute_async_v3(slot.stream.handle):
                    raise BackendError(
                        self.engine_path, "TensorRT execute_async_v3 failed (see the TensorRT log)"
                    )
                slot.ev_compute.record(slot.stream)
                for name in OUTPUTS:
                    cuda.memcpy_dtoh_async(views[name], slot.dev[name], slot.stream)
        finally:
            # ev_done marks the end of whatever got queued, even when queueing stopped part
            # way: the next use of this slot waits for it before touching the buffers
            with contextlib.suppress(Exception):
                slot.ev_done.record(slot.stream)
        slot.out = (views["alpha"], views["bg"])

    def _collect(self, slot: Slot) -> tuple[np.ndarray, np.ndarray]:
        """Wait for the slot's chunk; its outputs are views of pinned memory, valid until reuse."""
        with gpu_errors("waiting for the GPU", self.engine_path):
            slot.wait()
            t_h2d = slot.ev_h2d.time_since(slot.ev_start)
            t_compute = slot.ev_compute.time_since(slot.ev_h2d)
            t_d2h = slot.ev_done.time_since(slot.ev_compute)
        assert slot.out is not None
        a, b = slot.out
        st = self.stats
        st["batches"] += 1
        st["tiles"] += a.shape[0]
        st["h2d_ms"] += t_h2d
        st["compute_ms"] += t_compute
        st["d2h_ms"] += t_d2h
        if a.dtype != np.float32:
            a, b = a.astype(np.float32), b.astype(np.float32)
        if self.check_finite and not (np.isfinite(a.sum()) and np.isfinite(b.sum())):  # NaN/Inf propagate
            raise BackendError(
                self.engine_path,
                f"TensorRT {self.precision} produced NaN/Inf; "
                "re-run with --precision fp32 and report the frame",
            )
        return a, b

    def _execute(self, chunks: Iterable[Chunk]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Round-robin over the slots with up to len(slots) chunks in flight; results in order.

        The CUDA context is current only while this generator runs (between its yields the
        caller's code runs, possibly ending the thread), so it is pushed per step.
        """
        slots = self._slots
        pending: deque[Slot] = deque()
        gpu = self._gpu
        try:
            for k, chunk in enumerate(chunks):
                if len(pending) == len(slots):  # the oldest in flight is the slot we reuse now
                    with gpu.current():
                        out = self._collect(pending.popleft())
                    yield out
                slot = slots[k % len(slots)]
                with gpu.current():
                    self._submit(slot, chunk)
                pending.append(slot)
            while pending:
                with gpu.current():
                    out = self._collect(pending.popleft())
                yield out
        finally:
            if pending:  # abandoned or failed: leave no copy running into our buffers
                with gpu.current(), contextlib.suppress(Exception):
                    for slot in pending:
                        slot.wait()

    # ------------------------------------------------------------------ public API

    def _job(self, plate: np.ndarray, screen: np.ndarray) -> Job:
        return make_job(
            plate,
            screen,
            max_batch=self.max_batch,
            min_hw=self.profile_min_hw,
            max_hw=self.profile_max_hw,
            halo=self.info.halo,
            stride=self.info.stride,
        )

    def infer(
        self, plate: np.ndarray, screen: np.ndarray, screen_colour: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One batch, synchronously; the arrays returned are the caller's."""
        with self._use():
            job = self._job(plate, screen)
            ((a, b),) = list(run_jobs([job], self._execute))
            return (a.copy(), b.copy()) if job.passthrough else (a, b)

    def infer_batches(
        self, batches: Iterable[tuple[np.ndarray, np.ndarray]], screen_colour: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Pipelined: yields each batch's (alpha, bg) in order while the next is already on the GPU.

        Arrays yielded may live in pinned buffers: use (or copy) them before asking for
        the next one. This is what keeps copies and compute of consecutive batches overlapped.
        """
        with self._use():
            yield from run_jobs((self._job(p, s) for p, s in batches), self._execute)

    def engine_calls(self, n: int, h: int, w: int) -> list[tuple[int, int, int]]:
        """The (tiles, h, w) engine calls one `infer` of n tiles of h x w becomes (no data needed)."""
        zeros = np.broadcast_to(np.zeros((), np.float32), (n, 3, h, w))
        return [(len(c), *c[0][0].shape[1:]) for c in self._job(zeros, zeros).chunks]

    def time_device(self, shapes: list[tuple[int, int, int]], repeats: int = 10) -> float:
        """Seconds per pass of `shapes` ((n, h, w) batches) on the GPU alone: no host copies.

        The network-only number of the benchmark: execute_async_v3 on device buffers,
        alternating the two contexts as a real run does, timed with CUDA events.
        """
        with self._use(), self._gpu.current(), gpu_errors("timing the engine", self.engine_path):
            cuda = self._cuda
            for n, h, w in shapes:
                for slot in self._slots:
                    for name, c in (("plate", 3), ("screen", 3), ("alpha", 1), ("bg", 3)):
                        slot.reserve(name, n * c * h * w, self._dtypes[name])
            flags = cuda.event_flags.BLOCKING_SYNC
            start, end = cuda.Event(flags), cuda.Event(flags)
            try:
                for warm in (True, False):
                    first = self._slots[0]
                    start.record(first.stream)
                    k = 0
                    for _ in range(1 if warm else repeats):
                        for n, h, w in shapes:
                            slot = self._slots[k % len(self._slots)]
                            k += 1
                            self._time_one(slot, start, n, h, w)
                    for slot in self._slots[1:]:
                        first.stream.wait_for_event(slot.ev_done)
                    end.record(first.stream)
                    end.synchronize()
                    for slot in self._slots:
                        slot.in_flight = False
                return end.time_since(start) / 1000.0 / repeats
            finally:
                del start, end  # CUDA objects die while their context is current

    def _time_one(self, slot: Slot, start: Any, n: int, h: int, w: int) -> None:
        """Queue one engine call on device buffers after `start` (timing only, no copies)."""
        ctx = slot.context
        for name in INPUTS:
            if not ctx.set_input_shape(name, (n, 3, h, w)):
                raise BackendError(self.engine_path, f"engine rejects input shape {(n, 3, h, w)}")
        for name in (*INPUTS, *OUTPUTS):
            ctx.set_tensor_address(name, int(slot.dev[name]))
        slot.stream.wait_for_event(start)
        slot.in_flight = True
        try:
            if not ctx.execute_async_v3(slot.stream.handle):
                raise BackendError(self.engine_path, "TensorRT execute_async_v3 failed")
        finally:
            slot.ev_done.record(slot.stream)

    def describe(self) -> str:
        h, w = self.profile_max_hw
        return (
            f"{self.name} on {self.device_name} ({self.model_path.name}; engine {self.engine_path.name}; "
            f"{len(self._slots)} streams, batch <= {self.max_batch}, tiles <= {w}x{h})"
        )

    def close(self) -> None:
        """Finish queued work and free buffers, streams, contexts and the engine (idempotent)."""
        if not getattr(self, "_slots", None):
            return
        if self._owner == threading.get_ident():  # the lock is not reentrant: say why instead of hanging
            raise BackendError(None, "TensorRT backend closed while its infer_batches() is being iterated")
        with self._lock, self._gpu.current():
            self._release()
