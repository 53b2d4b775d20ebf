"""The classic colour-difference keyer: screen -> 0, subject -> 1, linear mixes -> their fraction."""

from __future__ import annotations

import numpy as np
import pytest

from gsrender.engine.classic_keyer import classic_key

GREEN = np.array([0.10, 0.60, 0.12], np.float32)
BLUE = np.array([0.05, 0.12, 0.55], np.float32)


def _fill(colour: np.ndarray, h: int = 8, w: int = 10) -> np.ndarray:
    return np.broadcast_to(np.asarray(colour, np.float32), (h, w, 3)).copy()


@pytest.mark.parametrize("rb_weight", [None, 0.5])
def test_pure_screen_keys_to_zero(rb_weight: float | None) -> None:
    screen = _fill(GREEN)
    alpha = classic_key(screen, screen, GREEN, rb_weight=rb_weight)
    assert alpha.shape == (8, 10)
    assert alpha.dtype == np.float32
    np.testing.assert_array_equal(alpha, 0.0)


@pytest.mark.parametrize("subject", [[0.8, 0.1, 0.1], [0.4, 0.4, 0.4], [0.02, 0.02, 0.02], [3.0, 2.5, 2.0]])
def test_non_green_subject_keys_to_one(subject: list[float]) -> None:
    alpha = classic_key(_fill(subject), _fill(GREEN), GREEN)
    np.testing.assert_array_equal(alpha, 1.0)


@pytest.mark.parametrize("rb_weight", [None, 0.5])
def test_linear_mix_of_grey_and_screen_is_half(rb_weight: float | None) -> None:
    grey = np.array([0.3, 0.3, 0.3], np.float32)
    mix = 0.5 * grey + 0.5 * GREEN
    alpha = classic_key(_fill(mix), _fill(GREEN), GREEN, rb_weight=rb_weight)
    assert np.all(np.abs(alpha - 0.5) < 0.1)


def test_mix_fraction_follows_level_remap() -> None:
    # Without the black/white clip the raw colour-difference alpha is the mix fraction.
    grey = np.array([0.5, 0.5, 0.5], np.float32)
    fracs = np.linspace(0.0, 1.0, 11, dtype=np.float32)
    plate = (fracs[:, None] * grey + (1 - fracs[:, None]) * GREEN)[None]
    screen = _fill(GREEN, 1, 11)
    raw = classic_key(plate, screen, GREEN, clip_black=0.0, clip_white=1.0)
    np.testing.assert_allclose(raw[0], fracs, atol=1e-5)
    clipped = classic_key(plate, screen, GREEN)
    np.testing.assert_allclose(clipped[0], np.clip((fracs - 0.05) / 0.9, 0, 1), atol=1e-5)


def test_uneven_screen_keys_to_zero_with_clean_plate() -> None:
    h, w = 6, 20
    falloff = np.linspace(1.0, 0.5, w, dtype=np.float32)[None, :, None]  # 50% darker at the right
    screen = _fill(GREEN, h, w) * falloff
    alpha = classic_key(screen, screen, GREEN)
    np.testing.assert_array_equal(alpha, 0.0)
    # A grey subject half over the dark side still reads as half.
    plate = screen.copy()
    plate[:, -1] = 0.5 * screen[:, -1] + 0.5 * np.float32(0.2)
    a = classic_key(plate, screen, GREEN)
    assert np.all(np.abs(a[:, -1] - 0.5) < 0.1)


def test_blue_screen() -> None:
    screen = _fill(BLUE)
    plate = screen.copy()
    plate[:, :3] = [0.7, 0.6, 0.1]  # yellow subject: strongly non-blue
    plate[:, 3:6] = 0.5 * np.float32(0.25) + 0.5 * BLUE  # grey/screen mix
    alpha = classic_key(plate, screen, BLUE)
    np.testing.assert_array_equal(alpha[:, :3], 1.0)
    assert np.all(np.abs(alpha[:, 3:6] - 0.5) < 0.1)
    np.testing.assert_array_equal(alpha[:, 6:], 0.0)


def test_output_range_and_guards() -> None:
    rng = np.random.default_rng(0)
    plate = rng.uniform(-0.1, 4.0, (16, 16, 3)).astype(np.float32)
    plate[0, 0] = np.nan
    screen = _fill(GREEN, 16, 16)
    screen[:4] = 0.0  # a clean-screen guess with no strength: must not divide by zero
    alpha = classic_key(plate, screen, GREEN)
    assert alpha.shape == (16, 16) and alpha.dtype == np.float32
    assert np.all(np.isfinite(alpha))
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0


def test_per_pixel_so_tiles_match_full_frame() -> None:
    rng = np.random.default_rng(1)
    plate = rng.uniform(0.0, 1.0, (12, 14, 3)).astype(np.float32)
    screen = _fill(GREEN, 12, 14) * rng.uniform(0.5, 1.0, (12, 14, 1)).astype(np.float32)
    full = classic_key(plate, screen, GREEN)
    tile = classic_key(plate[3:9, 5:12], screen[3:9, 5:12], GREEN)
    np.testing.assert_array_equal(full[3:9, 5:12], tile)


def test_bad_arguments() -> None:
    screen = _fill(GREEN)
    with pytest.raises(ValueError):
        classic_key(screen, screen[:4], GREEN)
    with pytest.raises(ValueError):
        classic_key(screen, screen, GREEN, clip_black=0.9, clip_white=0.1)
    with pytest.raises(ValueError):
        classic_key(screen[..., :2], screen[..., :2], GREEN)
