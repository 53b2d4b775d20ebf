"""TensorRT engine cache: keys, shape profile, build-once locking, foreign engines. No GPU needed.

The builder step is injected: a fake builder writes bytes derived from the request, so
everything around TensorRT (key, lock, atomic rename, sidecar validation) runs here.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from gsrender.engine.backends.tensorrt_backend import make_job
from gsrender.engine.errors import BackendError, UsageError
from gsrender.engine.keyer import batch_tiles
from gsrender.engine.tile_profile import AUTO_TILE, resolve_tile
from gsrender.engine.tiling import plan_tiles
from gsrender.export import engine_build as eb

NODE_A = eb.NodeIdentity("10.7.0.23", "NVIDIA H100 80GB HBM3", "9.0")
NODE_B = eb.NodeIdentity("10.7.0.23", "NVIDIA A100-SXM4-80GB", "8.0")
HALO, STRIDE = 88, 8


def fake_builder(request: eb.BuildRequest) -> bytes:
    """Stands in for TensorRT: deterministic bytes from the key; counts calls in a side file."""
    counter = os.environ.get("GSRENDER_TEST_BUILD_COUNTER")
    if counter:
        with open(counter, "a") as f:  # only ever written while the engine lock is held
            f.write(f"{os.getpid()}\n")
    time.sleep(float(os.environ.get("GSRENDER_TEST_BUILD_SECONDS", "0")))
    return ("ENGINE:" + request.key).encode() * 64


def _request(model: Path, node: eb.NodeIdentity = NODE_A, precision: str = "fp16") -> eb.BuildRequest:
    return eb.BuildRequest(
        onnx_path=model,
        model_sha256=eb.file_sha256(model),
        precision=precision,
        strongly_typed=False,
        profile=eb.select_profile(eb.DEFAULT_MAX_TILE, HALO, STRIDE, eb.DEFAULT_MAX_BATCH),
        node=node,
    )


@pytest.fixture
def model(tmp_path: Path) -> Path:
    p = tmp_path / "m.onnx"
    p.write_bytes(b"not really onnx, the fake builder does not parse it")
    return p


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp" in p.name]


# --------------------------------------------------------------------------- key


def test_cache_key_changes_with_each_field() -> None:
    prof = eb.select_profile(1024, HALO, STRIDE, 2)
    base = dict(
        model_sha256="a" * 64,
        trt_version="10.7.0.23",
        gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
        precision="fp16",
        profile=prof,
    )
    key = eb.engine_cache_key(**base)
    assert key == eb.engine_cache_key(**base)  # deterministic
    assert key == eb.engine_cache_key(**{**base, "profile": prof.as_dict()})
    variants = {
        "model_sha256": "b" * 64,
        "trt_version": "11.0.0.1",
        "gpu_name": "NVIDIA L40S",
        "compute_capability": "8.9",
        "precision": "fp32",
        "profile": eb.select_profile(512, HALO, STRIDE, 2),
    }
    keys = {key}
    for field, value in variants.items():
        k = eb.engine_cache_key(**{**base, field: value})
        assert k != key, field
        keys.add(k)
    assert len(keys) == len(variants) + 1
    # the profile's batch and copy count are part of it too
    assert eb.engine_cache_key(**{**base, "profile": eb.select_profile(1024, HALO, STRIDE, 4)}) != key
    assert (
        eb.engine_cache_key(**{**base, "profile": eb.select_profile(1024, HALO, STRIDE, 2, copies=1)}) != key
    )


def test_engine_name_is_readable_and_keyed(model: Path) -> None:
    req = _request(model)
    name = req.engine_path(Path("/c")).name
    assert name.startswith("m-fp16-nvidia-h100-80gb-hbm3-sm90-trt10.7.0.23-") and name.endswith(".engine")
    assert req.key[:12] in name
    typed = eb.BuildRequest(**{**req.__dict__, "strongly_typed": True})
    assert typed.precision_label == "fp16-typed" and typed.key != req.key


# --------------------------------------------------------------------------- profile


@pytest.mark.parametrize(
    "size", [(1080, 1920), (2160, 3840), (1440, 2560), (1556, 2048), (1920, 1080), (1080, 1998), (4320, 7680)]
)
def test_profile_covers_the_keyers_default_tiles(size: tuple[int, int]) -> None:
    """Every batch the keyer sends for these frames (default --tile 0) fits without sub-tiling."""
    prof = eb.select_profile(eb.DEFAULT_MAX_TILE, HALO, STRIDE, eb.DEFAULT_MAX_BATCH)
    assert eb.DEFAULT_MAX_TILE == AUTO_TILE
    h, w = size
    plan = plan_tiles(h, w, tile=resolve_tile(0, h, w), halo=HALO, stride=STRIDE)
    batches = batch_tiles([(t, None) for t in plan.tiles], eb.DEFAULT_MAX_BATCH)
    for batch in batches:
        shape = (len(batch), 3, *batch[0][0].in_shape)
        assert prof.contains(shape), (size, shape, prof)
        zeros = np.broadcast_to(np.float32(0), shape)
        job = make_job(
            zeros,
            zeros,
            max_batch=prof.max[0],
            min_hw=prof.min[2:],
            max_hw=prof.max[2:],
            halo=HALO,
            stride=STRIDE,
        )
        assert all(prof.contains((len(c), 3, *c[0][0].shape[1:])) for c in job.chunks)
        assert sum(len(c) for c in job.chunks) == len(batch)  # no sub-tiling: same tiles
    assert prof.contains(prof.opt)


def test_profile_shapes() -> None:
    prof = eb.select_profile(1024, 88, 8, 2)
    assert prof.opt == (1, 3, 1200, 1200)  # 1024 + 2 * 88: the 4K interior tile
    assert prof.min == (1, 3, 8, 8)
    assert prof.max == (2, 3, 2560, 2560)  # untiled frames up to 2560x1440, either orientation
    assert not prof.contains((1, 3, 2160, 3840)) and not prof.contains((3, 3, 64, 64))
    assert eb.select_profile(4096, 88, 8, 1).max[2:] == (4272, 4272)
    with pytest.raises(UsageError):
        eb.select_profile(0, 88, 8, 2)


# --------------------------------------------------------------------------- build once, reuse


def test_builds_once_then_loads(tmp_path: Path, model: Path) -> None:
    calls = []

    def builder(req: eb.BuildRequest) -> bytes:
        calls.append(req.key)
        return fake_builder(req)

    cache = tmp_path / "cache"
    first = eb.ensure_engine(_request(model), cache, builder)
    second = eb.ensure_engine(_request(model), cache, builder)
    assert first.built and not second.built and len(calls) == 1
    assert first.path == second.path and first.data == second.data
    meta = json.loads(eb.sidecar_path(first.path).read_text())
    for k in ("model_sha256", "trt_version", "gpu_name", "compute_capability", "precision", "profile", "key"):
        assert meta[k] == _request(model).key_fields()[k]
    assert meta["engine_bytes"] == len(first.data)
    assert _leftovers(cache) == []
    assert eb.ensure_engine(_request(model), cache, builder, force=True).built and len(calls) == 2
    other = eb.ensure_engine(_request(model, precision="fp32"), cache, builder)
    assert other.path != first.path and len(calls) == 3


def _race_worker(args: tuple[str, str, str]) -> tuple[str, bool, str]:
    cache, model, counter = args
    os.environ["GSRENDER_TEST_BUILD_COUNTER"] = counter
    os.environ["GSRENDER_TEST_BUILD_SECONDS"] = "0.5"
    entry = eb.ensure_engine(_request(Path(model)), Path(cache), fake_builder, lock_timeout=60)
    return str(entry.path), entry.built, eb.file_sha256(entry.path)


def test_concurrent_processes_build_exactly_once(tmp_path: Path, model: Path) -> None:
    counter = tmp_path / "builds.txt"
    cache = tmp_path / "cache"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.map(_race_worker, [(str(cache), str(model), str(counter))] * 4)
    assert len(counter.read_text().splitlines()) == 1, "the engine was built more than once"
    assert len({r[0] for r in results}) == 1 and len({r[2] for r in results}) == 1
    assert sum(r[1] for r in results) == 1  # one builder, three waited and loaded its engine
    assert _leftovers(cache) == []


def test_failed_build_leaves_nothing_and_releases_the_lock(tmp_path: Path, model: Path) -> None:
    cache = tmp_path / "cache"

    def broken(req: eb.BuildRequest) -> bytes:
        raise BackendError(None, "TensorRT engine build failed")

    with pytest.raises(BackendError):
        eb.ensure_engine(_request(model), cache, broken)
    assert not list(cache.glob("*.engine")) and _leftovers(cache) == []
    assert eb.ensure_engine(_request(model), cache, fake_builder, lock_timeout=2).built


def test_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        eb.atomic_write(tmp_path / "x.engine", object())  # fails after the temp file was opened
    assert list(tmp_path.iterdir()) == []


def test_lock_wait_times_out_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "e.engine.lock"
    with eb.file_lock(path):
        assert f"pid {os.getpid()}" in path.read_text()
        with pytest.raises(BackendError, match="timed out"):
            with eb.file_lock(path, timeout=0.3, poll=0.05):
                pass
    with eb.file_lock(path, timeout=0.3):  # released
        pass


def test_no_build_allowed_says_how_to_fix(tmp_path: Path, model: Path) -> None:
    with pytest.raises(BackendError, match="gsrender build-engine"):
        eb.ensure_engine(_request(model), tmp_path, fake_builder, allow_build=False)


# --------------------------------------------------------------------------- foreign and stale engines


def _plant_foreign(tmp_path: Path, model: Path) -> tuple[Path, eb.BuildRequest]:
    """An engine built on node A, copied to where node B looks for its engine (a shared cache)."""
    cache = tmp_path / "cache"
    a = eb.ensure_engine(_request(model, NODE_A), cache, fake_builder)
    req_b = _request(model, NODE_B)
    dest = req_b.engine_path(cache)
    dest.write_bytes(a.path.read_bytes())
    eb.sidecar_path(dest).write_text(eb.sidecar_path(a.path).read_text())
    return cache, req_b


def test_foreign_engine_is_rebuilt_from_the_cache(tmp_path: Path, model: Path, caplog) -> None:
    cache, req_b = _plant_foreign(tmp_path, model)
    data, reason = eb.check_engine(req_b.engine_path(cache), req_b)
    assert data is None and "another node" in reason and "H100" in reason and "A100" in reason
    with caplog.at_level("WARNING", logger="gsrender"):
        entry = eb.ensure_engine(req_b, cache, fake_builder)
    assert entry.built and entry.sidecar["gpu_name"] == NODE_B.gpu_name
    assert "rebuilding" in caplog.text and "another node" in caplog.text
    assert eb.check_engine(entry.path, req_b)[0] == entry.data


def test_foreign_engine_named_explicitly_is_refused(tmp_path: Path, model: Path) -> None:
    cache, req_b = _plant_foreign(tmp_path, model)
    with pytest.raises(BackendError, match=r"refusing .*another node: GPU 'NVIDIA H100"):
        eb.load_engine_file(req_b.engine_path(cache), req_b)
    other_trt = eb.NodeIdentity("11.0.0.9", NODE_A.gpu_name, NODE_A.compute_capability)
    good = eb.ensure_engine(_request(model, NODE_A), cache, fake_builder)
    with pytest.raises(BackendError, match="TensorRT '10.7.0.23'"):
        eb.load_engine_file(good.path, _request(model, other_trt))


@pytest.mark.parametrize("damage", ["truncate", "no_sidecar", "other_model", "bad_json"])
def test_stale_or_damaged_engine_is_rebuilt(tmp_path: Path, model: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    entry = eb.ensure_engine(_request(model), cache, fake_builder)
    side = eb.sidecar_path(entry.path)
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
    assert eb.check_engine(entry.path, _request(model))[0] is None
    again = eb.ensure_engine(_request(model), cache, fake_builder)
    assert again.built and again.data == entry.data and _leftovers(cache) == []


def test_engine_with_other_tile_settings_is_reused(tmp_path: Path, model: Path) -> None:
    cache = tmp_path / "cache"
    wide = eb.BuildRequest(
        **{**_request(model).__dict__, "profile": eb.select_profile(2048, HALO, STRIDE, 4)}
    )
    built = eb.ensure_engine(wide, cache, fake_builder)
    found = eb.find_engine(_request(model), cache)
    assert found is not None and found.path == built.path and found.sidecar["profile"]["max"][0] == 4
    assert eb.find_engine(_request(model, precision="fp32"), cache) is None
    assert eb.find_engine(_request(model, NODE_B), cache) is None
    built.path.write_bytes(b"truncated")
    assert eb.find_engine(_request(model), cache) is None


def test_list_engines_marks_usable(tmp_path: Path, model: Path) -> None:
    cache = tmp_path / "cache"
    eb.ensure_engine(_request(model, NODE_A), cache, fake_builder)
    eb.ensure_engine(_request(model, NODE_B), cache, fake_builder)
    usable = {e["gpu_name"]: e["usable"] for e in eb.list_engines(cache, NODE_A)}
    assert usable == {NODE_A.gpu_name: True, NODE_B.gpu_name: False}
    assert eb.list_engines(tmp_path / "missing") == []


# --------------------------------------------------------------------------- which ONNX, which precision


def test_fp32_layers_are_the_input_arithmetic_and_the_head(model_path: Path) -> None:
    g = onnx.load(str(model_path)).graph
    layers = [(n.op_type == "Conv", list(n.input), list(n.output)) for n in g.node]
    pinned = eb.head_layer_indices(layers)
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
    assert "Resize" not in {g.node[i].op_type for i in pinned}


def test_onnx_for_each_precision_and_tensorrt(tmp_path: Path, model_path: Path) -> None:
    assert eb.resolve_build_onnx(model_path, "fp32", 10, tmp_path) == (model_path, False)
    assert eb.resolve_build_onnx(model_path, "fp16", 10, tmp_path) == (model_path, False)  # FP16 flag
    with pytest.raises(UsageError):
        eb.resolve_build_onnx(model_path, "fp16", 11, tmp_path, typing="weak")
    with pytest.raises(BackendError, match="not found"):
        eb.resolve_build_onnx(model_path, "fp16", 11, tmp_path, fp16_model=tmp_path / "nope.onnx")
    pytest.importorskip("torch", reason="the FP16 exporter needs the [train] extra")
    path, strong = eb.resolve_build_onnx(model_path, "fp16", 11, tmp_path)  # TensorRT 11: FP16 ONNX
    assert strong and path != model_path and path.parent == tmp_path / "onnx"
    assert eb.read_onnx_metadata(path)["gsrender.precision"] == "fp16"
    mtime = path.stat().st_mtime_ns
    assert eb.resolve_build_onnx(model_path, "fp16", 11, tmp_path) == (path, True)  # cached by hash
    assert path.stat().st_mtime_ns == mtime
    assert eb.resolve_build_onnx(path, "fp16", 10, tmp_path) == (path, True)  # an FP16 model as given


def test_fp16_sibling_is_used_only_when_it_matches(
    tmp_path: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the exporter (no [train] extra), <stem>_fp16.onnx beside the model is the FP16 source."""
    monkeypatch.setattr(eb, "_generate_fp16", lambda *a: None)
    model = tmp_path / "gskey.onnx"
    model.write_bytes(model_path.read_bytes())
    with pytest.raises(BackendError, match="--fp16-model"):
        eb.resolve_build_onnx(model, "fp16", 11, tmp_path)
    sibling = tmp_path / "gskey_fp16.onnx"

    def write_sibling(meta: dict[str, str]) -> None:
        m = onnx.load(str(model_path))
        for k, v in {"gsrender.precision": "fp16", **meta}.items():
            m.metadata_props.add(key=k, value=v)
        onnx.save(m, str(sibling))

    write_sibling({})  # no provenance: used, with a warning
    assert eb.resolve_build_onnx(model, "fp16", 11, tmp_path) == (sibling, True)
    write_sibling({"gsrender.source_sha256": eb.file_sha256(model)})
    assert eb.resolve_build_onnx(model, "fp16", 11, tmp_path) == (sibling, True)
    write_sibling({"gsrender.source_sha256": "0" * 64})  # made from another model version: never used
    with pytest.raises(BackendError):
        eb.resolve_build_onnx(model, "fp16", 11, tmp_path)
    with pytest.raises(UsageError, match="FP16 ONNX"):
        eb.resolve_build_onnx(sibling, "fp32", 10, tmp_path)


