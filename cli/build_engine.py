"""`gsrender build-engine`: build (once per GPU) and cache the TensorRT engine the render runs.

    gsrender build-engine [--model M] [--precision fp16|fp32] [--max-tile N] [--max-batch B] [--cache DIR]
    gsrender build-engine --list [--cache DIR]
    gsrender build-engine --dry-run            (what would be built; works without a GPU)

A thin command line over gsrender.engine.backends.tensorrt: the request (request.py), the cache
(cache.py) and the loader (loader.py), which builds when the cache has no valid engine. Farm jobs
run it as their engine step (cli/job/), so its messages and exit codes are
part of the interface: 0 built or already cached, 2 bad option, 5 no TensorRT/GPU or the
build failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gsrender.engine.backends.base import default_model_path
from gsrender.engine.backends.tensorrt.cache import (
    CACHE_ENV,
    LOCK_TIMEOUT_S,
    PRECISIONS,
    BuildRequest,
    check_engine,
    default_cache_dir,
    list_engines,
)
from gsrender.engine.backends.tensorrt.loader import ensure_engine
from gsrender.engine.backends.tensorrt.node import NodeIdentity, detect_node
from gsrender.engine.backends.tensorrt.profile import DEFAULT_MAX_BATCH, DEFAULT_MAX_TILE, select_profile
from gsrender.engine.backends.tensorrt.request import prepare_request, read_onnx_metadata
from gsrender.engine.command import run_command
from gsrender.engine.errors import BackendError
from gsrender.models import metadata as M


def build_parser() -> argparse.ArgumentParser:
    """The options of `gsrender build-engine`."""
    p = argparse.ArgumentParser(
        prog="gsrender build-engine",
        description="Build the TensorRT engine for this node's GPU "
        "(once; concurrent tasks wait and reuse it).",
        epilog=f"Cache folder: ${CACHE_ENV}, else ~/.cache/gsrender/engines. Exit codes: 0 built or already "
        "cached, 2 bad option, 5 no TensorRT/GPU or the build failed.",
    )
    p.add_argument(
        "--model", default=None, help=f"FP32 ONNX model (default: {default_model_path().name} bundled)"
    )
    p.add_argument("--precision", choices=PRECISIONS, default="fp16")
    p.add_argument(
        "--max-tile",
        type=int,
        default=DEFAULT_MAX_TILE,
        help=f"largest tile core the engine takes, pixels (default {DEFAULT_MAX_TILE}, the keyer's "
        "auto tile); larger inputs are sub-tiled exactly",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH,
        help=f"tiles per call (default {DEFAULT_MAX_BATCH})",
    )
    p.add_argument("--cache", default=None, help="engine cache folder")
    p.add_argument(
        "--fp16-model",
        default=None,
        help="FP16 ONNX for strongly typed FP16 builds (TensorRT 11); "
        "default: generated, or <model>_fp16.onnx",
    )
    p.add_argument(
        "--typing",
        choices=("auto", "strong", "weak"),
        default="auto",
        help="auto: TensorRT 10 FP16 flag, TensorRT 11 strongly typed",
    )
    p.add_argument(
        "--workspace-gb", type=float, default=None, help="builder workspace limit (default: TensorRT's)"
    )
    p.add_argument("--force", action="store_true", help="rebuild even when a valid engine is cached")
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=LOCK_TIMEOUT_S,
        help="seconds to wait for another task building the same engine",
    )
    p.add_argument("--list", action="store_true", help="list cached engines and exit")
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be built and exit (no GPU needed)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="TensorRT info log")
    return p


def _print_list(cache: Path, node: NodeIdentity | None) -> None:
    entries = list_engines(cache, node)
    print(f"engine cache: {cache} ({len(entries)} engine(s))")
    for e in entries:
        state = {True: "usable here", False: "other GPU/TensorRT", None: "?"}[e["usable"]]
        print(
            f"  {Path(e['path']).name}  {e['bytes'] / 1e6:.1f} MB  {e.get('precision', '?')}  "
            f"{e.get('gpu_name', '?')} sm {e.get('compute_capability', '?')}  "
            f"TensorRT {e.get('trt_version', '?')}"
            f"  [{state}]"
        )


def main(argv: list[str] | None = None) -> int:
    """`gsrender build-engine`: 0 when the engine is built or already cached; errors as every verb's."""
    return run_command(_main, argv, "build-engine", label="gsrender build-engine")


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = Path(args.model) if args.model else default_model_path()
    cache = Path(args.cache).expanduser() if args.cache else default_cache_dir()
    node: NodeIdentity | None
    try:
        node = detect_node()
        missing = None
    except BackendError as exc:
        node, missing = None, exc
    if args.list:
        _print_list(cache, node)
        return 0
    if args.dry_run:
        if not model.is_file():
            raise BackendError(model, "model file not found")
        meta = read_onnx_metadata(model)
        prof = select_profile(
            args.max_tile,
            int(meta.get(M.HALO, 0)),
            int(meta.get(M.STRIDE, 1)),
            args.max_batch,
        )
        print(f"model:   {model}")
        print(f"profile: min {prof.min} opt {prof.opt} max {prof.max} x{prof.copies}")
        print(f"cache:   {cache}")
        if node is None:
            print(f"node:    cannot build here: {missing.message if missing else '?'}")
            return 0
        req = _request_from_args(args, model, node, cache)
        _, reason = check_engine(req.engine_path(cache), req)
        print(f"node:    {node.describe()}")
        print(
            f"onnx:    {req.onnx_path} ({'strongly typed' if req.strongly_typed else 'FP16 builder flag'})"
            if req.precision == "fp16"
            else f"onnx:    {req.onnx_path}"
        )
        print(f"engine:  {req.engine_path(cache)} ({reason or 'cached and valid'})")
        return 0
    if node is None:
        assert missing is not None
        raise missing
    req = _request_from_args(args, model, node, cache)
    entry = ensure_engine(req, cache, force=args.force, lock_timeout=args.lock_timeout)
    state = "built" if entry.built else "already cached"
    print(f"{entry.path} ({state}; {req.precision_label}, {node.describe()}, profile max {req.profile.max})")
    return 0


def _request_from_args(
    args: argparse.Namespace, model: Path, node: NodeIdentity, cache: Path
) -> BuildRequest:
    """The build request the command line describes (shared by --dry-run and the build)."""
    return prepare_request(
        model,
        precision=args.precision,
        node=node,
        cache_dir=cache,
        max_tile=args.max_tile,
        max_batch=args.max_batch,
        fp16_model=args.fp16_model,
        typing=args.typing,
        workspace_gb=args.workspace_gb,
        verbose=args.verbose,
    )


if __name__ == "__main__":
    sys.exit(main())
