"""One TensorRT execution slot: an execution context with its CUDA stream, page-locked host and
device buffers and events (the runner keeps two, to overlap copies with compute)."""

from __future__ import annotations

from typing import Any

import numpy as np


class Slot:
    """One execution context with its stream, pinned host and device buffers and events.

    Made, used and freed only while the backend's CUDA context is current. Events are
    blocking-sync: waiting for one sleeps instead of spinning a core the reader and
    writer threads need.
    """

    def __init__(self, cuda: Any, context: Any, index: int) -> None:
        self.cuda = cuda
        self.context = context
        self.index = index
        self.stream = cuda.Stream()
        try:
            flags = cuda.event_flags.BLOCKING_SYNC
            self.ev_start, self.ev_h2d, self.ev_compute, self.ev_done = (cuda.Event(flags) for _ in range(4))
        except BaseException:
            self.stream = None  # freed now, with the context current (the traceback keeps this object)
            raise
        self.host: dict[str, np.ndarray] = {}  # flat page-locked arrays, grown on demand
        self.dev: dict[str, Any] = {}
        # True from the first queued copy until ev_done is waited for: the pinned buffers
        # may still be read or written by the GPU and must not be touched
        self.in_flight = False
        self.out: tuple[np.ndarray, np.ndarray] | None = None

    def reserve(self, name: str, count: int, dtype: np.dtype) -> None:
        """Make sure `name` holds `count` elements on host and device (grow by 25% to avoid churn)."""
        have = self.host.get(name)
        if have is not None and name in self.dev and have.size >= count and have.dtype == dtype:
            return
        self.wait()  # never free or regrow under a running copy
        self._drop(name)
        count = int(count * 1.25)
        nbytes = count * np.dtype(dtype).itemsize
        self.host[name] = self.cuda.pagelocked_empty(count, dtype)
        self.dev[name] = self.cuda.mem_alloc(
            nbytes
        )  # (a failure leaves the pair incomplete: redone next time)
        self.cuda.memset_d8(self.dev[name], 0, nbytes)  # defined content for timing-only runs

    def wait(self) -> None:
        """Block (sleeping) until everything queued on this slot has finished."""
        if self.in_flight:
            self.ev_done.synchronize()
            self.in_flight = False

    def _drop(self, name: str) -> None:
        dev = self.dev.pop(name, None)
        if dev is not None:
            dev.free()
        host = self.host.pop(name, None)
        base = getattr(host, "base", None)
        if base is not None and hasattr(base, "free"):
            base.free()  # page-locked memory back now, with the context current

    def free(self) -> None:
        """Finish queued work, then release buffers, events, stream and the TensorRT context."""
        try:
            self.wait()
            self.stream.synchronize()
        finally:
            for name in list({*self.host, *self.dev}):
                self._drop(name)
            self.out = None
            self.ev_start = self.ev_h2d = self.ev_compute = self.ev_done = None
            self.stream = None
            self.context = None
