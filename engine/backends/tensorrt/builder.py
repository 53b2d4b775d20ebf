"""The TensorRT builder: ONNX -> serialized engine, with the precision rules and timing cache.

FP16 engines keep some layers in FP32 (`head_layer_indices`): the output head after the
last convolution and the input arithmetic before the first. TensorRT 10 builds FP16 from
the FP32 ONNX with the FP16 builder flag and pins those layers with OBEY precision
constraints (PREFER would let TensorRT run them in FP16 without a word); the FP16 ONNX
for TensorRT 11's strongly typed networks keeps the same layers in FP32 (gsrender.export
calls `head_layer_indices` on the ONNX graph), so one rule decides both.

The builder is a plain function `(BuildRequest) -> bytes-like`, so the caching, locking
and validation around it (loader.py, cache.py) are tested without a GPU by passing a
fake builder. TensorRT is imported only when a build runs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...atomic_files import atomic_write_bytes
from ...errors import BackendError
from ..cuda_context import gpu_errors, primary_context
from .cache import BuildRequest, file_lock
from .node import import_tensorrt, trt_major

log = logging.getLogger("gsrender")

BuilderFn = Callable[[BuildRequest], Any]  # returns the serialized engine (bytes-like)


def head_layer_indices(layers: Sequence[tuple[bool, Sequence[str], Sequence[str]]]) -> set[int]:
    """Layers kept in FP32: after the last convolution and before the first one.

    `layers` is (is_convolution, input tensor names, output tensor names) in network order.
    After: downstream of a convolution and upstream of none (the output head: slice, clamp,
    tanh, add to the screen guide). Before: downstream of no convolution (the input
    arithmetic: GsKeyNet2's colour-difference key and screen gate). The FP16 ONNX keeps the
    same layers in FP32 (gsrender.export.onnx_export._head_nodes calls this).
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
            atomic_write_bytes(path, ours.serialize())
    except Exception as exc:  # a timing cache is an optimisation: never fail the build for it
        log.warning("gsrender: could not save the timing cache %s (%s)", path, exc)


def build_with_tensorrt(request: BuildRequest) -> Any:
    """Parse the ONNX, set the profile(s), precision and timing cache, return the serialized engine."""
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
