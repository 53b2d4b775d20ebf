"""The two helper modes of `gsrender job` that the template runs on farm hosts (not meant to be typed):

``gsrender job --build-engine-if-available [--required] [build-engine options]`` and
``gsrender job --run-chunk START --chunk-size N --last END -- RENDER ARGS``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from gsrender.cli.job.template import RUN_CHUNK
from gsrender.cli.render import main as render_command
from gsrender.engine.command import run_command
from gsrender.engine.errors import EXIT_BACKEND, EXIT_OK, UsageError


def _gpu_problem() -> str | None:
    """Why this host has no usable NVIDIA GPU, or None. Cheap: no CUDA library is loaded."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "none", "NoDevFiles"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    gpus = Path("/proc/driver/nvidia/gpus")
    with contextlib.suppress(OSError):
        if gpus.is_dir() and any(gpus.iterdir()):
            return None
    smi = shutil.which("nvidia-smi")
    if smi:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            run = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
            if run.returncode == 0 and "GPU" in run.stdout:
                return None
    return "no NVIDIA GPU found"


def _engine_build_problem() -> str | None:
    """Why `gsrender build-engine` cannot run on this host, or None."""
    import importlib.util

    if (gpu := _gpu_problem()) is not None:
        return gpu
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed (pip install 'gsrender[tensorrt]')"
    try:
        from gsrender.cli import build_engine  # noqa: F401 - only: does it load here?
    except ImportError as exc:
        return f"gsrender build-engine is unavailable ({exc})"
    return None


def _build_engine(argv: list[str]) -> int:
    """`gsrender build-engine ARGV` in this process, ending as that verb does (one line, exit code)."""
    from gsrender.cli.build_engine import main

    return run_command(main, argv, "build-engine")


def build_engine_if_available(argv: list[str]) -> int:
    """Run `gsrender build-engine` where it can run; elsewhere say why and succeed.

    With --required (the render asked for --backend tensorrt) a missing GPU stack or a failed
    build fails the task; otherwise a failed build is a warning, because the `auto` backend
    still renders without the engine.
    """
    required = "--required" in argv
    build_args = [a for a in argv if a != "--required"]
    host = socket.gethostname()
    problem = _engine_build_problem()
    if problem is not None:
        if required:
            print(
                f"gsrender: error: --backend tensorrt, but {host} cannot build an engine: {problem}",
                file=sys.stderr,
            )
            return EXIT_BACKEND
        print(f"gsrender build-engine: skipped on {host}: {problem}", flush=True)
        return EXIT_OK
    code = _build_engine(build_args)
    if code != EXIT_OK and not required:
        print(
            f"gsrender build-engine: warning: the build failed on {host} (exit {code}); "
            "rendering goes on with the backend 'auto' picks",
            flush=True,
        )
        return EXIT_OK
    return code


def run_chunk(argv: list[str]) -> int:
    """Render frames START..min(START+N-1, LAST): the INT-range template's chunk, for old schedulers."""
    if "--" not in argv:
        raise UsageError(None, f"{RUN_CHUNK} START --chunk-size N --last END -- RENDER ARGS")
    cut = argv.index("--")
    p = argparse.ArgumentParser(prog=f"gsrender job {RUN_CHUNK}")
    p.add_argument("start", type=int)
    p.add_argument("--chunk-size", type=int, required=True)
    p.add_argument("--last", type=int, required=True)
    args = p.parse_args(argv[:cut])
    if args.chunk_size < 1:
        raise UsageError(None, "--chunk-size must be 1 or more")
    end = min(args.start + args.chunk_size - 1, args.last)
    return render_command([*argv[cut + 1 :], "--frames", f"{args.start}-{end}"])
