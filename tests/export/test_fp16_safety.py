"""FP16 safety on the CPU: the FP16 ONNX (what TensorRT 11 builds, strongly typed) on HDR plates.

The network sees a bounded encoding, so FP16 risk is in the activations: these tests
run the FP16 model with ONNX Runtime on HDR-derived inputs and on the extremes of the
encoding, require finite outputs within the stated tolerance of FP32, and measure the
FP32 model's largest intermediate activation against the FP16 range (65504).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from gsrender.engine.keyer import prepare_frame
from tests.conftest import make_plate

FP16_MAX = 65504.0
HEADROOM = 16.0  # largest activation must stay below FP16_MAX / HEADROOM
ALPHA_MAX_ABS, ALPHA_MEAN_ABS = 2.0 / 255.0, 1e-3  # the TensorRT FP16 tolerance
BG_MAX_ABS = 2.0 / 255.0

export = pytest.importorskip(
    "gsrender.export.onnx_export", reason="the FP16 exporter needs the [train] extra"
)


def _session(path: Path | bytes) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(
        path if isinstance(path, bytes) else str(path), so, providers=["CPUExecutionProvider"]
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> tuple[Path, Path]:
    """(FP32, FP16) models: the bundled trained model and its FP16 conversion."""
    d = tmp_path_factory.mktemp("fp16")
    fp32 = model_path
    fp16 = export.export_fp16(fp32, d / "bundled_fp16.onnx")
    try:
        _session(fp16)
    except Exception as exc:  # some onnxruntime builds lack FP16 CPU kernels
        pytest.skip(f"onnxruntime CPU cannot run the FP16 model: {str(exc).splitlines()[0]}")
    return fp32, fp16


def _hdr_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    cases = []
    for name, gain in (("hdr x1", 1.0), ("hdr x100", 100.0), ("hdr x1e4", 1e4)):
        plate = make_plate(96, 128, seed=2, hdr=True) * np.float32(gain)
        plate[10:20, 10:40] = 65504.0  # largest half-float an EXR holds
        f = prepare_frame(plate)
        cases.append((name, f.plate_enc[None], f.screen_enc[None]))
    ones, zeros = np.ones((1, 3, 64, 64), np.float32), np.zeros((1, 3, 64, 64), np.float32)
    checker = (np.indices((64, 64)).sum(0) % 2).astype(np.float32)[None, None].repeat(3, 1)
    cases += [
        ("white plate, black screen", ones, zeros),
        ("black plate, white screen", zeros, ones),
        ("checkerboard", checker, 1 - checker),
    ]
    return cases


def test_fp16_is_finite_and_close_to_fp32(pair) -> None:
    fp32, fp16 = (_session(p) for p in pair)
    for name, plate, screen in _hdr_cases():
        assert 0.0 <= plate.min() and plate.max() <= 1.0, "the encoding must be bounded"
        a32, b32 = fp32.run(["alpha", "bg"], {"plate": plate, "screen": screen})
        a16, b16 = fp16.run(["alpha", "bg"], {"plate": plate, "screen": screen})
        assert a16.dtype == np.float32  # FP32 I/O: the engine's buffers are the same for both
        assert np.isfinite(a16).all() and np.isfinite(b16).all(), name
        da, db = np.abs(a16 - a32), np.abs(b16 - b32)
        assert da.max() <= ALPHA_MAX_ABS and da.mean() <= ALPHA_MEAN_ABS, (name, da.max(), da.mean())
        assert db.max() <= BG_MAX_ABS, (name, db.max())


def test_head_stays_fp32_in_the_fp16_model(pair) -> None:
    st = export.fp16_structure(pair[1])
    assert st["io"] == {"plate": "FLOAT", "screen": "FLOAT", "alpha": "FLOAT", "bg": "FLOAT"}
    assert ("FLOAT16" in st["initializers"]) and st["casts"]


def _typed(path: Path, elem_type: int) -> set[str]:
    """The names of a model's intermediate tensors of one element type."""
    m = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    return {v.name for v in m.graph.value_info if v.type.tensor_type.elem_type == elem_type}


def _with_all_outputs(path: Path, fp16_path: Path) -> tuple[bytes, list[str]]:
    """The FP32 model with every intermediate tensor that the FP16 model computes in FP16
    exposed as an output (the input arithmetic and the head stay FP32 there: the local
    evidence's 1 / share reaches 1e6 where no subject is near, in FP32)."""
    m = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    known = {o.name for o in m.graph.output}
    half = _typed(fp16_path, onnx.TensorProto.FLOAT16)
    names = [
        v.name
        for v in m.graph.value_info
        if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and v.name not in known and v.name in half
    ]
    for v in m.graph.value_info:
        if v.name in names:
            m.graph.output.append(v)
    return m.SerializeToString(), names


def test_activations_have_fp16_headroom(pair) -> None:
    blob, names = _with_all_outputs(*pair)
    assert len(names) > 20
    sess = _session(blob)
    worst, where = 0.0, ""
    for name, plate, screen in _hdr_cases():
        outs = sess.run(names, {"plate": plate, "screen": screen})
        for n, v in zip(names, outs, strict=True):
            m = float(np.abs(v).max()) if v.size else 0.0
            if m > worst:
                worst, where = m, f"{n} ({name})"
    assert worst < FP16_MAX / HEADROOM, f"activation {worst:.1f} at {where} is too close to the FP16 limit"
