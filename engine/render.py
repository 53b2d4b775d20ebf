"""Render a list of frames: schedule the per-frame stages, apply the failure policy, report.

What happens to one frame (read -> prepare -> infer tiles -> assemble -> write) is in
engine/frame_pipeline.py. Its three stages run concurrently here (reader threads,
inference on the calling thread, writer threads) with small queues between them, so a
frame costs about the slowest stage rather than the sum. Numpy, OpenImageIO, OpenColorIO
and ONNX Runtime release the GIL in their heavy loops, which is what makes threads enough.

Failure policy: a bad input frame is reported with one line; with on_error="fail" the
reader stops taking new frames, frames already read are still written, and the run
ends with a non-zero exit code. Nothing is written for a bad frame, so an existing good
output frame is never replaced by a broken one.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from threadpoolctl import threadpool_limits

from .atomic_files import read_only_problem
from .backends.base import Backend
from .compositor_inputs import CompositorInputs
from .despot import DEFAULT_SIZE as DEFAULT_DESPOT
from .errors import BackendError, GsRenderError, InputError, InternalError, OutputError, describe_exception
from .existing_output import expected_shape, incomplete, plate_header
from .frame_pipeline import FramePipeline, LoadedPlate, RawKey
from .image_io import MAX_ATTRIBUTE_BYTES, MAX_CARRIED_ATTRIBUTES, PlateSelection
from .keyer import PreparedFrame
from .output import OutputSettings
from .output_check import classify_output_failure
from .preflight import DEFAULT_MAX_PIXELS
from .sequence import FrameRef

log = logging.getLogger("gsrender")

QUEUE_DEPTH = 2
_DONE = object()


@dataclass(frozen=True)
class RenderSettings:
    tile: int = 0
    despill: float = 1.0
    despot: int = DEFAULT_DESPOT  # largest island on the screen keyed out, pixels; 0 off
    colorspace: str | None = None  # input colour space override
    screen_colour: tuple[float, float, float] | None = None  # linear working-space RGB
    skip_existing: bool = False
    on_error: str = "fail"  # fail | skip
    io_workers: int = 0  # reader and writer threads each; 0 = auto (see io_workers_for)
    plate: PlateSelection = field(default_factory=PlateSelection)  # --layer, --part, --input-alpha
    output: OutputSettings = field(default_factory=OutputSettings)
    max_pixels: int = DEFAULT_MAX_PIXELS  # frames declaring more are refused before decoding
    inputs: CompositorInputs = field(default_factory=CompositorInputs)  # mattes, clean plate


class FrameStatus(StrEnum):
    """What became of one frame of a render (the report's `status`)."""

    RENDERED = "rendered"
    SKIPPED = "skipped"  # --skip-existing found it complete
    FAILED = "failed"


@dataclass
class FrameReport:
    frame: int | None
    source: Path
    target: Path
    status: FrameStatus
    seconds: float = 0.0
    error: GsRenderError | None = None


@dataclass
class _Work:
    """One frame between the stages: a reader fills in plate, inference swaps it for key
    (which holds the plate minus its network inputs, so those are freed at once)."""

    ref: FrameRef
    target: Path
    started: float
    plate: LoadedPlate | None = None
    key: RawKey | None = None


@dataclass
class StageTimes:
    """Seconds spent in each stage, summed over frames (for benchmarks and logs)."""

    read: float = 0.0
    infer: float = 0.0
    write: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, seconds: float) -> None:
        with self.lock:
            setattr(self, stage, getattr(self, stage) + seconds)


MAX_IO_WORKERS = 4


def io_workers_for(backend: Backend, requested: int = 0, cores: int | None = None) -> int:
    """Reader/writer threads per stage: one while inference uses the cores, more beside a GPU.

    Beside a GPU the network is quick and reading, unmixing and EXR compression are the
    slow stages; several frames in each of them at once keep up with the GPU.
    """
    if requested > 0:
        return requested
    return 1 if backend.cpu_bound else io_workers_beside_gpu(cores)


