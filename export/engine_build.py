"""Build (once per GPU) and cache the TensorRT engine the render engine runs.

    gsrender build-engine [--model M] [--precision fp16|fp32] [--max-tile N] [--max-batch B] [--cache DIR]
    gsrender build-engine --list [--cache DIR]
    gsrender build-engine --dry-run            (what would be built; works without a GPU)

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
(flock over NFS is not reliable everywhere).

TensorRT 10 builds FP16 from the FP32 ONNX with the FP16 builder flag, keeping the
output head (everything after the last convolution) in FP32 with OBEY precision
constraints (PREFER would let TensorRT run it in FP16 without a word). TensorRT 11 has only
strongly typed networks: the ONNX types are the precision, so FP16 is built from the
FP16 ONNX that `gsrender export --fp16` writes (FP32 inputs/outputs, FP32 head).

The builder step is a plain function `(BuildRequest) -> bytes-like`, so the caching,
locking and validation logic is tested without a GPU by passing a fake builder.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gsrender.engine.errors import BackendError, GsRenderError, UsageError
from gsrender.engine.tile_profile import AUTO_TILE, WHOLE_FRAME_SIDE
from gsrender.engine.tiling import round_up

log = logging.getLogger("gsrender")

CACHE_ENV = "GSRENDER_ENGINE_CACHE"
SCHEMA = 1  # bump when the engine file layout or key fields change: old entries then miss the cache
PRECISIONS = ("fp16", "fp32")
DEFAULT_MAX_TILE = AUTO_TILE  # 4K frames are keyed in AUTO_TILE-pixel tiles
# Tiles per engine call. One 1712x1712 tile (2.9 MP) already fills a GPU, and TensorRT sizes
# activation memory for max batch x max H x max W, so batching only pays for small --tile values.
DEFAULT_MAX_BATCH = 1
PROFILE_COPIES = 2  # one identical profile per execution context (two streams overlap copies/compute)
LOCK_TIMEOUT_S = 3600.0
SHAPE = tuple[int, int, int, int]

BuilderFn = Callable[["BuildRequest"], Any]  # returns the serialized engine (bytes-like)


# --------------------------------------------------------------------------- profile


@dataclass(frozen=True)
class Profile:
    """Min/opt/max input shapes (N, 3, H, W) shared by `plate` and `screen`."""

    min: SHAPE
    opt: SHAPE
    max: SHAPE
    copies: int = PROFILE_COPIES

    def contains(self, shape: Sequence[int]) -> bool:
        """True when TensorRT can run this input shape without sub-tiling."""
        return len(shape) == 4 and all(
            lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max, strict=True)
        )

    def as_dict(self) -> dict[str, Any]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max), "copies": self.copies}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        return cls(tuple(d["min"]), tuple(d["opt"]), tuple(d["max"]), int(d.get("copies", 1)))  # type: ignore[arg-type]


def select_profile(
    max_tile: int,
    halo: int,
    stride: int,
    max_batch: int,
    *,
    whole_frame_side: int = WHOLE_FRAME_SIDE,
    copies: int = PROFILE_COPIES,
) -> Profile:
    """The profile that covers every tile the keyer makes with these settings.

    Tiled frames give inputs of at most tile + 2*halo (stride aligned) per side, e.g.
    1536 + 2*88 = 1712; untiled frames (up to 2560x1440 pixels) are one input of the
    padded frame, so both sides go up to 2560. The smallest input is one stride. `opt` is
    the full tile at batch 1, the shape a 4K frame runs most; kernels are tuned for it
    and valid over the whole range.
    """
    if max_tile <= 0 or stride <= 0 or halo < 0 or max_batch < 1 or copies < 1:
        raise UsageError(
            None,
            f"bad profile settings: max_tile={max_tile} halo={halo} stride={stride} max_batch={max_batch}",
        )
    tile_in = round_up(max_tile, stride) + 2 * round_up(halo, stride)
    side = max(tile_in, round_up(whole_frame_side, stride))
    return Profile(
        min=(1, 3, stride, stride),
        opt=(1, 3, tile_in, tile_in),
        max=(max_batch, 3, side, side),
        copies=copies,
    )


# --------------------------------------------------------------------------- identity and key


@dataclass(frozen=True)
class NodeIdentity:
    """What makes an engine valid on a node: TensorRT version and the GPU."""

    trt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"

    def describe(self) -> str:
        return f"{self.gpu_name} (sm {self.compute_capability}), TensorRT {self.trt_version}"


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


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _slug(text: str, limit: int = 24) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or "gpu"


def default_cache_dir() -> Path:
    """$GSRENDER_ENGINE_CACHE, else ~/.cache/gsrender/engines (XDG_CACHE_HOME respected)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gsrender" / "engines"


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
    return engine.with_name(engine.name + ".json")


