"""Evaluation: every model kind on the same plates, all metrics reported."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from gsrender.cli import evaluate as evaluate_cli
from gsrender.export.onnx_export import export_onnx
from gsrender.models.networks import build_model
from gsrender.training import config as C
from gsrender.training import evaluate as EV

COLUMNS = ["sad", "mse", "grad", "conn", "sad_unknown", "mse_unknown", "grad_unknown", "conn_unknown", "fg"]


def _tiny_checkpoint(path: Path, name: str) -> None:
    cfg = C.load_config(name)
    torch.manual_seed(0)
    model = build_model(name, **cfg["model"]["kwargs"])
    torch.save({"model": model.state_dict(), "config": cfg}, path)


def test_classic_and_checkpoints_on_two_plates(tmp_path: Path, capsys) -> None:
    _tiny_checkpoint(tmp_path / "gskey.pt", "gskey")
    _tiny_checkpoint(tmp_path / "seed.pt", "seed_regression")
    export_onnx(tmp_path / "gskey.pt", tmp_path / "gskey.onnx")
    out_csv = tmp_path / "eval.csv"
    args = ["--model", "classic", "--model", str(tmp_path / "gskey.pt"), "--model", str(tmp_path / "seed.pt")]
    args += ["--model", str(tmp_path / "gskey.onnx")]
    rc = evaluate_cli.main([*args, "--count", "2", "--size", "60", "--csv", str(out_csv), "--markdown"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| model | SAD |" in text and "FG err" in text and "ms/MP" in text
    with open(out_csv, newline="") as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"classic", "gskey.pt", "seed.pt", "gskey.onnx"}
    for r in rows.values():
        for k in [*COLUMNS, "ms_per_mp"]:
            v = float(r[k])
            assert math.isfinite(v) and v >= 0.0, (r["model"], k, v)
    for k in COLUMNS:  # the exported model scores like its checkpoint
        assert float(rows["gskey.onnx"][k]) == pytest.approx(float(rows["gskey.pt"][k]), rel=1e-3, abs=1e-5)


def test_predictions_padded_and_cropped_back(tmp_path: Path) -> None:
    """60 px is not a multiple of the stride: the network sees 64 px, the metrics 60 px."""
    _tiny_checkpoint(tmp_path / "gskey.pt", "gskey")
    pred = EV.TorchPredictor.from_checkpoint(tmp_path / "gskey.pt")
    s = EV.synthetic_samples(1, 60)[0]
    alpha, bg = pred(s)
    assert alpha.shape == (60, 60) and bg.shape == (3, 60, 60)
    fg = EV.predicted_foreground(s, alpha, bg)
    assert fg.shape == (60, 60, 3)


def test_hard_half_is_defined_by_the_classic_keyer() -> None:
    samples = EV.synthetic_samples(4, 64)
    hard = EV.hard_half(samples)
    assert len(hard) == 2
    classic = EV.ClassicPredictor()
    sad = {s.name: float(abs(classic(s)[0] - s.alpha).sum()) for s in samples}
    assert min(sad[s.name] for s in hard) >= max(v for k, v in sad.items() if k not in {s.name for s in hard})


def test_unknown_model_is_a_usage_error(capsys) -> None:
    assert evaluate_cli.main(["--model", "nope.pt", "--count", "1"]) == 2
    assert "nope.pt" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--count", "0"], ["--size", "4"]])
def test_bad_sizes_rejected(bad: list[str]) -> None:
    assert evaluate_cli.main(["--model", "classic", *bad]) == 2


def test_a_table_or_sheet_that_cannot_be_written_is_refused_before_keying(tmp_path: Path, capsys) -> None:
    """--csv or --sheet naming a folder is exit 2, and one under a file is exit 4, both before
    any plate is keyed; a folder that does not exist yet is made for the table."""
    base = ["--model", "classic", "--count", "1", "--size", "64"]
    assert evaluate_cli.main([*base, "--csv", str(tmp_path)]) == 2
    assert "--csv names a folder" in capsys.readouterr().err
    assert evaluate_cli.main(["--model", "classic", "--real", str(tmp_path), "--sheet", str(tmp_path)]) == 2
    assert "--sheet names a folder" in capsys.readouterr().err
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert evaluate_cli.main([*base, "--csv", str(blocker / "scores.csv")]) == 4
    out = capsys.readouterr()
    assert "is not a folder" in out.err and "classic" not in out.out  # nothing was keyed
    table = tmp_path / "new" / "scores.csv"
    assert evaluate_cli.main([*base, "--csv", str(table)]) == 0
    assert table.read_text().startswith("model,")


def test_sequence_reports_temporal_flicker(capsys):
    from gsrender.cli.evaluate import main as evaluate_main

    assert evaluate_main(["--model", "classic", "--data", "sequence", "--count", "3", "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "dtSSD" in out and "3-frame synthetic shot" in out
    row = [line for line in out.splitlines() if line.startswith("classic")][0]
    assert row.split()[-2] != "-"  # flicker computed for a sequence
