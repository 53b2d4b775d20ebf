"""Getting an engine: build once per node under a lock, reuse, rebuild stale ones, refuse
foreign explicit ones. The builder is injected (fakes.fake_builder), so no GPU is needed
except for the doubles-backed test at the end.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from gsrender.engine.atomic_files import file_sha256
from gsrender.engine.backends.tensorrt.cache import (
    BuildRequest,
    check_engine,
    sidecar_path,
)
from gsrender.engine.backends.tensorrt.loader import ensure_engine, find_engine, load_engine_file
from gsrender.engine.backends.tensorrt.node import NodeIdentity, detect_node
from gsrender.engine.backends.tensorrt.profile import select_profile
from gsrender.engine.backends.tensorrt.request import prepare_request
from gsrender.engine.errors import BackendError
from tests.engine.backends.tensorrt.fakes import (
    HALO,
    NODE_A,
    NODE_B,
    STRIDE,
    fake_builder,
    leftovers,
    make_backend,
    make_request,
)


def test_builds_once_then_loads(tmp_path: Path, model: Path) -> None:
    calls = []

    def builder(req: BuildRequest) -> bytes:
        calls.append(req.key)
        return fake_builder(req)

    cache = tmp_path / "cache"
    first = ensure_engine(make_request(model), cache, builder)
    second = ensure_engine(make_request(model), cache, builder)
    assert first.built and not second.built and len(calls) == 1
    assert first.path == second.path and first.data == second.data
    meta = json.loads(sidecar_path(first.path).read_text())
    for k in ("model_sha256", "trt_version", "gpu_name", "compute_capability", "precision", "profile", "key"):
        assert meta[k] == make_request(model).key_fields()[k]
    assert meta["engine_bytes"] == len(first.data)
    assert leftovers(cache) == []
    assert ensure_engine(make_request(model), cache, builder, force=True).built and len(calls) == 2
    other = ensure_engine(make_request(model, precision="fp32"), cache, builder)
    assert other.path != first.path and len(calls) == 3


def _race_worker(args: tuple[str, str, str]) -> tuple[str, bool, str]:
    cache, model, counter = args
    os.environ["GSRENDER_TEST_BUILD_COUNTER"] = counter
    os.environ["GSRENDER_TEST_BUILD_SECONDS"] = "0.5"
    entry = ensure_engine(make_request(Path(model)), Path(cache), fake_builder, lock_timeout=60)
    return str(entry.path), entry.built, file_sha256(entry.path)


def test_concurrent_processes_build_exactly_once(tmp_path: Path, model: Path) -> None:
    counter = tmp_path / "builds.txt"
    cache = tmp_path / "cache"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.map(_race_worker, [(str(cache), str(model), str(counter))] * 4)
    assert len(counter.read_text().splitlines()) == 1, "the engine was built more than once"
    assert len({r[0] for r in results}) == 1 and len({r[2] for r in results}) == 1
    assert sum(r[1] for r in results) == 1  # one builder, three waited and loaded its engine
    assert leftovers(cache) == []


def test_failed_build_leaves_nothing_and_releases_the_lock(tmp_path: Path, model: Path) -> None:
    cache = tmp_path / "cache"

    def broken(req: BuildRequest) -> bytes:
        raise BackendError(None, "TensorRT engine build failed")

    with pytest.raises(BackendError):
        ensure_engine(make_request(model), cache, broken)
    assert not list(cache.glob("*.engine")) and leftovers(cache) == []
    assert ensure_engine(make_request(model), cache, fake_builder, lock_timeout=2).built


def test_no_build_allowed_says_how_to_fix(tmp_path: Path, model: Path) -> None:
    with pytest.raises(BackendError, match="gsrender build-engine"):
        ensure_engine(make_request(model), tmp_path, fake_builder, allow_build=False)


def _plant_foreign(tmp_path: Path, model: Path) -> tuple[Path, BuildRequest]:
    """An engine built on node A, copied to where node B looks for its engine (a shared cache)."""
    cache = tmp_path / "cache"
    a = ensure_engine(make_request(model, NODE_A), cache, fake_builder)
    req_b = make_request(model, NODE_B)
    dest = req_b.engine_path(cache)
    dest.write_bytes(a.path.read_bytes())
    sidecar_path(dest).write_text(sidecar_path(a.path).read_text())
    return cache, req_b


def test_foreign_engine_is_rebuilt_from_the_cache(tmp_path: Path, model: Path, caplog) -> None:
    cache, req_b = _plant_foreign(tmp_path, model)
    data, reason = check_engine(req_b.engine_path(cache), req_b)
    assert data is None and "another node" in reason and "H100" in reason and "A100" in reason
    with caplog.at_level("WARNING", logger="gsrender"):
        entry = ensure_engine(req_b, cache, fake_builder)
    assert entry.built and entry.sidecar["gpu_name"] == NODE_B.gpu_name
    assert "rebuilding" in caplog.text and "another node" in caplog.text
    assert check_engine(entry.path, req_b)[0] == entry.data


def test_foreign_engine_named_explicitly_is_refused(tmp_path: Path, model: Path) -> None:
    cache, req_b = _plant_foreign(tmp_path, model)
    with pytest.raises(BackendError, match=r"refusing .*another node: GPU 'NVIDIA H100"):
        load_engine_file(req_b.engine_path(cache), req_b)
    other_trt = NodeIdentity("11.0.0.9", NODE_A.gpu_name, NODE_A.compute_capability)
    good = ensure_engine(make_request(model, NODE_A), cache, fake_builder)
    with pytest.raises(BackendError, match="TensorRT '10.7.0.23'"):
        load_engine_file(good.path, make_request(model, other_trt))


@pytest.mark.parametrize("damage", ["truncate", "no_sidecar", "other_model", "bad_json"])
def test_stale_or_damaged_engine_is_rebuilt(tmp_path: Path, model: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    entry = ensure_engine(make_request(model), cache, fake_builder)
    side = sidecar_path(entry.path)
    if damage == "truncate":
        entry.path.write_bytes(entry.data[:10])
    elif damage == "no_sidecar":
        side.unlink()
    elif damage == "bad_json":
        side.write_text("{")
    else:
        meta = json.loads(side.read_text())
        meta["model_sha256"] = "0" * 64
        side.write_text(json.dumps(meta))
    assert check_engine(entry.path, make_request(model))[0] is None
    again = ensure_engine(make_request(model), cache, fake_builder)
    assert again.built and again.data == entry.data and leftovers(cache) == []


def test_engine_with_other_tile_settings_is_reused(tmp_path: Path, model: Path) -> None:
    cache = tmp_path / "cache"
    wide = BuildRequest(**{**make_request(model).__dict__, "profile": select_profile(2048, HALO, STRIDE, 4)})
    built = ensure_engine(wide, cache, fake_builder)
    found = find_engine(make_request(model), cache)
    assert found is not None and found.path == built.path and found.sidecar["profile"]["max"][0] == 4
    assert find_engine(make_request(model, precision="fp32"), cache) is None
    assert find_engine(make_request(model, NODE_B), cache) is None
    built.path.write_bytes(b"truncated")
    assert find_engine(make_request(model), cache) is None


def test_fake_gpu_unloadable_cached_engine_is_rebuilt(fake_gpu, stressed_model: Path, tmp_path: Path) -> None:
    req = prepare_request(stressed_model, precision="fp16", node=detect_node(), cache_dir=tmp_path)
    ensure_engine(req, tmp_path, lambda r: b"plan from another TensorRT build")  # valid sidecar, bad plan
    b = make_backend(stressed_model, tmp_path, precision="fp16")
    b.close()
    assert len(fake_gpu.trt.builds) == 1
    bad = ensure_engine(req, tmp_path, lambda r: b"garbage", force=True)
    with pytest.raises(BackendError, match="cannot load this engine"):
        make_backend(stressed_model, tmp_path, precision="fp16", engine_path=bad.path)
