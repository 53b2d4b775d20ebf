"""The engine cache on disk: key, folder layout, lock, atomic write, and the check of an engine.

A TensorRT engine is only valid for the GPU model, compute capability and TensorRT
version it was built with, and for the input shapes of its optimization profile. So
the cache key is a hash of: the ONNX file TensorRT parses, the TensorRT version, the
GPU name, its compute capability, the precision and the profile. Each engine has a
sidecar JSON with those fields and the engine's own SHA-256; an engine whose sidecar
does not match this node (another GPU, another TensorRT, a truncated copy) is never
deserialized: the cache rebuilds it, an explicitly named engine is refused.

Farm nodes run several tasks at once and all of them may need the engine: the first
takes an exclusive `fcntl.flock` on `<engine>.lock`, builds into a temporary file in
the same folder and renames it into place (atomic on POSIX); the others block on the
lock, then find the finished engine and load it. A crashed builder releases its lock
with its process, and leaves no partial engine behind. Keep the cache on a local disk
(flock over NFS is not reliable everywhere). Who builds, and when, is the loader's
business (engine/backends/tensorrt/loader.py); this module only stores and checks.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...environment import env_folder, env_path
from ...errors import BackendError
from .node import NodeIdentity
from .profile import Profile

log = logging.getLogger("gsrender")

CACHE_ENV = "GSRENDER_ENGINE_CACHE"
SCHEMA = 1  # bump when the engine file layout or key fields change: old entries then miss the cache
PRECISIONS = ("fp16", "fp32")
LOCK_TIMEOUT_S = 3600.0


# --------------------------------------------------------------------------- key and layout


def engine_cache_key(
    model_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    precision: str,
    profile: Profile | dict[str, Any],
) -> str:
    """SHA-256 over every field that makes an engine valid (canonical JSON, sorted keys)."""
    prof = profile.as_dict() if isinstance(profile, Profile) else profile
    fields = {
        "schema": SCHEMA,
        "model_sha256": model_sha256,
        "trt_version": trt_version,
        "gpu_name": gpu_name,
        "compute_capability": compute_capability,
        "precision": precision,
        "profile": prof,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _slug(text: str, limit: int = 24) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or "gpu"


def default_cache_dir() -> Path:
    """$GSRENDER_ENGINE_CACHE, else ~/.cache/gsrender/engines (XDG_CACHE_HOME respected)."""
    env = env_path(CACHE_ENV)  # absolute, one line: every farm task must name the same folder
    if env is not None:
        return env
    base = env_folder("XDG_CACHE_HOME") or Path.home() / ".cache"
    return base / "gsrender" / "engines"


@dataclass(frozen=True)
class BuildRequest:
    """Everything a builder needs, and everything the cache key is made of."""

    onnx_path: Path  # the ONNX TensorRT parses (FP32, or the FP16 one for strongly typed builds)
    model_sha256: str  # of onnx_path
    precision: str  # fp16 | fp32
    strongly_typed: bool
    profile: Profile
    node: NodeIdentity
    source_model: Path | None = None  # the model the user named, when onnx_path was derived from it
    timing_cache: Path | None = None
    workspace_bytes: int | None = None
    verbose: bool = False

    @property
    def precision_label(self) -> str:
        """Precision as keyed: strongly typed FP16 engines never share a key with FP16-flag ones."""
        return (
            f"{self.precision}-typed" if self.strongly_typed and self.precision == "fp16" else self.precision
        )

    @property
    def key(self) -> str:
        """The cache key of the engine this request builds."""
        n = self.node
        return engine_cache_key(
            self.model_sha256,
            n.trt_version,
            n.gpu_name,
            n.compute_capability,
            self.precision_label,
            self.profile,
        )

    def key_fields(self) -> dict[str, Any]:
        """The fields a sidecar must repeat for its engine to be used for this request."""
        return {
            "schema": SCHEMA,
            "key": self.key,
            "model_sha256": self.model_sha256,
            "trt_version": self.node.trt_version,
            "gpu_name": self.node.gpu_name,
            "compute_capability": self.node.compute_capability,
            "precision": self.precision_label,
            "profile": self.profile.as_dict(),
        }

    def engine_path(self, cache_dir: Path) -> Path:
        """Readable name (model, precision, GPU, TensorRT) plus the key that makes it unique."""
        stem = (self.source_model or self.onnx_path).stem
        n = self.node
        cc = n.compute_capability.replace(".", "")
        gpu = f"{_slug(n.gpu_name)}-sm{cc}-trt{n.trt_version}"
        name = f"{stem}-{self.precision_label}-{gpu}-{self.key[:12]}.engine"
        return cache_dir / name


def sidecar_path(engine: Path) -> Path:
    """`<engine>.json`: the fields the engine was built for, and its own SHA-256."""
    return engine.with_name(engine.name + ".json")


def lock_path(engine: Path) -> Path:
    """`<engine>.lock`: held by the one task that builds this engine."""
    return engine.with_name(engine.name + ".lock")


def timing_cache_path(cache_dir: Path, node: NodeIdentity) -> Path:
    """Timing caches are per GPU model and TensorRT version, shared by models and precisions."""
    cc = node.compute_capability.replace(".", "")
    return cache_dir / f"timing-{_slug(node.gpu_name)}-sm{cc}-trt{node.trt_version}.cache"


def fp16_onnx_path(cache_dir: Path, model: Path, model_sha256: str) -> Path:
    """Where the FP16 ONNX generated from `model` is kept, by the model's hash."""
    return cache_dir / "onnx" / f"{model.stem}-{model_sha256[:16]}.fp16.onnx"


