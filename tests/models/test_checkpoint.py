"""Checkpoint reading: weights only, and a file that is none is a ValueError naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gsrender.models.checkpoint import load_checkpoint, read_checkpoint


def test_plain_tensors_load_and_pickled_code_does_not(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.ones(2)}, "config": {"model": {"name": "gskey"}}}, good)
    assert torch.equal(load_checkpoint(good)["model"]["w"], torch.ones(2))
    code = tmp_path / "code.pt"
    torch.save({"model": {}, "config": {}, "hook": Path("x")}, code)  # an object, not a container
    with pytest.raises(ValueError, match=f"{code}: not a PyTorch checkpoint of tensors"):
        read_checkpoint(code)
    no_config = tmp_path / "bare.pt"
    torch.save({"w": torch.ones(1)}, no_config)
    with pytest.raises(ValueError, match="not a gsrender checkpoint"):
        load_checkpoint(no_config)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: (d / "cut.pt", b"PK\x03\x04" + b"\0" * 40), "not a PyTorch checkpoint"),
        (lambda d: (d / "empty.pt", b""), "not a PyTorch checkpoint"),
        (lambda d: (d / "model.onnx", b"\x08\x07\x12\x07pytorch"), "an ONNX model, not a training"),
    ],
)
def test_a_file_that_is_no_checkpoint_is_a_value_error_naming_it(tmp_path: Path, make, words) -> None:
    path, data = make(tmp_path)
    path.write_bytes(data)
    with pytest.raises(ValueError, match=words) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_folder_or_missing_file_is_a_value_error_with_the_os_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read it"):
        read_checkpoint(tmp_path)
    with pytest.raises(ValueError, match=r"missing\.pt: cannot read it \(No such file"):
        read_checkpoint(tmp_path / "missing.pt")