def io_workers_beside_gpu(cores: int | None = None) -> int:
    """A quarter of the cores per stage (at most MAX_IO_WORKERS), leaving room for OIIO's threads."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(MAX_IO_WORKERS, cores // 4))


def existing_problem(ref: FrameRef, target: Path, settings: RenderSettings) -> str | None:
    """Why an existing output frame cannot be skipped (broken, or not what this render writes), or None."""
    plate = plate_header(ref.path, settings.plate)
    want = None if plate is None else expected_shape(plate, target, settings.output)
    return incomplete(target, want)


def render_frames(
    jobs: Iterable[tuple[FrameRef, Path]],
    backend: Backend,
    settings: RenderSettings,
    on_report: Callable[[FrameReport], None] = lambda r: None,
    stop: threading.Event | None = None,
    times: StageTimes | None = None,
) -> list[FrameReport]:
    """Render every (input, output) pair; returns one report per frame, in frame order."""
    # numpy's BLAS only does small matrix products here (the screen-guide upsampling); its
    # worker threads busy-wait after each one and take the cores inference and I/O need.
    with threadpool_limits(limits=1, user_api="blas"):
        return _render_frames(jobs, backend, settings, on_report, stop, times)


def _unexpected(exc: BaseException) -> None:
    log.debug("unexpected exception", exc_info=exc)  # the traceback, with --debug


class _Run:
    """One render: the state its reader threads, its inference (the calling thread) and its writer
    threads share, and those stages as methods (_render_frames makes one and runs it)."""

    def __init__(
        self,
        jobs: Iterable[tuple[FrameRef, Path]],
        backend: Backend,
        settings: RenderSettings,
        on_report: Callable[[FrameReport], None],
        stop: threading.Event | None,
        times: StageTimes | None,
    ) -> None:
        self.settings = settings
        self.on_report = on_report
        self.stop = stop or threading.Event()
        self.times = times or StageTimes()
        self.reports: list[FrameReport] = []
        self.lock = threading.Lock()
        self.fatal: list[BaseException] = []
        self.screenless: list[Path] = []  # frames where no green or blue screen was recognised
        self.dropped_noted: list[int] = []
        self.to_infer: queue.Queue = queue.Queue(QUEUE_DEPTH)
        self.to_write: queue.Queue = queue.Queue(QUEUE_DEPTH)
        self.pipeline = FramePipeline(
            backend,
            plate_selection=self.settings.plate,
            colorspace=self.settings.colorspace,
            screen_colour=self.settings.screen_colour,
            max_pixels=self.settings.max_pixels,
            inputs=self.settings.inputs,
            tile=self.settings.tile,
            despill=self.settings.despill,
            despot=self.settings.despot,
            output=self.settings.output,
        )
        self.workers = io_workers_for(backend, self.settings.io_workers)
        self.pending = iter(jobs)
        self.pending_lock = threading.Lock()
        self.readers_left = 0  # readers still running (run() starts them)
        self.order: dict[Path, int] = {}  # job index of each input taken: reports in job order

    def report(self, r: FrameReport) -> None:
        with self.lock:
            self.reports.append(r)
        self.on_report(r)
        if r.status == FrameStatus.FAILED and self.settings.on_error == "fail":
            self.stop.set()

    def check_screen(self, ref: FrameRef, prepared: PreparedFrame) -> None:
        """One warning per run: a plate with no recognisable screen keys as solid foreground."""
        if prepared.screen.found:
            return
        with self.lock:
            self.screenless.append(ref.path)
            first = len(self.screenless) == 1
        if first:
            log.warning(
                "gsrender: warning: frame %s: %s: no green or blue screen recognised; keyed against the "
                "frame's median colour (set --screen-colour R,G,B); later frames like it are not reported",
                ref.frame,
                ref.path,
            )

    def note_dropped(self, ref: FrameRef, count: int) -> None:
        """One warning per run: header attributes an output goes without (too many, too large)."""
        with self.lock:
            first = not self.dropped_noted
            self.dropped_noted.append(count)
        if first:
            log.warning(
                "gsrender: warning: frame %s: %s: %d header attributes not carried over to the output "
                "(more than %d, or larger than %d KiB each); later frames like it are not reported",
                "-" if ref.frame is None else ref.frame,
                ref.path,
                count,
                MAX_CARRIED_ATTRIBUTES,
                MAX_ATTRIBUTE_BYTES // 1024,
            )

    def next_job(self) -> tuple[FrameRef, Path] | None:
        with self.pending_lock:
            job = next(self.pending, None)
            if job is not None:
                self.order[job[0].path] = len(self.order)
            return job

    def reader(self) -> None:
        try:
            while (job := self.next_job()) is not None:
                ref, target = job
                if self.stop.is_set():
                    break
                t0 = time.perf_counter()
                if target.is_dir():  # never "skipped as existing", never written over
                    error = OutputError(target, "a folder has this output frame's name")
                    self.report(FrameReport(ref.frame, ref.path, target, FrameStatus.FAILED, error=error))
                    continue
                if self.settings.skip_existing and target.exists():
                    problem = existing_problem(ref, target, self.settings)
                    if problem is None:
                        self.report(FrameReport(ref.frame, ref.path, target, FrameStatus.SKIPPED))
                        continue
                    log.warning("gsrender: warning: %s: existing frame rendered again: %s", target, problem)
                if (locked := read_only_problem(target)) is not None:  # before the work, not after
                    error = OutputError(target, locked)
                    self.report(FrameReport(ref.frame, ref.path, target, FrameStatus.FAILED, error=error))
                    continue
                try:
                    plate = self.pipeline.read_and_prepare(ref, target)
                    self.check_screen(ref, plate.prepared)
                except GsRenderError as exc:
                    self.report(FrameReport(ref.frame, ref.path, target, FrameStatus.FAILED, error=exc))
                    continue
                except MemoryError:
                    error = InputError(ref.path, "out of memory decoding this frame")
                    self.report(FrameReport(ref.frame, ref.path, target, FrameStatus.FAILED, error=error))
                    continue
                except Exception as exc:  # a decoder or colour library bug: this frame fails, in one line
                    _unexpected(exc)
                    error = InternalError(ref.path, f"unexpected error reading: {describe_exception(exc)}")
                    self.report(FrameReport(ref.frame, ref.path, target, FrameStatus.FAILED, error=error))
                    continue
                self.times.add("read", time.perf_counter() - t0)
                self.to_infer.put(_Work(ref, target, t0, plate=plate))
        except BaseException as exc:  # pragma: no cover - unexpected crash of the stage
            self.fatal.append(exc)
            self.stop.set()
        finally:
            self.to_infer.put(_DONE)

    def writer(self) -> None:
        while (work := self.to_write.get()) is not _DONE:
            if self.fatal:
                continue
            try:
                t0 = time.perf_counter()
                dropped = self.pipeline.write_keyed(work.key, work.target)
                if dropped:
                    self.note_dropped(work.ref, dropped)
                self.times.add("write", time.perf_counter() - t0)
                self.report(
                    FrameReport(
                        work.ref.frame,
                        work.ref.path,
                        work.target,
                        FrameStatus.RENDERED,
                        time.perf_counter() - work.started,
                    )
                )
            except OutputError as exc:
                error = classify_output_failure(exc, work.target, work.key.output_bytes)
                ref = work.ref
                self.report(FrameReport(ref.frame, ref.path, work.target, FrameStatus.FAILED, error=error))
                self.stop.set()  # an unwritable destination fails every later frame too
            except GsRenderError as exc:
                ref = work.ref
                self.report(FrameReport(ref.frame, ref.path, work.target, FrameStatus.FAILED, error=exc))
            except Exception as exc:  # a bug: this frame fails, in one line; the rest follow --on-error
                _unexpected(exc)
                error = InternalError(work.target, f"unexpected error writing: {describe_exception(exc)}")
                ref = work.ref
                self.report(FrameReport(ref.frame, ref.path, work.target, FrameStatus.FAILED, error=error))
            except BaseException as exc:  # pragma: no cover
                self.fatal.append(exc)
                self.stop.set()

    def next_work(self) -> _Work | None:
        """The next prepared frame, or None once every reader has finished."""
        while self.readers_left:
            work = self.to_infer.get()
            if work is not _DONE:
                return work
            self.readers_left -= 1
        return None

    def run(self) -> list[FrameReport]:
        """Start the readers and writers, infer on this thread; the reports in job order."""
        threads = [
            threading.Thread(target=stage, name=f"gsrender-{name}-{i}", daemon=True)
            for stage, name in ((self.reader, "read"), (self.writer, "write"))
            for i in range(self.workers)
        ]
        for t in threads:
            t.start()
        self.readers_left = self.workers

        try:
            while (work := self.next_work()) is not None:
                if self.fatal:
                    continue  # drain the queue so the reader can finish
                t0 = time.perf_counter()
                try:
                    work.key, work.plate = self.pipeline.infer(work.plate), None
                except GsRenderError as exc:
                    self.fatal.append(exc)
                    self.stop.set()
                    continue
                except Exception as exc:
                    _unexpected(exc)
                    problem = f"inference failed: {describe_exception(exc)}"
                    self.fatal.append(BackendError(work.ref.path, problem))
                    self.stop.set()
                    continue
                self.times.add("infer", time.perf_counter() - t0)
                self.to_write.put(work)
        except BaseException:
            self.stop.set()  # interrupted (SIGINT/SIGTERM): finish what is in flight, start nothing new
            while self.next_work() is not None:
                pass
            raise
        finally:
            for _ in range(self.workers):
                self.to_write.put(_DONE)
            for t in threads:
                t.join()
        if self.fatal:
            raise self.fatal[0]
        return sorted(self.reports, key=lambda r: self.order.get(r.source, 0))


def _render_frames(
    jobs: Iterable[tuple[FrameRef, Path]],
    backend: Backend,
    settings: RenderSettings,
    on_report: Callable[[FrameReport], None],
    stop: threading.Event | None,
    times: StageTimes | None,
) -> list[FrameReport]:
    return _Run(jobs, backend, settings, on_report, stop, times).run()
