"""`gsrender build-engine`: listing, dry run, and the error without TensorRT. No GPU needed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gsrender.cli.build_engine import main
from gsrender.engine.backends.tensorrt.loader import ensure_engine
from tests.engine.backends.tensorrt.fakes import NODE_B, fake_builder, make_request


def test_cli_list_and_dry_run(
    tmp_path: Path, model: Path, shipped_halo: int, capsys: pytest.CaptureFixture
) -> None:
    cache = tmp_path / "cache"
    ensure_engine(make_request(model, NODE_B), cache, fake_builder)
    assert main(["--list", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "1 engine(s)" in out and "A100" in out
    assert main(["--dry-run", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    opt = 1536 + 2 * shipped_halo  # the default tile and the bundled model's halo
    assert "max (1, 3, 2560, 2560)" in out and f"opt (1, 3, {opt}, {opt})" in out


def test_cli_without_tensorrt_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:

    if importlib.util.find_spec("tensorrt") and importlib.util.find_spec("pycuda"):
        pytest.skip("TensorRT is installed here")
    assert main(["--cache", str(tmp_path)]) == 5
    err = capsys.readouterr().err
    assert "gsrender build-engine: error:" in err and "gsrender[tensorrt]" in err
