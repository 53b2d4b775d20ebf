"""Errors the engine reports to users, each mapped to a documented exit code.

Every message names the file and the problem on one line, because that line is what
a compositor or a farm log shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# Exit codes (documented in README "Exit codes"). Schedulers use them to decide
# retry (transient) versus fail (bad input / bad command).
EXIT_OK = 0
EXIT_FRAMES_FAILED = 1  # some frames failed (bad input) and were skipped or stopped the run
EXIT_USAGE = 2  # bad command line (argparse also uses 2)
EXIT_BAD_INPUT = 3  # an input frame is missing, corrupt or unsupported: retrying will not help
EXIT_OUTPUT = 4  # cannot write an output (permissions, disk full): fix the destination
EXIT_BACKEND = 5  # model or inference backend failed to load or run
EXIT_INTERNAL = (
    70  # an unexpected exception (a bug in gsrender): retrying will not help (sysexits EX_SOFTWARE)
)
EXIT_INTERRUPTED = 130  # SIGINT/SIGTERM: transient, safe to retry

# What one error line may carry: a file can declare thousands of parts, layers or tensors, and
# a line that lists them all is no longer one line a farm log can show.
MAX_LISTED = 8
MAX_PROBLEM = 1000  # characters of the problem text (the path is not cut)


def listing(items: Iterable[object], sep: str = ", ", limit: int = MAX_LISTED) -> str:
    """The first ``limit`` items joined, then how many more there are: 'a, b, ... and 992 more'."""
    items = [str(item) for item in items]
    if len(items) <= limit:
        return sep.join(items)
    return sep.join(items[:limit]) + f"{sep}... and {len(items) - limit} more"


class GsRenderError(Exception):
    """Base class: an error with a one-line user message and an exit code."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(self.message)

    @property
    def message(self) -> str:
        problem = self.problem
        if len(problem) > MAX_PROBLEM:  # the safety net behind listing(): one line stays one line
            problem = f"{problem[:MAX_PROBLEM]}... ({len(problem) - MAX_PROBLEM} more characters)"
        return f"{self.path}: {problem}" if self.path else problem


class InputError(GsRenderError):
    """An input frame cannot be used (missing, corrupt, wrong channels, NaN...)."""

    exit_code = EXIT_BAD_INPUT


class OutputError(GsRenderError):
    """An output frame cannot be written."""

    exit_code = EXIT_OUTPUT


class UsageError(GsRenderError):
    """The command line or an option value is invalid."""

    exit_code = EXIT_USAGE


class BackendError(GsRenderError):
    """A model or inference backend cannot be loaded or run."""

    exit_code = EXIT_BACKEND


class InternalError(GsRenderError):
    """An unexpected exception, reported as one line (the traceback only with --debug)."""

    exit_code = EXIT_INTERNAL


def describe_exception(exc: BaseException) -> str:
    """'TypeError: first line of the message', short enough for one log line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
