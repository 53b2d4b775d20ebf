"""ONNX export: matches torch, carries the engine's metadata, dynamic sizes, FP16 with FP32 I/O."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from gsrender.cli import export as X
from gsrender.export import onnx_export as E
from gsrender.models.networks import build_model
from gsrender.models.networks.gskey import receptive_radius
from gsrender.training import config as C


def _checkpoint(path: Path, name: str = "gskey") -> torch.nn.Module:
    """A randomly initialised checkpoint in the training format (weights_only-loadable)."""
    cfg = C.load_config(name)
    torch.manual_seed(3)
    model = build_model(name, **cfg["model"]["kwargs"]).eval()
    with torch.no_grad():  # larger than default init so outputs are not all near 0.5 / the guide
        for p in model.parameters():
            p.mul_(3.0)
    torch.save(
        {
            "model": model.state_dict(),
            "config": cfg,
            "config_sha256": C.config_sha256(cfg),
            "train_command": "gsrender-train --config gskey --out runs/test",
            "step": 0,
        },
        path,
    )
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path, Path]:
    d = tmp_path_factory.mktemp("export")
    model = _checkpoint(d / "ck.pt")
    onnx_path = E.export_onnx(d / "ck.pt", d / "gskey.onnx")
    fp16 = E.export_fp16(onnx_path, d / "gskey_fp16.onnx")
    return model, onnx_path, fp16


def test_onnx_matches_torch(exported) -> None:
    model, path, _ = exported
    res = E.validate_onnx(model, path, plates=1, plate_size=64)
    assert res["ok"], res
    assert res["alpha_max_abs_diff"] < 1e-4 and res["bg_max_abs_diff"] < 1e-4
    assert len(res["cases"]) == 3  # two random sizes + one real plate with its guide


def test_metadata_for_the_engine(exported) -> None:
    _, path, _ = exported
    meta = E.read_metadata(path)
    assert meta["gsrender.model"] == "gskey"
    assert meta["gsrender.stride"] == "8"
    halo = int(meta["gsrender.halo"])
    assert halo % 8 == 0 and receptive_radius() <= halo < receptive_radius() + 8
    assert meta["gsrender.encoding"] == "srgb_clip"
    assert meta["gsrender.inputs"] == "plate,screen" and meta["gsrender.outputs"] == "alpha,bg"
    assert len(meta["gsrender.config_sha256"]) == 64
    assert meta["gsrender.train_command"].startswith("gsrender-train")
    m = onnx.load(str(path))
    assert m.opset_import[0].version >= 17
    onnx.checker.check_model(m)


@pytest.mark.parametrize("shape", [(1, 3, 48, 80), (2, 3, 104, 56)])
def test_dynamic_batch_height_width(exported, shape: tuple[int, ...]) -> None:
    model, path, _ = exported
    rng = np.random.default_rng(sum(shape))
    plate, screen = rng.random(shape, np.float32), rng.random(shape, np.float32)
    alpha, bg = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["alpha", "bg"], {"plate": plate, "screen": screen}
    )
    with torch.no_grad():
        ta, tb = model(torch.from_numpy(plate), torch.from_numpy(screen))
    assert alpha.shape == (shape[0], 1, *shape[2:]) and bg.shape == shape
    assert np.abs(alpha - ta.numpy()).max() < 1e-4 and np.abs(bg - tb.numpy()).max() < 1e-4


def test_fp16_graph_has_fp32_io_fp16_weights(exported) -> None:
    _, _, fp16 = exported
    st = E.fp16_structure(fp16)
    assert set(st["io"].values()) == {"FLOAT"}
    assert st["initializers"] == {"FLOAT16": st["initializers"]["FLOAT16"]}  # every weight is fp16
    # the input arithmetic before the first convolution stays FP32 and is cast into the FP16 trunk
    assert "FLOAT16" in {to for _, to in st["casts"]}
    m = onnx.load(str(fp16))
    onnx.checker.check_model(m, full_check=True)
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    types = {vi.name: vi.type.tensor_type.elem_type for vi in m.graph.value_info}
    assert convs and all(types[n.output[0]] == onnx.TensorProto.FLOAT16 for n in convs)
    assert E.read_metadata(fp16)["gsrender.precision"] == "fp16"


def test_fp16_close_to_fp32_in_onnxruntime(exported) -> None:
    model, path, fp16 = exported
    res = E.validate_onnx(model, fp16, plates=0, reference_path=path, tolerance=E.FP16_TOLERANCE)
    assert res["ok"], res


def test_cli_exports_both_and_rejects_seed_models(tmp_path: Path, capsys) -> None:
    _checkpoint(tmp_path / "ck.pt")
    out, out16 = tmp_path / "m" / "gskey.onnx", tmp_path / "m" / "gskey_fp16.onnx"
    assert X.main([str(tmp_path / "ck.pt"), "-o", str(out), "--fp16", str(out16), "--plates", "0"]) == 0
    assert out.is_file() and out16.is_file()
    assert "OK" in capsys.readouterr().out
    _checkpoint(tmp_path / "seed.pt", "seed_regression")
    assert X.main([str(tmp_path / "seed.pt"), "-o", str(tmp_path / "seed.onnx")]) == 2


def test_a_model_option_the_network_does_not_take_is_one_line_naming_the_checkpoint(
    tmp_path: Path, capsys
) -> None:
    ck = tmp_path / "ck.pt"
    _checkpoint(ck, "gskey3")
    for item, words in (
        ("model.kwargs.gate=bogus", "gate must be one of"),
        ("model.kwargs.clip_white=0", "clip_black and clip_white"),
        ("model.kwargs.bogus=1", "bogus"),
    ):
        assert X.main([str(ck), "-o", str(tmp_path / "x.onnx"), "--set", item, "--no-validate"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(ck) in err[0] and words in err[0], err
    assert not (tmp_path / "x.onnx").exists()


def test_a_file_that_is_no_checkpoint_is_one_line_naming_it(tmp_path: Path, capsys) -> None:
    """A truncated checkpoint, an ONNX model, a folder or a missing file: exit 2, one line that
    names the file and what it is, and nothing written."""
    ck = tmp_path / "ck.pt"
    _checkpoint(ck)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(ck.read_bytes()[:5000])
    model = tmp_path / "gskey.onnx"
    E.export_onnx(ck, model)
    for bad, words in (
        (cut, "not a PyTorch checkpoint"),
        (model, "an ONNX model, not a training checkpoint"),
        (tmp_path, "cannot read it"),
        (tmp_path / "missing.pt", "cannot read it"),
    ):
        assert X.main([str(bad), "-o", str(tmp_path / "x.onnx"), "--no-validate"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(bad) in err[0] and words in err[0], err
    assert not (tmp_path / "x.onnx").exists()
