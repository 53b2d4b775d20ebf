"""Memory is budgeted from the whole header before decoding: data and display windows, the
output's size and the network's tiles, against --max-pixels and the free memory; and the
screen estimate's memory grows with the pixel count, not with the product of the sides."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from gsrender.engine import screen_estimate
from gsrender.engine.cli import main
from gsrender.engine.frame_budget import FRAME_BYTES_PER_PIXEL
from gsrender.engine.preflight import DEFAULT_MAX_PIXELS, available_memory
from tests.conftest import assert_one_line, make_plate, write_plate
from tests.engine.test_hardening import _png_declaring


def run(*args: object) -> int:
    return main([str(a) for a in args])


def _exr_with_display_window(path: Path, side: int) -> Path:
    """A 64x64 plate whose display window is side x side (a few hundred bytes on disk)."""
    spec = oiio.ImageSpec(64, 64, 3, "half")
    spec.full_width = spec.full_height = side
    out = oiio.ImageOutput.create("openexr")
    assert out.open(str(path), spec)
    assert out.write_image(make_plate(64, 64))
    assert out.close()
    return path


@pytest.mark.parametrize("output, extra", [("k.png", ()), ("k.exr", ("--output-window", "display"))])
def test_a_huge_display_window_is_refused_when_the_output_would_fill_it(tmp_path, capsys, output, extra):
    src = _exr_with_display_window(tmp_path / "p.exr", 200_000)
    assert src.stat().st_size < 64_000
    assert run(src, "-o", tmp_path / output, *extra) == 3
    assert_one_line(capsys.readouterr().err, "p.exr", "display window", "200000x200000", "--max-pixels")
    assert not (tmp_path / output).exists()


def test_the_same_plate_keys_to_its_data_window(tmp_path):
    src = _exr_with_display_window(tmp_path / "p.exr", 200_000)
    assert run(src, "-o", tmp_path / "k.exr") == 0  # EXR keeps the data window: 64x64 written


def test_a_png_declaring_the_default_limit_is_refused_from_its_header(tmp_path, capsys):
    side = int(DEFAULT_MAX_PIXELS**0.5)
    free = available_memory()
    if free is None or free > side * side * FRAME_BYTES_PER_PIXEL:
        pytest.skip("this machine has the memory to key a 16384x16384 frame")
    bomb = _png_declaring(tmp_path / "bomb.png", side, side)
    assert run(bomb, "-o", tmp_path / "k.exr") == 3
    assert_one_line(capsys.readouterr().err, "bomb.png", "16384x16384", "GiB of memory is available")


def test_a_matte_declaring_a_huge_image_is_refused_before_decoding(tmp_path, capsys):
    src = write_plate(tmp_path / "p.png", make_plate())
    matte = _png_declaring(tmp_path / "matte.png", 20000, 20000)
    assert run(src, "-o", tmp_path / "k.exr", "--garbage-matte", matte, "--matte-fit") == 3
    assert_one_line(capsys.readouterr().err, "matte.png", "20000x20000", "--max-pixels")


# ---------------------------------------------------------------- screen estimate


def _dense_reference(grid: np.ndarray, height: int, width: int, padded: tuple[int, int] | None) -> np.ndarray:
    """The upsampling as two whole dense matrix products (how it was computed before bands)."""

    def weights(n: int, size: int, cell: int) -> np.ndarray:
        pos = np.clip((np.arange(n, dtype=np.float64) + 0.5) / cell - 0.5, 0, size - 1)
        i0 = np.floor(pos).astype(np.int64)
        i1 = np.minimum(i0 + 1, size - 1)
        m = np.zeros((n, size), np.float32)
        np.add.at(m, (np.arange(n), i0), 1 - (pos - i0))
        np.add.at(m, (np.arange(n), i1), pos - i0)
        return m

    ph, pw = padded or (height, width)
    wy = weights(height, grid.shape[0], screen_estimate.CELL_PX)
    wx = weights(width, grid.shape[1], screen_estimate.CELL_PX)
    wy = np.concatenate([wy, np.repeat(wy[-1:], ph - height, axis=0)])
    wx = np.concatenate([wx, np.repeat(wx[-1:], pw - width, axis=0)])
    return np.stack([wy @ np.ascontiguousarray(grid[..., c]) @ wx.T for c in range(3)])


def _grid(height: int, width: int, seed: int) -> np.ndarray:
    cell = screen_estimate.CELL_PX
    rng = np.random.default_rng(seed)
    return rng.random((-(-height // cell), -(-width // cell), 3), dtype=np.float32) * 4


@pytest.mark.parametrize(
    "height, width, padded",
    [(1080, 1920, None), (1080, 1920, (1088, 1920)), (2160, 4096, (2176, 4096)), (37, 1001, (40, 1008)),
     (1, 1, None), (517, 3, (520, 8))],
)  # fmt: skip
def test_upsampling_is_bit_identical_where_it_fits_one_band(height, width, padded):
    grid = _grid(height, width, height + width)
    got = screen_estimate._upsample_chw(grid, height, width, padded)
    np.testing.assert_array_equal(got, _dense_reference(grid, height, width, padded))


def test_banded_upsampling_sums_the_same_weights(monkeypatch):
    monkeypatch.setattr(screen_estimate, "BAND_ELEMENTS", 500)  # force many small bands
    for seed, (h, w, padded) in enumerate([(300, 700, (304, 704)), (1, 4000, None), (900, 2, (904, 8))]):
        grid = _grid(h, w, seed)
        got = screen_estimate._upsample_chw(grid, h, w, padded)
        np.testing.assert_allclose(got, _dense_reference(grid, h, w, padded), rtol=1e-6, atol=1e-6)


def test_a_long_thin_frame_estimates_in_memory_linear_in_its_pixels():
    plate = np.zeros((1, 100_000, 3), np.float32)
    plate[..., 1] = 0.6
    tracemalloc.start()
    try:
        est = screen_estimate.estimate_screen(plate)
        assert est.smooth.shape == (1, 100_000, 3)
        est.smooth_enc_padded(8, 100_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MiB (dense weights took 1.2 GiB)"