def test_prepare_request_reads_the_model(tmp_path: Path, model_path: Path) -> None:
    r16 = eb.prepare_request(model_path, precision="fp16", node=NODE_A, cache_dir=tmp_path)
    r32 = eb.prepare_request(model_path, precision="fp32", node=NODE_A, cache_dir=tmp_path)
    assert r16.profile == eb.select_profile(AUTO_TILE, 88, 8, eb.DEFAULT_MAX_BATCH)
    assert r16.key != r32.key and r16.timing_cache == eb.timing_cache_path(tmp_path, NODE_A)
    with pytest.raises(UsageError):
        eb.prepare_request(model_path, precision="int8", node=NODE_A, cache_dir=tmp_path)
    with pytest.raises(BackendError, match="not found"):
        eb.prepare_request(tmp_path / "x.onnx", node=NODE_A, cache_dir=tmp_path)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(eb.CACHE_ENV, str(tmp_path / "e"))
    assert eb.default_cache_dir() == tmp_path / "e"
    monkeypatch.delenv(eb.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert eb.default_cache_dir() == tmp_path / "x" / "gsrender" / "engines"


# --------------------------------------------------------------------------- CLI


def test_cli_list_and_dry_run(tmp_path: Path, model: Path, capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cache"
    eb.ensure_engine(_request(model, NODE_B), cache, fake_builder)
    assert eb.main(["--list", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "1 engine(s)" in out and "A100" in out
    assert eb.main(["--dry-run", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "max (1, 3, 2560, 2560)" in out and "opt (1, 3, 1712, 1712)" in out  # 1536 + 2 * 88


def test_cli_without_tensorrt_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import importlib.util

    if importlib.util.find_spec("tensorrt") and importlib.util.find_spec("pycuda"):
        pytest.skip("TensorRT is installed here")
    assert eb.main(["--cache", str(tmp_path)]) == 5
    err = capsys.readouterr().err
    assert "gsrender build-engine: error:" in err and "gsrender[tensorrt]" in err
