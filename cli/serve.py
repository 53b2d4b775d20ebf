"""`gsrender serve`: run the local worker the GsKey OpenFX plugin talks to.

The command line only: the worker (socket, shared memory, warm keyer) is gsrender.ofx_bridge.worker.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
from pathlib import Path

from gsrender.engine import allocator
from gsrender.ofx_bridge.protocol import default_socket_path
from gsrender.ofx_bridge.worker import DEFAULT_IDLE_TIMEOUT, AlreadyRunning, WarmKeyer, Worker, log


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gsrender serve",
        description="Run the local gsrender worker that the GsKey OpenFX plugin talks to. The plugin "
        "starts it on demand; run it by hand (-v) to watch requests in the terminal.",
    )
    p.add_argument("--socket", help=f"Unix socket path (default: {default_socket_path()})")
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        help=f"exit after this many seconds without requests (0 = never; default {DEFAULT_IDLE_TIMEOUT:g})",
    )
    p.add_argument(
        "--cache-frames",
        type=int,
        default=2,
        help="keyed frames kept for further render windows of the same frame (default 2)",
    )
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = auto)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return p


def main(argv: list[str] | None = None) -> int:
    """`gsrender serve`: run the worker until idle or signalled; errors end as every verb's do."""
    from gsrender.engine.command import run_command

    return run_command(_main, argv, "serve")


def _main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not math.isfinite(args.idle_timeout) or args.idle_timeout < 0:
        parser.error(f"--idle-timeout must be a finite number of seconds, 0 or more, got {args.idle_timeout}")
    if args.cache_frames < 1 or args.threads < 0:
        parser.error("--cache-frames must be 1 or more and --threads 0 (auto) or more")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s gsrender serve[%(process)d]: %(message)s",
        stream=sys.stderr,
    )
    path = Path(args.socket).expanduser() if args.socket else default_socket_path()
    allocator.tune_for_frames()
    worker = Worker(path, WarmKeyer(args.cache_frames, args.threads), args.idle_timeout)
    try:
        worker.bind()
    except AlreadyRunning:
        log.info("another worker already serves %s", path)
        return 0
    except OSError as exc:
        print(f"gsrender serve: error: cannot listen on {path}: {exc}", file=sys.stderr)
        return 1

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d, exiting", signum)
        worker.stop()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
