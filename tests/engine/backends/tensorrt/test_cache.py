"""The engine cache on disk: keys, names, the lock, atomic writes, listing. No GPU needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gsrender.engine.atomic_files import atomic_write_bytes
from gsrender.engine.backends.tensorrt.cache import (
    CACHE_ENV,
    BuildRequest,
    default_cache_dir,
    engine_cache_key,
    file_lock,
    list_engines,
)
from gsrender.engine.backends.tensorrt.loader import ensure_engine
from gsrender.engine.backends.tensorrt.profile import select_profile
from gsrender.engine.errors import BackendError
from tests.engine.backends.tensorrt.fakes import HALO, NODE_A, NODE_B, STRIDE, fake_builder, make_request


def test_cache_key_changes_with_each_field() -> None:
    prof = select_profile(1024, HALO, STRIDE, 2)
    base = dict(
        model_sha256="a" * 64,
        trt_version="10.7.0.23",
        gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
        precision="fp16",
        profile=prof,
    )
    key = engine_cache_key(**base)
    assert key == engine_cache_key(**base)  # deterministic
    assert key == engine_cache_key(**{**base, "profile": prof.as_dict()})
    variants = {
        "model_sha256": "b" * 64,
        "trt_version": "11.0.0.1",
        "gpu_name": "NVIDIA L40S",
        "compute_capability": "8.9",
        "precision": "fp32",
        "profile": select_profile(512, HALO, STRIDE, 2),
    }
    keys = {key}
    for field, value in variants.items():
        k = engine_cache_key(**{**base, field: value})
        assert k != key, field
        keys.add(k)
    assert len(keys) == len(variants) + 1
    # the profile's batch and copy count are part of it too
    assert engine_cache_key(**{**base, "profile": select_profile(1024, HALO, STRIDE, 4)}) != key
    assert engine_cache_key(**{**base, "profile": select_profile(1024, HALO, STRIDE, 2, copies=1)}) != key


def test_engine_name_is_readable_and_keyed(model: Path) -> None:
    req = make_request(model)
    name = req.engine_path(Path("/c")).name
    assert name.startswith("m-fp16-nvidia-h100-80gb-hbm3-sm90-trt10.7.0.23-") and name.endswith(".engine")
    assert req.key[:12] in name
    typed = BuildRequest(**{**req.__dict__, "strongly_typed": True})
    assert typed.precision_label == "fp16-typed" and typed.key != req.key


def test_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "x.engine", object())  # fails after the temp file was opened
    assert list(tmp_path.iterdir()) == []


def test_lock_wait_times_out_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "e.engine.lock"
    with file_lock(path):
        assert f"pid {os.getpid()}" in path.read_text()
        with pytest.raises(BackendError, match="timed out"):
            with file_lock(path, timeout=0.3, poll=0.05):
                pass
    with file_lock(path, timeout=0.3):  # released
        pass


def test_list_engines_marks_usable(tmp_path: Path, model: Path) -> None:
    cache = tmp_path / "cache"
    ensure_engine(make_request(model, NODE_A), cache, fake_builder)
    ensure_engine(make_request(model, NODE_B), cache, fake_builder)
    usable = {e["gpu_name"]: e["usable"] for e in list_engines(cache, NODE_A)}
    assert usable == {NODE_A.gpu_name: True, NODE_B.gpu_name: False}
    assert list_engines(tmp_path / "missing") == []


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "e"))
    assert default_cache_dir() == tmp_path / "e"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "gsrender" / "engines"
