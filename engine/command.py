"""How every `gsrender` verb ends: a documented exit code and at most one error line, never a traceback.

Each verb's main(argv) hands its body to `run_command`, so `gsrender X`, `python -m ...` and
`gsrender-train` fail the same way, and farm tooling can rely on the codes in `gsrender --help`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

from .environment import env_flag
from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED, GsRenderError, describe_exception

EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell reports for a tool killed by SIGPIPE

_signals_received: list[int] = []  # SIGTERM/SIGINT seen by gsrender's handlers in this process


class SignalInterrupt(KeyboardInterrupt):
    """What gsrender's SIGTERM/SIGINT handlers raise: every `except KeyboardInterrupt` catches it,
    but it is not the plain class. CPython remembers a plain KeyboardInterrupt that left any
    eval() (collections.namedtuple evaluates code while a module imports) and, even after gsrender
    handled it and chose exit 130, ends the process by SIGINT instead."""


def note_signal(signum: int) -> None:
    """Record a SIGTERM/SIGINT: whatever exception it then breaks out of (a library import it
    interrupted fails as "ImportError: initialization failed"), the process ends as interrupted."""
    _signals_received.append(signum)


def signal_received() -> bool:
    return bool(_signals_received)


def _on_startup_signal(signum: int, _frame: object) -> None:
    note_signal(signum)
    raise SignalInterrupt


def install_startup_signals() -> None:
    """From the first moment of the command, SIGTERM (like SIGINT) interrupts start-up: exit 130
    with one line, not 143 (killed before a handler was set). Handlers another program set stay."""
    if threading.current_thread() is not threading.main_thread():
        return  # Python allows handlers only there
    for sig in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(sig, _on_startup_signal)


def run_command(
    body: Callable[[list[str]], int | None],
    argv: list[str] | None,
    verb: str | None,
    *,
    label: str = "gsrender",
) -> int:
    """Run `body(argv)` (argv None: the process's own arguments) and return its exit code.

    `verb` names the command in messages ('gsrender info'); None is the render itself.
    A GsRenderError is one `LABEL: error: MESSAGE` line and its exit code; Ctrl-C or SIGTERM is
    130, whatever exception the signal broke out of; a closed stdout is 141 with stdout silenced;
    anything else is a bug: one line, exit 70, and the traceback only with --debug or
    GSRENDER_DEBUG=1.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:  # a signal may land while the handlers are being checked: inside the try
        _signals_received.clear()  # one command's signals (a program may run several in turn)
        install_startup_signals()
        env_flag("GSRENDER_DEBUG")  # a bad value is a usage error here, not a surprise later
        return int(body(argv) or 0)
    except Exception as exc:
        if not signal_received():
            return _failed(exc, argv, verb, label)
        return _interrupted(verb)
    except KeyboardInterrupt:
        return _interrupted(verb)


def _interrupted(verb: str | None) -> int:
    during = f"'gsrender {verb}'" if verb else "start-up; nothing was rendered"
    print(f"gsrender: interrupted during {during}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _failed(exc: Exception, argv: list[str], verb: str | None, label: str) -> int:
    """The exit code of an exception that ended a command, after its one line."""
    if isinstance(exc, GsRenderError):
        print(f"{label}: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, BrokenPipeError):
        quiet_stdout()
        return EXIT_BROKEN_PIPE
    if isinstance(exc, MemoryError):
        print("gsrender: error: out of memory", file=sys.stderr)
        return EXIT_INTERNAL
    if debug_enabled(argv):
        logging.getLogger("gsrender").error("unexpected exception", exc_info=exc)
    where = f"'gsrender {verb}'" if verb else "gsrender"
    print(
        f"gsrender: error: internal error in {where}: {describe_exception(exc)} "
        "(re-run with --debug or GSRENDER_DEBUG=1 for the traceback)",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


def debug_enabled(argv: list[str]) -> bool:
    """--debug on the command line or GSRENDER_DEBUG=1 (true, yes, on): show tracebacks."""
    if "--debug" in argv:
        return True
    try:
        return env_flag("GSRENDER_DEBUG")
    except GsRenderError:
        return False  # refused with its own line before the command ran


def quiet_stdout() -> None:
    """stdout's reader went away: point stdout at /dev/null so the interpreter's final flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
