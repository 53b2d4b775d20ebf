"""Get an engine: from the cache, or built once for this node. The only place that builds.

The runner (engine/backends/tensorrt/runner.py) and `gsrender build-engine` both come
here, so the rule for when an engine is built lives in one function, `ensure_engine`:
fast path without the lock when a valid engine is cached; otherwise take the engine's
lock, check again (another task may just have finished it), build into a temp file and
rename the engine and its sidecar into place. `allow_build=False` turns a miss into an
error that says how to build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ...atomic_files import atomic_write_bytes
from ...errors import BackendError
from ..cuda_context import first_line, gpu_errors
from .builder import BuilderFn, build_with_tensorrt, trt_logger
from .cache import (
    LOCK_TIMEOUT_S,
    BuildRequest,
    EngineEntry,
    default_cache_dir,
    file_lock,
    lock_path,
    read_sidecar,
    sidecar_path,
    verify_engine,
)
from .profile import Profile

log = logging.getLogger("gsrender")


def ensure_engine(
    request: BuildRequest,
    cache_dir: str | Path | None = None,
    builder: BuilderFn | None = None,
    *,
    force: bool = False,
    allow_build: bool = True,
    lock_timeout: float = LOCK_TIMEOUT_S,
) -> EngineEntry:
    """Load the cached engine for `request`, building it (once per node) when missing or stale.

    Fast path without the lock when a valid engine is there. Otherwise take the lock,
    check again (another task may just have finished it), then build into a temp file
    and rename the engine and its sidecar into place.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    engine = request.engine_path(cache)
    if not force:
        data, meta, reason = verify_engine(engine, request)
        if data is not None:
            return EngineEntry(engine, meta, data, built=False)
        if not allow_build:
            raise BackendError(
                engine, f"no usable TensorRT engine: {reason}; run 'gsrender build-engine' on this node"
            )
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackendError(cache, f"cannot create the engine cache folder ({exc.strerror or exc})") from None
    with file_lock(lock_path(engine), lock_timeout, what=f"TensorRT engine {engine.name}"):
        data, meta, reason = verify_engine(engine, request)
        if data is not None and not force:
            return EngineEntry(engine, meta, data, built=False)
        if engine.exists() and reason != "no engine built yet":
            log.warning("gsrender: rebuilding %s: %s", engine.name, "forced" if force else reason)
        builder = builder or build_with_tensorrt
        log.info(
            "gsrender: building TensorRT engine %s (%s) for %s; this takes a few minutes, once per node",
            engine.name,
            request.precision_label,
            request.node.describe(),
        )
        t0 = time.perf_counter()
        blob = builder(request)
        if blob is None:
            raise BackendError(request.onnx_path, "TensorRT engine build failed (see the TensorRT log above)")
        data = bytes(memoryview(blob))
        if not data:
            raise BackendError(request.onnx_path, "TensorRT engine build produced an empty engine")
        seconds = time.perf_counter() - t0
        meta = {
            **request.key_fields(),
            "engine_sha256": hashlib.sha256(data).hexdigest(),
            "engine_bytes": len(data),
            "onnx": str(request.onnx_path),
            "source_model": str(request.source_model or request.onnx_path),
            "strongly_typed": request.strongly_typed,
            "built_by": f"{socket.gethostname()} pid {os.getpid()}",
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(seconds, 1),
        }
        # Engine first, sidecar second: a reader that sees the new engine with the old (or no)
        # sidecar fails the SHA check and comes to this lock, where it waits for us.
        atomic_write_bytes(engine, data)
        atomic_write_bytes(sidecar_path(engine), (json.dumps(meta, indent=2) + "\n").encode())
        log.info("gsrender: built %s in %.0fs (%.1f MB)", engine.name, seconds, len(data) / 1e6)
        return EngineEntry(engine, meta, data, built=True)


def find_engine(request: BuildRequest, cache_dir: str | Path | None = None) -> EngineEntry | None:
    """A valid cached engine for this model, node and precision, without building or locking.

    The exact key first; else one built with other tile settings (e.g. `gsrender
    build-engine --max-batch 4` as the farm's engine step, while render tasks ask for the
    defaults): any profile is usable, since the backend sub-tiles what it does not cover.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    exact = request.engine_path(cache)
    data, meta, _ = verify_engine(exact, request)
    if data is not None:
        return EngineEntry(exact, meta, data, built=False)
    want = request.key_fields()
    same = ("model_sha256", "trt_version", "gpu_name", "compute_capability", "precision")
    for engine in sorted(cache.glob("*.engine"), key=lambda p: p.stat().st_mtime, reverse=True):
        meta = read_sidecar(engine) or {}
        if engine == exact or any(meta.get(k) != want[k] for k in same) or "profile" not in meta:
            continue
        try:
            other = replace(request, profile=Profile.from_dict(meta["profile"]))
        except (KeyError, TypeError, ValueError):
            continue
        data, meta, _ = verify_engine(engine, other)
        if data is not None:
            log.info("gsrender: using cached engine %s (built with other tile settings)", engine.name)
            return EngineEntry(engine, meta, data, built=False)
    return None


def load_engine_file(engine: str | Path, request: BuildRequest) -> EngineEntry:
    """An engine named explicitly (not from the cache): refused, never rebuilt, when foreign."""
    path = Path(engine)
    data, meta, reason = verify_engine(path, request)
    if data is None:
        raise BackendError(
            path,
            f"refusing this TensorRT engine: {reason}. Build one for this node with "
            "'gsrender build-engine' (or drop the explicit engine and use the cache)",
        )
    return EngineEntry(path, meta, data, built=False)


@dataclass
class LoadedEngine:
    """A deserialized engine, the TensorRT runtime that made it, and the file it came from."""

    entry: EngineEntry
    runtime: Any
    engine: Any


def _deserialize(runtime: Any, data: bytes) -> Any:
    """The engine, or None when TensorRT refuses the plan (it logs why; some versions raise)."""
    try:
        return runtime.deserialize_cuda_engine(data)
    except Exception as exc:
        log.warning("gsrender: TensorRT refused the engine: %s", first_line(exc))
        return None


def load_engine(
    trt: Any,
    request: BuildRequest,
    cache_dir: str | Path | None = None,
    *,
    engine_path: str | Path | None = None,
    allow_build: bool = True,
) -> LoadedEngine:
    """The engine for `request`, deserialized; call with the CUDA context current.

    An explicit `engine_path` is used as is or refused. Otherwise the cached engine (also
    one built with other tile settings), else one built now (`allow_build`). A cached
    engine TensorRT cannot load (its sidecar matches, the plan does not) is rebuilt once.
    """
    if engine_path is not None:
        entry = load_engine_file(engine_path, request)
    else:
        entry = find_engine(request, cache_dir) or ensure_engine(request, cache_dir, allow_build=allow_build)
    with gpu_errors("creating the TensorRT runtime", entry.path):
        runtime = trt.Runtime(trt_logger(trt))
    engine = _deserialize(runtime, entry.data)
    if engine is None and engine_path is None and not entry.built:
        log.warning("gsrender: TensorRT could not load the cached engine %s; rebuilding it", entry.path.name)
        entry = ensure_engine(request, cache_dir, force=True)
        engine = _deserialize(runtime, entry.data)
    if engine is None:
        raise BackendError(
            entry.path,
            f"TensorRT {trt.__version__} cannot load this engine "
            "(see the TensorRT log above); rebuild it with 'gsrender build-engine --force'",
        )
    return LoadedEngine(entry, runtime, engine)
