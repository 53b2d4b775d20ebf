"""Blender's compositor Keying node as a peer column of `gsrender evaluate` (--model blender)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from gsrender.cli import evaluate as evaluate_cli
from gsrender.engine.keyer import prepare_frame
from gsrender.training.evaluate import EvalSample
from gsrender.training.peers.blender_keying import (
    BlenderKeyingPredictor,
    border_key_colour,
    keying_node_mattes,
)

needs_blender = pytest.mark.skipif(
    shutil.which("blender") is None, reason="no 'blender' executable on PATH (apt-get install blender)"
)
SCREEN = np.array([0.06, 0.42, 0.09], np.float32)  # linear green screen paint
SUBJECT = np.array([0.45, 0.25, 0.15], np.float32)  # a brown, opaque subject


def _plate(h: int = 64, w: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Screen, an opaque block and a soft left-to-right ramp from screen to subject; and its alpha."""
    alpha = np.zeros((h, w), np.float32)
    alpha[12:36, 30:66] = 1.0
    alpha[44:56, 8:88] = np.linspace(0.0, 1.0, 80, dtype=np.float32)[None, :]
    plate = alpha[..., None] * SUBJECT + (1 - alpha[..., None]) * SCREEN
    return plate.astype(np.float32), alpha


def test_border_key_colour_is_the_screen_even_where_the_subject_touches_the_border() -> None:
    plate, _ = _plate()
    plate[40:, 30:66] = SUBJECT  # a body running off the bottom of the frame
    assert np.allclose(border_key_colour(plate), SCREEN, atol=1e-6)


@needs_blender
def test_keying_node_keys_screen_subject_and_soft_edge() -> None:
    plate, alpha = _plate()
    [matte], info = keying_node_mattes([plate])
    assert matte.shape == alpha.shape and matte.dtype == np.float32
    assert info["version"].startswith("Blender") and info["settings"]["clip_black"] == 0.0
    screen = alpha == 0
    screen[40:60] = False  # the ramp's own zero end
    assert float(np.abs(matte[screen]).max()) < 0.02
    assert float(matte[16:32, 34:62].min()) > 0.98
    ramp = matte[50, 8:88]
    mid = ramp[20:60]
    assert float(mid.min()) > 0.05 and float(mid.max()) < 0.995  # mixed, neither screen nor solid
    assert np.all(np.diff(ramp) >= -1e-3)  # coverage only grows along the ramp


@needs_blender
def test_one_blender_process_keys_a_batch_in_order() -> None:
    plate, alpha = _plate()
    flipped = np.ascontiguousarray(plate[::-1])
    mattes, _ = keying_node_mattes([plate, flipped])
    assert np.allclose(mattes[1], mattes[0][::-1], atol=1e-5)  # the right matte for each plate
    samples = [EvalSample(f"p{i}", prepare_frame(p), a, None) for i, (p, a) in enumerate([(plate, alpha)])]
    pred = BlenderKeyingPredictor()
    pred.prepare(samples)
    assert np.array_equal(pred(samples[0])[0], mattes[0])


@needs_blender
def test_evaluate_prints_the_blender_column_with_grad_and_conn(capsys) -> None:
    rc = evaluate_cli.main(
        ["--model", "classic", "--model", "blender", "--count", "2", "--size", "64", "--per-plate"]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "# blender: Blender " in out and "Keying node, default settings" in out and "border" in out
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.split()}
    assert "blender" in rows and "classic" in rows  # the means table
    assert "Grad blender" in out and "Conn blender" in out and "SAD blender" in out  # every plate
    assert sum(ln.startswith("val00") for ln in out.splitlines()) == 2
    assert "# blender beats classic on SAD " in out


def _fake_blender(folder: Path, body: str) -> None:
    exe = folder / "blender"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


def test_missing_blender_is_one_line_exit_5(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    rc = evaluate_cli.main(["--model", "classic", "--model", "blender", "--count", "1", "--size", "32"])
    err = capsys.readouterr().err.strip()
    assert rc == 5 and len(err.splitlines()) == 1 and "blender" in err and "not found" in err


def test_failing_blender_is_one_line_exit_5(tmp_path: Path, monkeypatch, capsys) -> None:
    _fake_blender(
        tmp_path,
        'if [ "$1" = "--version" ]; then echo "Blender 3.4.1"; exit 0; fi\n'
        'echo "Error: Python: cannot build the node tree" >&2; exit 3\n',
    )
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    rc = evaluate_cli.main(["--model", "blender", "--count", "1", "--size", "32"])
    err = capsys.readouterr().err.strip()
    assert rc == 5 and len(err.splitlines()) == 1
    assert "Keying node job failed (exit 3)" in err and "cannot build the node tree" in err
