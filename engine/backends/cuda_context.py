"""The CUDA context the TensorRT backend and the engine builder share, made current per use.

pycuda keeps a context stack per thread and aborts the process when a thread exits
with anything left on it; every pycuda object (stream, event, page-locked or device
allocation) captures the context current when it is made and needs a current context
to be made at all. The OFX worker builds and runs backends in per-connection threads
that start and exit, and the CLI runs inference on its own thread.

Choice: retain the device's primary context once per process (no push) and push/pop
it around every use, in whatever thread the use happens: `with ctx.current(): ...`.
Nothing stays on any thread's stack between calls, so a thread can exit at any time;
objects are freed inside the same `current()` block, so pycuda never has to activate
a context from a foreign thread (which it refuses, leaking the object). The primary
context is also the one TensorRT's runtime API binds by itself, so pycuda's buffers
and TensorRT's engine live in one context without any cudaSetDevice dance.

The alternative, one dedicated GPU thread owning a context, would need every call
marshalled through a queue, including the `infer_batches` generator that hands out
views of pinned buffers between yields; push/pop is one cheap driver call each way
and keeps the backend's threading contract unchanged (one user at a time, any thread).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import BackendError, GsRenderError


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def gpu_errors(what: str, path: Any = None) -> Iterator[None]:
    """Turn whatever pycuda or TensorRT raise (LogicError, MemoryError, RuntimeError, ...)
    into one BackendError naming the step, so `--backend auto` can fall back."""
    try:
        yield
    except GsRenderError:
        raise
    except Exception as exc:
        raise BackendError(path, f"{what} failed: {type(exc).__name__}: {first_line(exc)}") from None


class PrimaryContext:
    """A device's primary context, retained once; current only inside `current()`."""

    def __init__(self, cuda: Any, index: int = 0) -> None:
        self.cuda = cuda
        self.index = index
        self.device = cuda.Device(index)
        self._ctx = self.device.retain_primary_context()  # retains, does not push

    @contextlib.contextmanager
    def current(self) -> Iterator[None]:
        """Push the context on this thread for the block; popped however the block ends."""
        with gpu_errors("making the CUDA context current"):
            self._ctx.push()
        try:
            yield
        finally:
            self.cuda.Context.pop()


_lock = threading.Lock()
_contexts: dict[int, PrimaryContext] = {}


def primary_context(index: int = 0) -> PrimaryContext:
    """The process's retained primary context of CUDA device `index` (made on first use)."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise BackendError(None, f"pycuda unavailable ({exc}): pip install 'gsrender[tensorrt]'") from None
    with _lock:
        ctx = _contexts.get(index)
        if ctx is None or ctx.cuda is not cuda:  # (tests swap the pycuda module)
            try:
                cuda.init()
                if cuda.Device.count() <= index:
                    raise BackendError(None, "no usable CUDA GPU: the driver lists no device")
                ctx = PrimaryContext(cuda, index)
            except GsRenderError:
                raise
            except Exception as exc:  # no driver, no device, driver too old
                raise BackendError(None, f"no usable CUDA GPU: {first_line(exc)}") from None
            _contexts[index] = ctx
        return ctx
