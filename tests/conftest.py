"""Shared fixtures: small synthetic plates written as real files, and the bundled model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gsrender.engine.backends import default_model_path
from gsrender.engine.encoding import srgb_oetf
from gsrender.engine.image_write import write_frame

SCREEN = np.array([0.07, 0.42, 0.09], np.float32)


def error_lines(text: str) -> list[str]:
    """The `gsrender: error:` lines of a command's stderr."""
    return [line for line in text.splitlines() if line.startswith("gsrender: error:")]


def assert_one_line(err: str, *words: str) -> str:
    """Bad input ends in exactly one error line (never a traceback) naming `words`; returns it."""
    assert "Traceback" not in err, err
    lines = error_lines(err)
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def make_plate(h: int = 72, w: int = 104, seed: int = 0, hdr: bool = False) -> np.ndarray:
    """Linear plate: uneven green screen, a soft-edged disc, a few hair-like strands."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1.0 - 0.35 * xx / w
    plate = SCREEN * light[..., None]
    cy, cx, r = h * 0.55, w * (0.4 + 0.1 * rng.random()), min(h, w) * 0.3
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    alpha = np.clip(r - d + 0.5, 0, 1)
    for k in range(4):
        x0 = cx + (k - 1.5) * 4
        alpha = np.maximum(
            alpha, np.clip(0.6 - np.abs(xx - x0 - 0.2 * (cy - yy)), 0, 1) * (yy < cy - r * 0.6)
        )
    fg = np.empty((h, w, 3), np.float32)
    fg[...] = [0.55, 0.35, 0.25]
    if hdr:
        fg[int(cy) - 2 : int(cy) + 2, int(cx) - 2 : int(cx) + 2] = 6.0
    plate = alpha[..., None] * fg + (1 - alpha[..., None]) * plate
    plate += rng.normal(0, 0.002, plate.shape).astype(np.float32)
    return np.clip(plate, 0, None).astype(np.float32)


def write_plate(path: Path, plate: np.ndarray, **attrs: object) -> Path:
    """PNG/JPEG as sRGB 8-bit, EXR as linear half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".exr":
        write_frame(path, plate, ["R", "G", "B"], None, dtype="half", extra_attributes=attrs or None)
    else:
        write_frame(path, srgb_oetf(plate), ["R", "G", "B"], None, extra_attributes=attrs or None)
    return path


@pytest.fixture
def plate_seq(tmp_path: Path):
    """Factory: write frames 1001.. of a sequence; returns the folder."""

    def make(pattern: str = "plate.{:04d}.png", frames=range(1001, 1004), size=(72, 104)) -> Path:
        for i, f in enumerate(frames):
            write_plate(tmp_path / "in" / pattern.format(f), make_plate(*size, seed=i))
        return tmp_path / "in"

    return make


@pytest.fixture(scope="session")
def model_path() -> Path:
    path = default_model_path()
    assert path.is_file(), "the bundled model models/gskey.onnx is missing"
    return path
