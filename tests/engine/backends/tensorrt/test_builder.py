"""The TensorRT builder: which layers FP16 engines keep in FP32, network flags, the timing
cache. Against the GPU doubles (tests/engine/backends/tensorrt/gpu_doubles.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
import pytest

from gsrender.engine.backends.tensorrt.builder import build_with_tensorrt, head_layer_indices
from gsrender.engine.backends.tensorrt.node import detect_node
from gsrender.engine.backends.tensorrt.request import prepare_request
from tests.engine.backends.tensorrt.fakes import make_backend


def test_fp32_layers_are_the_input_arithmetic_and_the_head(model_path: Path) -> None:
    g = onnx.load(str(model_path)).graph
    layers = [(n.op_type == "Conv", list(n.input), list(n.output)) for n in g.node]
    pinned = head_layer_indices(layers)
    inputs, outputs = {i.name for i in g.input}, {o.name for o in g.output}
    assert pinned and not any(layers[i][0] for i in pinned)  # never a convolution
    assert {i for i, (_, _, outs) in enumerate(layers) if set(outs) & outputs} <= pinned  # the head
    assert {i for i, (conv, ins, _) in enumerate(layers) if not conv and set(ins) & inputs} <= pinned
    # the trunk between the convolutions stays FP16: the upsamples, and every layer that reads a
    # convolution's output and feeds another convolution (the ReLUs)
    conv_out = {t for conv, _, outs in layers if conv for t in outs}
    conv_in = {t for conv, ins, _ in layers if conv for t in ins}
    trunk = {
        i
        for i, (conv, ins, outs) in enumerate(layers)
        if not conv and set(ins) & conv_out and set(outs) & conv_in
    }
    assert trunk and not trunk & pinned
    # upsamples stay FP16 inside the trunk; only one after the last convolution (GsKeyNet3's
    # upsample of its half-resolution correction) belongs to the FP32 head
    feeds_conv: set[str] = set(conv_in)
    for conv, ins, outs in reversed(layers):  # graph order is topological: walk back from the convs
        if not conv and set(outs) & feeds_conv:
            feeds_conv |= set(ins)
    for i in pinned:
        if g.node[i].op_type == "Resize":
            assert not set(layers[i][2]) & feeds_conv


def test_fake_gpu_trt10_strong_typing_sets_the_network_flag(
    fake_gpu, stressed_model: Path, tmp_path: Path
) -> None:
    """TensorRT 10's STRONGLY_TYPED is enum value 1 (EXPLICIT_BATCH is 0): flag bit 1 << 1."""
    pytest.importorskip("torch", reason="the FP16 exporter needs the [train] extra")
    node = detect_node()
    req = prepare_request(stressed_model, precision="fp16", node=node, cache_dir=tmp_path, typing="strong")
    assert build_with_tensorrt(req) is not None, fake_gpu.trt.build_errors
    assert (
        fake_gpu.trt.builds[-1]["network_flags"] == 1 << 1 and "FP16" not in fake_gpu.trt.builds[-1]["flags"]
    )
    assert fake_gpu.trt.builds[-1]["pinned"] == []


def test_fake_gpu_foreign_timing_cache_is_replaced(
    fake_gpu, stressed_model: Path, tmp_path: Path, caplog
) -> None:
    """A timing cache TensorRT refuses (another version wrote it) costs a warning, not the build."""
    stale = tmp_path / "timing-nvidia-fake-gpu-sm90-trt10.7.0.23.cache"
    stale.write_bytes(b"timing cache written by TensorRT 8.6")
    with caplog.at_level(logging.WARNING, logger="gsrender"):
        make_backend(stressed_model, tmp_path, precision="fp32").close()
    (rec,) = fake_gpu.trt.builds
    assert rec["refused_caches"] == 1 and rec["timing_cache"]
    assert any("timing cache" in r.getMessage() and "unusable" in r.getMessage() for r in caplog.records)
    assert stale.read_bytes().startswith(b"FAKETC1:")  # a fresh cache in its place
