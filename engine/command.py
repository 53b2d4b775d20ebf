"""How every `gsrender` verb ends: a documented exit code and at most one error line, never a traceback.

Each verb's main(argv) hands its body to `run_command`, so `gsrender X`, `python -m ...` and
`gsrender-train` fail the same way, and farm tooling can rely on the codes in `gsrender --help`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable

from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED, GsRenderError, describe_exception

EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell reports for a tool killed by SIGPIPE


def run_command(
    body: Callable[[list[str]], int | None],
    argv: list[str] | None,
    verb: str | None,
    *,
    label: str = "gsrender",
) -> int:
    """Run `body(argv)` (argv None: the process's own arguments) and return its exit code.

    `verb` names the command in messages ('gsrender info'); None is the render itself.
    A GsRenderError is one `LABEL: error: MESSAGE` line and its exit code; Ctrl-C is 130;
    a closed stdout is 141 with stdout silenced; anything else is a bug: one line, exit 70,
    and the traceback only with --debug or GSRENDER_DEBUG=1.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(body(argv) or 0)
    except GsRenderError as exc:
        print(f"{label}: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        during = f"'gsrender {verb}'" if verb else "start-up; nothing was rendered"
        print(f"gsrender: interrupted during {during}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        quiet_stdout()
        return EXIT_BROKEN_PIPE
    except MemoryError:
        print("gsrender: error: out of memory", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:
        if debug_enabled(argv):
            logging.getLogger("gsrender").exception("unexpected exception")
        where = f"'gsrender {verb}'" if verb else "gsrender"
        print(
            f"gsrender: error: internal error in {where}: {describe_exception(exc)} "
            "(re-run with --debug or GSRENDER_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def debug_enabled(argv: list[str]) -> bool:
    """--debug on the command line or GSRENDER_DEBUG set (not to 0): show tracebacks."""
    return "--debug" in argv or os.environ.get("GSRENDER_DEBUG", "") not in ("", "0")


def quiet_stdout() -> None:
    """stdout's reader went away: point stdout at /dev/null so the interpreter's final flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
