"""Which ONNX TensorRT parses for each precision and TensorRT version, and the request made from a model."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import onnx
import pytest

from gsrender.engine.atomic_files import file_sha256
from gsrender.engine.backends.tensorrt import request
from gsrender.engine.backends.tensorrt.cache import timing_cache_path
from gsrender.engine.backends.tensorrt.profile import DEFAULT_MAX_BATCH, select_profile
from gsrender.engine.backends.tensorrt.request import prepare_request, read_onnx_metadata, resolve_build_onnx
from gsrender.engine.errors import BackendError, UsageError
from gsrender.engine.tile_profile import AUTO_TILE
from tests.engine.backends.tensorrt.fakes import NODE_A


def test_onnx_for_each_precision_and_tensorrt(tmp_path: Path, model_path: Path) -> None:
    assert resolve_build_onnx(model_path, "fp32", 10, tmp_path) == (model_path, False)
    assert resolve_build_onnx(model_path, "fp16", 10, tmp_path) == (model_path, False)  # FP16 flag
    with pytest.raises(UsageError):
        resolve_build_onnx(model_path, "fp16", 11, tmp_path, typing="weak")
    with pytest.raises(BackendError, match="not found"):
        resolve_build_onnx(model_path, "fp16", 11, tmp_path, fp16_model=tmp_path / "nope.onnx")
    pytest.importorskip("torch", reason="the FP16 exporter needs the [train] extra")
    path, strong = resolve_build_onnx(model_path, "fp16", 11, tmp_path)  # TensorRT 11: FP16 ONNX
    assert strong and path != model_path and path.parent == tmp_path / "onnx"
    assert read_onnx_metadata(path)["gsrender.precision"] == "fp16"
    mtime = path.stat().st_mtime_ns
    assert resolve_build_onnx(model_path, "fp16", 11, tmp_path) == (path, True)  # cached by hash
    assert path.stat().st_mtime_ns == mtime
    assert resolve_build_onnx(path, "fp16", 10, tmp_path) == (path, True)  # an FP16 model as given


def test_fp16_sibling_is_used_only_when_it_matches(
    tmp_path: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the exporter (no [train] extra), <stem>_fp16.onnx beside the model is the FP16 source."""
    monkeypatch.setattr(request, "generate_fp16", lambda *a: None)
    model = tmp_path / "gskey.onnx"
    model.write_bytes(model_path.read_bytes())
    with pytest.raises(BackendError, match="--fp16-model"):
        resolve_build_onnx(model, "fp16", 11, tmp_path)
    sibling = tmp_path / "gskey_fp16.onnx"

    def write_sibling(meta: dict[str, str]) -> None:
        m = onnx.load(str(model_path))
        for k, v in {"gsrender.precision": "fp16", **meta}.items():
            m.metadata_props.add(key=k, value=v)
        onnx.save(m, str(sibling))

    write_sibling({})  # no provenance: used, with a warning
    assert resolve_build_onnx(model, "fp16", 11, tmp_path) == (sibling, True)
    write_sibling({"gsrender.source_sha256": file_sha256(model)})
    assert resolve_build_onnx(model, "fp16", 11, tmp_path) == (sibling, True)
    write_sibling({"gsrender.source_sha256": "0" * 64})  # made from another model version: never used
    with pytest.raises(BackendError):
        resolve_build_onnx(model, "fp16", 11, tmp_path)
    with pytest.raises(UsageError, match="FP16 ONNX"):
        resolve_build_onnx(sibling, "fp32", 10, tmp_path)


def test_prepare_request_reads_the_model(tmp_path: Path, model_path: Path, shipped_halo: int) -> None:
    r16 = prepare_request(model_path, precision="fp16", node=NODE_A, cache_dir=tmp_path)
    r32 = prepare_request(model_path, precision="fp32", node=NODE_A, cache_dir=tmp_path)
    assert r16.profile == select_profile(AUTO_TILE, shipped_halo, 8, DEFAULT_MAX_BATCH)
    assert r16.key != r32.key and r16.timing_cache == timing_cache_path(tmp_path, NODE_A)
    with pytest.raises(UsageError):
        prepare_request(model_path, precision="int8", node=NODE_A, cache_dir=tmp_path)
    with pytest.raises(BackendError, match="not found"):
        prepare_request(tmp_path / "x.onnx", node=NODE_A, cache_dir=tmp_path)


def test_the_fp16_exporter_is_found_without_importing_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine sits below gsrender.export: it finds the exporter through the entry point
    the package declares (pyproject.toml), and does without it when it cannot load."""
    (ep,) = importlib.metadata.entry_points(group=request.FP16_EXPORTER_GROUP)
    assert ep.value == "gsrender.export.onnx_export:export_fp16"
    if importlib.util.find_spec("torch") is not None:
        from gsrender.export.onnx_export import export_fp16

        assert request.fp16_exporter() is export_fp16

    def without_train_extra(self: importlib.metadata.EntryPoint) -> object:
        raise ImportError("No module named 'torch'")

    monkeypatch.setattr(importlib.metadata.EntryPoint, "load", without_train_extra)
    assert request.fp16_exporter() is None
    monkeypatch.setattr(request, "fp16_exporter", lambda: None)
    assert request.generate_fp16(Path("m.onnx"), "0" * 64, Path("/nonexistent")) is None