# --------------------------------------------------------------------------- the build lock


@contextlib.contextmanager
def file_lock(
    path: Path, timeout: float = LOCK_TIMEOUT_S, poll: float = 0.2, what: str = "the engine"
) -> Iterator[None]:
    """Exclusive flock on `path`; waits (polling, so the wait can time out) for another holder.

    The kernel drops the lock when the holding process dies, so a crash never leaves a
    stale lock. The file keeps the holder's pid/host for the waiting message only.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        start = time.monotonic()
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not announced:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                    log.info("gsrender: waiting for %s being built by %s (%s)", what, holder, path)
                    announced = True
                if time.monotonic() - start > timeout:
                    raise BackendError(
                        path, f"timed out after {timeout:.0f}s waiting for {what} lock"
                    ) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.ctime()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- checking an engine


@dataclass
class EngineEntry:
    """A validated engine: its path, sidecar, serialized bytes, and whether this call built it."""

    path: Path
    sidecar: dict[str, Any]
    data: bytes
    built: bool


def mismatch_reason(meta: dict[str, Any], request: BuildRequest) -> str | None:
    """Why a sidecar does not describe the engine this node needs (None: it does)."""
    want = request.key_fields()
    if meta.get("schema") != SCHEMA:
        return f"it was written by another gsrender engine-cache version (schema {meta.get('schema')})"
    node_diff = [
        f"{label} {meta.get(k)!r} (this node: {want[k]!r})"
        for k, label in (
            ("gpu_name", "GPU"),
            ("compute_capability", "compute capability"),
            ("trt_version", "TensorRT"),
        )
        if meta.get(k) != want[k]
    ]
    if node_diff:
        return "it was built for another node: " + ", ".join(node_diff)
    if meta.get("model_sha256") != want["model_sha256"]:
        return "it was built from another model file (model SHA-256 differs)"
    if meta.get("precision") != want["precision"]:
        return f"it is {meta.get('precision')}, {want['precision']} was asked for"
    if meta.get("profile") != want["profile"]:
        return f"its shape profile {meta.get('profile')} differs from {want['profile']}"
    if meta.get("key") != want["key"]:
        return "its cache key differs"
    return None


def read_sidecar(engine: Path) -> dict[str, Any] | None:
    """The engine's sidecar, or None when it is missing or not a JSON object."""
    try:
        meta = json.loads(sidecar_path(engine).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def verify_engine(engine: Path, request: BuildRequest) -> tuple[bytes | None, dict[str, Any], str | None]:
    """(engine bytes, sidecar, None) when `engine` is valid for `request`, else (None, sidecar, why not).

    The sidecar is read first and the engine's SHA-256 checked against it, so a reader
    racing a rebuild sees either a consistent pair or a mismatch, never a mixed engine.
    """
    if not engine.is_file():
        return None, {}, "no engine built yet"
    meta = read_sidecar(engine)
    if meta is None:
        return None, {}, f"its sidecar {sidecar_path(engine).name} is missing or unreadable (unknown origin)"
    reason = mismatch_reason(meta, request)
    if reason:
        return None, meta, reason
    try:
        data = engine.read_bytes()
    except OSError as exc:
        return None, meta, f"cannot read it ({exc.strerror or exc})"
    if len(data) != meta.get("engine_bytes") or hashlib.sha256(data).hexdigest() != meta.get("engine_sha256"):
        return None, meta, "the engine file does not match its sidecar (truncated, or replaced)"
    return data, meta, None


def check_engine(engine: Path, request: BuildRequest) -> tuple[bytes | None, str | None]:
    """(engine bytes, None) when `engine` is valid for `request`, else (None, why not)."""
    data, _, reason = verify_engine(engine, request)
    return data, reason


def list_engines(
    cache_dir: str | Path | None = None, node: NodeIdentity | None = None
) -> list[dict[str, Any]]:
    """Cached engines with their sidecars; `usable` says whether they match `node` (None: unknown)."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = []
    for engine in sorted(cache.glob("*.engine")) if cache.is_dir() else []:
        meta = read_sidecar(engine) or {}
        usable = None
        if node is not None:
            usable = (meta.get("gpu_name"), meta.get("compute_capability"), meta.get("trt_version")) == (
                node.gpu_name,
                node.compute_capability,
                node.trt_version,
            )
        out.append({"path": str(engine), "bytes": engine.stat().st_size, "usable": usable, **meta})
    return out
