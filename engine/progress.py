"""Per-frame progress: a bar on a terminal, one greppable line per frame otherwise."""

from __future__ import annotations

import sys
import threading
import time

from .render import FrameReport


class ProgressPrinter:
    def __init__(self, total: int, backend: str, *, fancy: bool, quiet: bool = False) -> None:
        self.total, self.backend, self.fancy, self.quiet = total, backend, fancy, quiet
        self.count = 0
        self.start = time.perf_counter()
        self.lock = threading.Lock()
        self.silent = False

    def report(self, r: FrameReport) -> None:
        """Print one frame's line; a closed stdout or stderr (a pipe whose reader left) silences it,
        it never fails the frame."""
        try:
            self._report(r)
        except (BrokenPipeError, ValueError):
            self.quiet = self.fancy = False
            self.silent = True

    def _report(self, r: FrameReport) -> None:
        if self.silent:
            return
        with self.lock:
            self.count += 1
            frame = "-" if r.frame is None else str(r.frame)
            if r.status == "failed":
                self._clear()
                print(
                    f"gsrender: error: frame {frame}: {r.error.message if r.error else 'failed'}",
                    file=sys.stderr,
                    flush=True,
                )
            elif self.quiet:
                pass
            elif self.fancy:
                done = self.count / max(self.total, 1)
                bar = "#" * int(done * 30)
                eta = (time.perf_counter() - self.start) / self.count * (self.total - self.count)
                sys.stderr.write(
                    f"\r[{bar:<30}] {self.count}/{self.total} frame {frame} {r.seconds:.2f}s eta {eta:.0f}s "
                )
                sys.stderr.flush()
            else:
                print(
                    f"frame {frame} {r.status} {r.seconds:.3f}s backend={self.backend} -> {r.target}",
                    flush=True,
                )

    def _clear(self) -> None:
        if self.fancy:
            sys.stderr.write("\r" + " " * 79 + "\r")

    def close(self) -> None:
        if self.fancy and not self.quiet:
            sys.stderr.write("\n")
            sys.stderr.flush()
