"""Per-frame progress: a bar on a terminal, one greppable line per frame otherwise."""

from __future__ import annotations

import sys
import threading
import time

from .command import quiet_stdout
from .render import FrameReport


class ProgressPrinter:
    def __init__(self, total: int, backend: str, *, fancy: bool, quiet: bool = False) -> None:
        self.total, self.backend, self.fancy, self.quiet = total, backend, fancy, quiet
        self.count = 0
        self.start = time.perf_counter()
        self.lock = threading.Lock()
        # Each stream is given up on its own: a closed stdout (`| head -1`) must never silence
        # the error lines on stderr.
        self.stdout_closed = False
        self.stderr_closed = False

    def report(self, r: FrameReport) -> None:
        """Print one frame's line; a closed stream (a pipe whose reader left) silences that stream
        only, and never fails the frame."""
        with self.lock:
            self.count += 1
            frame = "-" if r.frame is None else str(r.frame)
            if r.status == "failed":
                self._clear()
                self._write(
                    f"gsrender: error: frame {frame}: {r.error.message if r.error else 'failed'}\n", True
                )
            elif self.quiet:
                pass
            elif self.fancy:
                done = self.count / max(self.total, 1)
                bar = "#" * int(done * 30)
                eta = (time.perf_counter() - self.start) / self.count * (self.total - self.count)
                self._write(
                    f"\r[{bar:<30}] {self.count}/{self.total} frame {frame} {r.seconds:.2f}s eta {eta:.0f}s ",
                    True,
                )
            else:
                self._write(
                    f"frame {frame} {r.status} {r.seconds:.3f}s backend={self.backend} -> {r.target}\n", False
                )

    def _write(self, text: str, to_stderr: bool) -> None:
        if self.stderr_closed if to_stderr else self.stdout_closed:
            return
        stream = sys.stderr if to_stderr else sys.stdout
        if stream is None:  # started with that descriptor closed (`>&-`)
            return
        try:
            stream.write(text)
            stream.flush()
        except (BrokenPipeError, ValueError):  # ValueError: the stream object itself was closed
            if to_stderr:
                self.stderr_closed = True
                self.fancy = False
            else:
                self.stdout_closed = True
                quiet_stdout()  # nobody reads it: the interpreter's last flush must not fail either

    def _clear(self) -> None:
        if self.fancy:
            self._write("\r" + " " * 79 + "\r", True)

    def close(self) -> None:
        if self.fancy and not self.quiet:
            self._write("\n", True)
