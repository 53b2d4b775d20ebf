"""What to build for a model: which ONNX TensorRT parses, its hash, the precision and profile.

TensorRT 10 builds FP16 from the FP32 ONNX with the FP16 builder flag, keeping the
output head (everything after the last convolution) in FP32 with OBEY precision
constraints (engine/backends/tensorrt/builder.py). TensorRT 11 has only strongly typed
networks: the ONNX types are the precision, so FP16 is built from the FP16 ONNX that
`gsrender export --fp16` writes (FP32 inputs/outputs, FP32 head).

Writing that FP16 ONNX is an export step, and the engine sits below gsrender.export, so
it never imports it: the exporter registers itself under the entry point group
FP16_EXPORTER_GROUP (pyproject.toml) and is looked up here when a strongly typed build
needs it. Without it (no [train] extra) the FP16 ONNX comes from --fp16-model or a
matching `<stem>_fp16.onnx` beside the model.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gsrender.models import metadata as M

from ...atomic_files import file_sha256, replacing
from ...errors import BackendError, UsageError
from .cache import (
    PRECISIONS,
    BuildRequest,
    default_cache_dir,
    file_lock,
    fp16_onnx_path,
    timing_cache_path,
)
from .node import NodeIdentity, trt_major
from .profile import DEFAULT_MAX_BATCH, DEFAULT_MAX_TILE, PROFILE_COPIES, select_profile

log = logging.getLogger("gsrender")

# entry point group of the FP16 ONNX exporter: a callable (fp32_onnx, fp16_onnx_out) that writes it
FP16_EXPORTER_GROUP = "gsrender.fp16_exporter"


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
        return read_onnx_metadata(path).get(M.PRECISION) == M.FP16
    except Exception:  # unreadable: let TensorRT's parser report it
        return False


def fp16_exporter() -> Callable[[Path, Path], Any] | None:
    """The installed FP16 ONNX exporter (gsrender.export), or None when it cannot load here."""
    for ep in importlib.metadata.entry_points(group=FP16_EXPORTER_GROUP):
        try:
            return ep.load()
        except ImportError:  # the exporter needs the [train] extra (torch, onnx)
            return None
    return None


def generate_fp16(model: Path, model_sha: str, cache_dir: Path) -> Path | None:
    """The FP16 ONNX made from `model` by gsrender's exporter, cached by the model's hash."""
    export = fp16_exporter()
    if export is None:
        return None
    out = fp16_onnx_path(cache_dir, model, model_sha)
    if out.is_file():
        return out
    with file_lock(out.with_name(out.name + ".lock"), what=f"FP16 ONNX {out.name}"):
        if not out.is_file():
            with replacing(out) as tmp:
                export(model, tmp)
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
    generated = generate_fp16(model, file_sha256(model), cache_dir)
    if generated is not None:
        return generated, True
    sibling = model.with_name(model.stem + "_fp16.onnx")
    if sibling.is_file() and _is_fp16_onnx(sibling):
        source = read_onnx_metadata(sibling).get(M.SOURCE_SHA256)
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
        try:
            facts = M.parse_metadata(read_onnx_metadata(model), default_name=model.stem)
        except M.MetadataError:
            raise BackendError(
                model, "not a gsrender model (ONNX metadata gsrender.stride/halo missing)"
            ) from None
        halo = facts.halo if halo is None else halo
        stride = facts.stride if stride is None else stride
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