def lock_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".lock")


def timing_cache_path(cache_dir: Path, node: NodeIdentity) -> Path:
    """Timing caches are per GPU model and TensorRT version, shared by models and precisions."""
    cc = node.compute_capability.replace(".", "")
    return cache_dir / f"timing-{_slug(node.gpu_name)}-sm{cc}-trt{node.trt_version}.cache"


# --------------------------------------------------------------------------- files: lock, atomic write


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


def _tmp_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")


def atomic_write(path: Path, data: Any) -> None:
    """Write bytes-like `data` to a temp file in the same folder, fsync, rename over `path`."""
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# --------------------------------------------------------------------------- validation


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
    try:
        meta = json.loads(sidecar_path(engine).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _check(engine: Path, request: BuildRequest) -> tuple[bytes | None, dict[str, Any], str | None]:
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
    """(engine bytes, None) when `engine` is valid for `request`, else (None, why not).

    The sidecar is read first and the engine's SHA-256 checked against it, so a reader
    racing a rebuild sees either a consistent pair or a mismatch, never a mixed engine.
    """
    data, _, reason = _check(engine, request)
    return data, reason


# --------------------------------------------------------------------------- cache orchestration


@dataclass
class EngineEntry:
    """A validated engine: its path, sidecar, serialized bytes, and whether this call built it."""

    path: Path
    sidecar: dict[str, Any]
    data: bytes
    built: bool


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
        data, meta, reason = _check(engine, request)
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
        data, meta, reason = _check(engine, request)
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
        atomic_write(engine, data)
        atomic_write(sidecar_path(engine), (json.dumps(meta, indent=2) + "\n").encode())
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
    data, meta, _ = _check(exact, request)
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
        data, meta, _ = _check(engine, other)
        if data is not None:
            log.info("gsrender: using cached engine %s (built with other tile settings)", engine.name)
            return EngineEntry(engine, meta, data, built=False)
    return None


def load_engine_file(engine: str | Path, request: BuildRequest) -> EngineEntry:
    """An engine named explicitly (not from the cache): refused, never rebuilt, when foreign."""
    path = Path(engine)
    data, meta, reason = _check(path, request)
    if data is None:
        raise BackendError(
            path,
            f"refusing this TensorRT engine: {reason}. Build one for this node with "
            "'gsrender build-engine' (or drop the explicit engine and use the cache)",
        )
    return EngineEntry(path, meta, data, built=False)


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


# --------------------------------------------------------------------------- the node: TensorRT, GPU


def trt_major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendError(
            None, f"TensorRT is not installed ({exc}): pip install 'gsrender[tensorrt]'"
        ) from None
    return trt


def cuda_device() -> Any:
    """The pycuda device whose retained primary context TensorRT and pycuda share.

    Nothing is pushed here: users make the context current per use (engine/backends/cuda_context).
    """
    from gsrender.engine.backends.cuda_context import primary_context

    return primary_context().device


def detect_node(device: Any = None) -> NodeIdentity:
    """TensorRT version plus the name and compute capability of the CUDA device in use."""
    trt = import_tensorrt()
    dev = device if device is not None else cuda_device()
    major, minor = dev.compute_capability()
    return NodeIdentity(
        trt_version=trt.__version__, gpu_name=dev.name(), compute_capability=f"{major}.{minor}"
    )


def nvidia_smi() -> dict[str, Any]:
    """GPUs, driver and CUDA (driver API) version from nvidia-smi; {'error': ...} when unavailable."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return {"error": "nvidia-smi not found"}
    fields = ["index", "name", "driver_version", "memory.total", "compute_cap"]
    for attempt in (fields, fields[:-1]):  # compute_cap needs a 2021+ driver
        try:
            res = subprocess.run(
                [exe, f"--query-gpu={','.join(attempt)}", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=20,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return {"error": f"nvidia-smi failed: {exc}"}
        if res.returncode == 0:
            break
    else:
        return {"error": f"nvidia-smi failed: {(res.stderr or res.stdout).strip().splitlines()[:1]}"}
    gpus = []
    for line in res.stdout.strip().splitlines():
        vals = [v.strip() for v in line.split(",")]
        if len(vals) >= 4:
            gpus.append(
                {
                    "index": vals[0],
                    "name": vals[1],
                    "driver": vals[2],
                    "memory_mib": vals[3],
                    "compute_capability": vals[4] if len(vals) > 4 else None,
                }
            )
    info: dict[str, Any] = {"gpus": gpus}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run([exe], capture_output=True, text=True, timeout=20).stdout
        m = re.search(r"CUDA Version:\s*([\d.]+)", head)
        if m:
            info["cuda"] = m.group(1)
    return info


# --------------------------------------------------------------------------- which ONNX to parse


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """metadata_props of an ONNX file, via `onnx` when installed, else onnxruntime."""
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        model = onnx.load(str(path), load_external_data=False)
        return {p.key: p.value for p in model.metadata_props}
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return dict(sess.get_modelmeta().custom_metadata_map)


def _is_fp16_onnx(path: Path) -> bool:
    try:
        return read_onnx_metadata(path).get("gsrender.precision") == "fp16"
    except Exception:  # unreadable: let TensorRT's parser report it
        return False


def _generate_fp16(model: Path, model_sha: str, cache_dir: Path) -> Path | None:
    """The FP16 ONNX made from `model` by gsrender's exporter, cached by the model's hash."""
    try:
        from gsrender.export.onnx_export import export_fp16
    except ImportError:  # the exporter needs the [train] extra (torch, onnx)
        return None
    out = cache_dir / "onnx" / f"{model.stem}-{model_sha[:16]}.fp16.onnx"
    if out.is_file():
        return out
    with file_lock(out.with_name(out.name + ".lock"), what=f"FP16 ONNX {out.name}"):
        if not out.is_file():
            tmp = _tmp_name(out)
            try:
                export_fp16(model, tmp)
                os.replace(tmp, out)
            finally:
                with contextlib.suppress(OSError):
                    tmp.unlink()
    return out


def resolve_build_onnx(
    model: Path,
    precision: str,
    major: int,
    cache_dir: Path,
    *,
    fp16_model: Path | None = None,
    typing: str = "auto",
) -> tuple[Path, bool]:
    """Which ONNX TensorRT parses, and whether the network is strongly typed.

    fp32: the FP32 model. fp16 on TensorRT 10 (typing auto/weak): the FP32 model with the
    FP16 builder flag. fp16 strongly typed (TensorRT 11, or typing=strong): the FP16 ONNX:
    --fp16-model, else generated from the model by the exporter, else `<stem>_fp16.onnx`
    beside the model.
    """
    if typing not in ("auto", "strong", "weak"):
        raise UsageError(None, f"unknown --typing '{typing}' (auto, strong, weak)")
    model_is_fp16 = _is_fp16_onnx(model)
    if precision == "fp32":
        if model_is_fp16:
            raise UsageError(model, "this is the FP16 ONNX; an fp32 engine is built from the FP32 model")
        return model, major >= 11
    if model_is_fp16:
        return model, True
    strong = typing == "strong" or major >= 11
    if typing == "weak" and major >= 11:
        raise UsageError(None, "TensorRT 11 has no weakly typed FP16 builds; use --typing auto")
    if not strong:
        return model, False
    if fp16_model is not None:
        if not fp16_model.is_file():
            raise BackendError(fp16_model, "FP16 model not found")
        return fp16_model, True
    generated = _generate_fp16(model, file_sha256(model), cache_dir)
    if generated is not None:
        return generated, True
    sibling = model.with_name(model.stem + "_fp16.onnx")
    if sibling.is_file() and _is_fp16_onnx(sibling):
        source = read_onnx_metadata(sibling).get("gsrender.source_sha256")
        if source is None:
            log.warning(
                "gsrender: using %s as the FP16 form of %s (not regenerated: the exporter needs the "
                "[train] extra); make sure both come from the same export",
                sibling.name,
                model.name,
            )
            return sibling, True
        if source == file_sha256(model):
            return sibling, True
        log.warning("gsrender: ignoring %s: it was made from another version of %s", sibling.name, model.name)
    raise BackendError(
        model,
        "a strongly typed FP16 engine (TensorRT 11) is built from the FP16 ONNX: run "
        "'gsrender export CKPT -o M --fp16 M_fp16.onnx' and pass --fp16-model, or "
        "install the [train] extra so it is generated",
    )


def prepare_request(
    model: str | Path,
    *,
    precision: str = "fp16",
    node: NodeIdentity,
    cache_dir: str | Path | None = None,
    max_tile: int = DEFAULT_MAX_TILE,
    max_batch: int = DEFAULT_MAX_BATCH,
    halo: int | None = None,
    stride: int | None = None,
    copies: int = PROFILE_COPIES,
    fp16_model: str | Path | None = None,
    typing: str = "auto",
    workspace_gb: float | None = None,
    verbose: bool = False,
) -> BuildRequest:
    """Resolve the ONNX to parse, its hash, the profile and the timing cache for `model`."""
    if precision not in PRECISIONS:
        raise UsageError(None, f"unknown precision '{precision}' ({', '.join(PRECISIONS)})")
    model = Path(model)
    if not model.is_file():
        raise BackendError(model, "model file not found")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if halo is None or stride is None:
        meta = read_onnx_metadata(model)
        try:
            halo = int(meta["gsrender.halo"]) if halo is None else halo
            stride = int(meta["gsrender.stride"]) if stride is None else stride
        except (KeyError, ValueError):
            raise BackendError(
                model, "not a gsrender model (ONNX metadata gsrender.stride/halo missing)"
            ) from None
    onnx_path, strong = resolve_build_onnx(
        model,
        precision,
        trt_major(node.trt_version),
        cache,
        fp16_model=Path(fp16_model) if fp16_model else None,
        typing=typing,
    )
    return BuildRequest(
        onnx_path=onnx_path,
        model_sha256=file_sha256(onnx_path),
        precision=precision,
        strongly_typed=strong,
        profile=select_profile(max_tile, halo, stride, max_batch, copies=copies),
        node=node,
        source_model=model,
        timing_cache=timing_cache_path(cache, node),
        workspace_bytes=int(workspace_gb * (1 << 30)) if workspace_gb else None,
        verbose=verbose,
    )


# --------------------------------------------------------------------------- the TensorRT builder


def head_layer_indices(layers: Sequence[tuple[bool, Sequence[str], Sequence[str]]]) -> set[int]:
    """Layers kept in FP32: after the last convolution and before the first one.

    `layers` is (is_convolution, input tensor names, output tensor names) in network order.
    After: downstream of a convolution and upstream of none (the output head: slice, clamp,
    tanh, add to the screen guide). Before: downstream of no convolution (the input
    arithmetic: GsKeyNet2's colour-difference key and screen gate). The FP16 ONNX keeps the
    same layers in FP32 (onnx_export._head_nodes calls this).
    """
    producer = {t: i for i, (_, _, outs) in enumerate(layers) for t in outs}
    consumers: dict[str, list[int]] = {}
    for i, (_, ins, _) in enumerate(layers):
        for t in ins:
            consumers.setdefault(t, []).append(i)
    down: set[int] = set()
    stack = [i for i, (conv, _, _) in enumerate(layers) if conv]
    while stack:
        for t in layers[stack.pop()][2]:
            for j in consumers.get(t, []):
                if j not in down:
                    down.add(j)
                    stack.append(j)
    up: set[int] = set()
    stack = [i for i, (conv, _, _) in enumerate(layers) if conv]
    while stack:
        for t in layers[stack.pop()][1]:
            j = producer.get(t)
            if j is not None and j not in up:
                up.add(j)
                stack.append(j)
    convs = {i for i, (conv, _, _) in enumerate(layers) if conv}
    front = set(range(len(layers))) - down
    return ((down - up) | front) - convs


_TRT_LOGGER: Any = None


def trt_logger(trt: Any, verbose: bool = False) -> Any:
    """One TensorRT logger per process (TensorRT warns when builder and runtime loggers differ)."""
    global _TRT_LOGGER
    if _TRT_LOGGER is None:
        _TRT_LOGGER = trt.Logger(trt.Logger.INFO if verbose else trt.Logger.WARNING)
    return _TRT_LOGGER


def _pin_head_fp32(trt: Any, network: Any) -> int:
    """Weakly typed FP16 (TensorRT 10): keep the output head in FP32, as the FP16 ONNX does."""
    layers = [network.get_layer(i) for i in range(network.num_layers)]

    def names(get: Callable[[int], Any], n: int) -> list[str]:
        return [t.name for t in (get(j) for j in range(n)) if t is not None]

    desc = [
        (
            lay.type == trt.LayerType.CONVOLUTION,
            names(lay.get_input, lay.num_inputs),
            names(lay.get_output, lay.num_outputs),
        )
        for lay in layers
    ]
    floats = (trt.float32, trt.float16)
    pinned = 0
    for i in sorted(head_layer_indices(desc)):
        lay = layers[i]
        if lay.type in (trt.LayerType.CONSTANT, trt.LayerType.SHAPE):
            continue
        outs = [lay.get_output(j) for j in range(lay.num_outputs)]
        if not all(o is not None and o.dtype in floats for o in outs):
            continue
        lay.precision = trt.float32
        for j in range(lay.num_outputs):
            lay.set_output_type(j, trt.float32)
        pinned += 1
    return pinned


def _load_timing_cache(config: Any, path: Path | None) -> tuple[Any, bytes]:
    data = b""
    if path is not None and path.is_file():
        with contextlib.suppress(OSError):
            data = path.read_bytes()
    cache = None
    with contextlib.suppress(Exception):
        cache = config.create_timing_cache(data)
    if cache is None or not config.set_timing_cache(cache, False):
        if data:
            log.warning("gsrender: timing cache %s is unusable here; starting a new one", path)
        data = b""
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    return cache, data


def _save_timing_cache(config: Any, path: Path | None, loaded: bytes) -> None:
    """Write the grown timing cache back; merge with what another build saved meanwhile."""
    if path is None:
        return
    try:
        ours = config.get_timing_cache()
        with file_lock(path.with_name(path.name + ".lock"), timeout=300, what="the timing cache"):
            disk = path.read_bytes() if path.is_file() else b""
            if disk and disk != loaded:
                merged = None
                with contextlib.suppress(Exception):
                    merged = config.create_timing_cache(disk)
                if merged is not None:  # else TensorRT refuses what is on disk: ours replaces it
                    merged.combine(ours, False)
                    ours = merged
            atomic_write(path, ours.serialize())
    except Exception as exc:  # a timing cache is an optimisation: never fail the build for it
        log.warning("gsrender: could not save the timing cache %s (%s)", path, exc)


def build_with_tensorrt(request: BuildRequest) -> Any:
    """Parse the ONNX, set the profile(s), precision and timing cache, return the serialized engine."""
    from gsrender.engine.backends.cuda_context import gpu_errors, primary_context

    trt = import_tensorrt()
    # TensorRT builds for the device and context inference uses: the primary context, current
    # for the build only (this may run in a thread that exits afterwards)
    with primary_context().current(), gpu_errors("TensorRT engine build", request.onnx_path):
        return _build(trt, request)


def _build(trt: Any, request: BuildRequest) -> Any:
    logger = trt_logger(trt, request.verbose)
    major = trt_major(trt.__version__)
    builder = trt.Builder(logger)
    flags = 0
    if request.strongly_typed and major < 11:  # 11: always strongly typed, the flag is deprecated
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(request.onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(request.onnx_path, f"TensorRT cannot parse the model: {errors or 'unknown error'}")
    config = builder.create_builder_config()
    if request.workspace_bytes:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, request.workspace_bytes)
    if request.precision == "fp16" and not request.strongly_typed:
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise BackendError(
                None,
                f"TensorRT {trt.__version__} has no FP16 builder flag: build strongly typed "
                "from the FP16 ONNX",
            )
        config.set_flag(trt.BuilderFlag.FP16)
        pinned = _pin_head_fp32(trt, network)
        # OBEY: TensorRT must honour the FP32 head (PREFER lets it fall back to FP16 silently)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        log.info("gsrender: FP16 with %d output-head layers kept in FP32", pinned)
    if request.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 is the reference: no TF32 (10-bit mantissa) convs
    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    prof = request.profile
    for _ in range(prof.copies):
        p = builder.create_optimization_profile()
        for name in inputs:
            p.set_shape(name, prof.min, prof.opt, prof.max)
        if config.add_optimization_profile(p) < 0:
            raise BackendError(request.onnx_path, f"TensorRT rejected the shape profile {prof.as_dict()}")
    _, loaded = _load_timing_cache(config, request.timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(request.onnx_path, "TensorRT engine build failed (see the TensorRT log above)")
    _save_timing_cache(config, request.timing_cache, loaded)
    return serialized


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    from gsrender.engine.backends import default_model_path

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
    """`gsrender build-engine`: 0 when the engine is built or already cached."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from gsrender.engine.backends import default_model_path

    model = Path(args.model) if args.model else default_model_path()
    cache = Path(args.cache).expanduser() if args.cache else default_cache_dir()
    try:
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
                int(meta.get("gsrender.halo", 0)),
                int(meta.get("gsrender.stride", 1)),
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
                f"onnx:    {req.onnx_path} "
                f"({'strongly typed' if req.strongly_typed else 'FP16 builder flag'})"
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
    except GsRenderError as exc:
        print(f"gsrender build-engine: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
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
