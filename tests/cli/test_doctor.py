"""`gsrender doctor`: runs anywhere, says what the node has and what auto would pick."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from gsrender.cli import doctor
from gsrender.engine import backends
from gsrender.engine.atomic_files import file_sha256
from gsrender.engine.backends.tensorrt.cache import BuildRequest
from gsrender.engine.backends.tensorrt.loader import ensure_engine
from gsrender.engine.backends.tensorrt.node import NodeIdentity
from gsrender.engine.backends.tensorrt.profile import select_profile


def _has_gpu() -> bool:
    return bool(doctor.probe_gpu().get("gpus"))


def test_doctor_prints_a_sane_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert doctor.main(["--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    print(out)  # visible with -s: the report as a wrangler sees it
    for label in (
        "GPU",
        "driver",
        "CUDA",
        "TensorRT",
        "pycuda",
        "onnxruntime",
        "torch",
        "engines",
        "auto picks",
    ):
        assert f"  {label}" in out, label
    assert "CPUExecutionProvider" in out
    assert f"0 cached in {tmp_path}" in out
    if not _has_gpu():
        assert "GPU          none found" in out
    if importlib.util.find_spec("tensorrt") is None:
        assert "TensorRT     not installed" in out


def test_doctor_json_and_auto_choice(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert doctor.main(["--json", "--cache", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["onnxruntime"]["installed"] and "CPUExecutionProvider" in report["onnxruntime"]["providers"]
    assert report["auto"]["backend"] in ("tensorrt", "cuda", "onnxruntime")
    if not _has_gpu() and importlib.util.find_spec("tensorrt") is None:
        assert report["auto"]["backend"] in ("onnxruntime", "cuda")
        assert report["gpu"]["gpus"] == [] and report["gpu"]["notes"]


def test_require_gpu_fails_without_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    if _has_gpu():
        pytest.skip("this machine has a GPU")
    assert doctor.main(["--require", "gpu", "--cache", str(tmp_path)]) == 1
    assert "does not meet --require gpu" in capsys.readouterr().err


def test_auto_choice_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    assert doctor.auto_choice(Path("m.pt"), False)[0] == "torch"
    monkeypatch.setattr(backends, "_tensorrt_available", lambda: True)
    name, _, warn = doctor.auto_choice(Path("m.onnx"), gpu_found=False)
    assert name == "tensorrt" and "no GPU is visible" in warn and "falls back" in warn
    assert doctor.auto_choice(Path("m.onnx"), gpu_found=True) == (
        "tensorrt",
        "TensorRT and pycuda found",
        None,
    )
    monkeypatch.setattr(backends, "_tensorrt_available", lambda: False)
    monkeypatch.setattr(backends, "_ort_cuda_available", lambda: True)
    assert doctor.auto_choice(Path("m.onnx"), gpu_found=True)[0] == "cuda"


def test_cached_engines_are_listed_with_their_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    node = NodeIdentity("10.7.0.23", "NVIDIA L40S", "8.9")
    req = BuildRequest(model, file_sha256(model), "fp16", False, select_profile(1024, 88, 8, 1), node)
    ensure_engine(req, tmp_path / "c", lambda r: b"plan")
    fake_gpu = {
        "source": "nvidia-smi",
        "gpus": [
            {
                "index": "0",
                "name": "NVIDIA H100 80GB HBM3",
                "driver": "550.54",
                "memory_mib": "81559",
                "compute_capability": "9.0",
            }
        ],
        "cuda_driver": "12.4",
    }
    monkeypatch.setattr(doctor, "probe_gpu", lambda: fake_gpu)
    monkeypatch.setattr(
        doctor, "probe_tensorrt", lambda: {"installed": True, "version": "10.7.0.23", "fp16": "x"}
    )
    assert doctor.main(["--cache", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "[0] NVIDIA H100 80GB HBM3, sm 9.0, 80 GiB" in out and "550.54" in out and "12.4" in out
    assert "1 cached" in out and "NVIDIA L40S sm 8.9" in out and "other GPU/TensorRT: not loaded here" in out
