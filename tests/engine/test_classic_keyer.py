"""The classic colour-difference keyer: screen -> 0, subject -> 1, linear mixes -> their fraction."""

from __future__ import annotations

import numpy as np
import pytest

from gsrender.engine.classic_keyer import FORMS, classic_key, halo_for
from gsrender.engine.local_foreground import box_mean

GREEN = np.array([0.10, 0.60, 0.12], np.float32)
BLUE = np.array([0.05, 0.12, 0.55], np.float32)


def _fill(colour: np.ndarray, h: int = 8, w: int = 10) -> np.ndarray:
    return np.broadcast_to(np.asarray(colour, np.float32), (h, w, 3)).copy()


@pytest.mark.parametrize("form", FORMS)
def test_pure_screen_keys_to_zero(form: str) -> None:
    screen = _fill(GREEN)
    alpha = classic_key(screen, screen, GREEN, form=form)
    assert alpha.shape == (8, 10)
    assert alpha.dtype == np.float32
    np.testing.assert_array_equal(alpha, 0.0)


@pytest.mark.parametrize("form", ["local", "max"])
@pytest.mark.parametrize(
    "subject", [[0.8, 0.1, 0.1], [0.4, 0.4, 0.4], [0.02, 0.02, 0.02], [3.0, 2.5, 2.0], [0.1, 0.6, 0.75]]
)
def test_non_green_subject_keys_to_one(subject: list[float], form: str) -> None:
    # the last is a cyan costume: its green is high, but blue leads it
    alpha = classic_key(_fill(subject), _fill(GREEN), GREEN, form=form)
    np.testing.assert_array_equal(alpha, 1.0)


@pytest.mark.parametrize("form", FORMS)
def test_linear_mix_of_grey_and_screen_is_half(form: str) -> None:
    grey = np.array([0.3, 0.3, 0.3], np.float32)
    mix = 0.5 * grey + 0.5 * GREEN
    alpha = classic_key(_fill(mix), _fill(GREEN), GREEN, form=form)
    assert np.all(np.abs(alpha - 0.5) < 0.1)


def _strand_beside_its_subject(subject: np.ndarray, coverage: float, background: np.ndarray | None = None):
    """A 24x40 plate: the subject on the left 16 columns, a strand column of `coverage` at 20, screen."""
    plate = _fill(GREEN, 24, 40)
    plate[:, :16] = subject if background is None else background
    plate[:, 20] = coverage * subject + (1 - coverage) * GREEN
    return plate


@pytest.mark.parametrize("coverage", [0.5, 0.7])
def test_a_brown_strand_beside_brown_hair_gets_its_coverage(coverage: float) -> None:
    brown = np.array([0.42, 0.22, 0.12], np.float32)  # red above green: the "max" form thickens it
    plate = _strand_beside_its_subject(brown, coverage)
    screen = _fill(GREEN, 24, 40)
    local = classic_key(plate, screen, GREEN, form="local", clip_black=0.0, clip_white=1.0)[:, 20]
    plain = classic_key(plate, screen, GREEN, form="max", clip_black=0.0, clip_white=1.0)[:, 20]
    assert np.all(np.abs(local - coverage) < 0.1), (local.mean(), coverage)
    assert np.all(np.abs(plain - coverage) > np.abs(local - coverage) + 0.04), (plain.mean(), local.mean())


def test_a_black_belt_beside_a_red_shirt_stays_opaque() -> None:
    # black is no mix of red and green: the subject correction must not thin it
    red = np.array([0.8, 0.08, 0.08], np.float32)
    plate = _fill(GREEN, 24, 40)
    plate[:, :16] = red
    plate[:, 16:20] = 0.02
    alpha = classic_key(plate, _fill(GREEN, 24, 40), GREEN)
    np.testing.assert_array_equal(alpha[:, :20], 1.0)
    np.testing.assert_array_equal(alpha[:, 24:], 0.0)


def test_a_blue_props_blurred_edge_over_green_is_not_held_opaque_from_half_coverage() -> None:
    # blue leads green from about half coverage up, where the hue hold alone keyed the ramp opaque
    prop = np.array([0.08, 0.15, 0.6], np.float32)
    plate = _fill(GREEN, 24, 40)
    plate[:, :20] = prop
    coverage = np.linspace(1.0, 0.0, 10, dtype=np.float32)[1:9]
    plate[:, 20:28] = coverage[:, None] * prop + (1 - coverage[:, None]) * GREEN
    alpha = classic_key(plate, _fill(GREEN, 24, 40), GREEN, clip_black=0.0, clip_white=1.0)
    ramp = alpha[:, 20:28]
    assert np.all(np.diff(ramp, axis=1) <= 0)
    led = plate[0, 20:28, 2] > plate[0, 20:28, 1]
    assert led[3] and coverage[3] < 0.6
    assert np.all(ramp[:, 3] < 0.8), ramp[0]  # a clear mix: let go
    assert np.all(np.abs(ramp[:, ~led] - coverage[~led]) < 0.16), ramp[0]
    np.testing.assert_array_equal(alpha[:, :20], 1.0)
    np.testing.assert_array_equal(alpha[:, 30:], 0.0)


def test_noise_in_a_light_blue_subject_beside_the_screen_stays_held() -> None:
    # within the subject the correction reads noise as coverage near 1: the hold keeps it solid
    rng = np.random.default_rng(2)
    plate = _fill(GREEN, 24, 40)
    plate[:, :16] = np.float32([0.45, 0.5, 0.7]) * rng.uniform(0.93, 1.07, (24, 16, 3)).astype(np.float32)
    alpha = classic_key(plate, _fill(GREEN, 24, 40), GREEN, clip_black=0.0, clip_white=1.0)
    np.testing.assert_array_equal(alpha[:, :16], 1.0)


def test_spill_on_skin_away_from_the_screen_stays_held() -> None:
    # a spill-tinted patch reads as a mix of skin and screen; with no clear screen near, it is not one
    skin = np.float32([0.8, 0.55, 0.45])
    plate = _fill(GREEN, 60, 60)
    plate[5:55, 5:55] = skin
    plate[24:36, 24:36] = 0.7 * skin + 0.3 * GREEN
    assert np.all(plate[24:36, 24:36, 0] > plate[24:36, 24:36, 1])
    alpha = classic_key(plate, _fill(GREEN, 60, 60), GREEN)
    np.testing.assert_array_equal(alpha[5:55, 5:55], 1.0)


def test_the_subject_window_changes_nothing() -> None:
    """Only the subject's box grown by 2 * RADIUS is filtered: the key equals the whole-frame filter."""
    from gsrender.engine import local_foreground as lf

    rng = np.random.default_rng(5)
    h, w = 90, 120
    plate = _fill(GREEN, h, w) * rng.uniform(0.9, 1.1, (h, w, 1)).astype(np.float32)
    plate[40:50, 60:75] = [0.45, 0.25, 0.15]
    plate[45, 75:95] = 0.5 * np.float32([0.45, 0.25, 0.15]) + 0.5 * GREEN
    screen = _fill(GREEN, h, w)
    s_plate = plate[..., 1] - 0.5 * (plate[..., 0] + plate[..., 2])
    s_screen = screen[..., 1] - 0.5 * (screen[..., 0] + screen[..., 2])
    plain_max = 1.0 - (plate[..., 1] - np.maximum(plate[..., 0], plate[..., 2])) / 0.48
    lo, hi = lf.OPAQUE_KEY
    opaque = np.clip((plain_max - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    windowed, release = lf.subject_corrected_key(plate, screen, s_plate, s_screen, plain_max)
    clear = np.clip((lf.CLEAR_KEY - plain_max) / lf.CLEAR_KEY, 0.0, 1.0).astype(np.float32)
    plain = 1.0 - s_plate / s_screen
    whole, whole_release = lf._corrected(plate, screen, s_plate, s_screen, opaque, plain, clear)
    np.testing.assert_allclose(windowed, whole, atol=1e-6)
    np.testing.assert_allclose(release, whole_release, atol=1e-6)
    assert np.abs(windowed - (1.0 - s_plate / s_screen)).max() > 0.01  # the correction is there


def test_box_mean_counts_only_pixels_inside_the_frame() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (9, 13)).astype(np.float32)
    got = box_mean(x, 2)
    for y, xx in [(0, 0), (4, 6), (8, 12), (0, 7)]:
        ref = x[max(0, y - 2) : y + 3, max(0, xx - 2) : xx + 3].mean()
        assert abs(got[y, xx] - ref) < 1e-6


def test_mix_fraction_follows_level_remap() -> None:
    # Without the black/white clip the "max" form's alpha is a grey mix's fraction exactly; the
    # "local" form's brightness factor bends it (a light pixel needs more excess to be screen),
    # monotone and within 0.12.
    grey = np.array([0.5, 0.5, 0.5], np.float32)
    fracs = np.linspace(0.0, 1.0, 11, dtype=np.float32)
    plate = (fracs[:, None] * grey + (1 - fracs[:, None]) * GREEN)[None]
    screen = _fill(GREEN, 1, 11)
    raw = classic_key(plate, screen, GREEN, form="max", clip_black=0.0, clip_white=1.0)
    np.testing.assert_allclose(raw[0], fracs, atol=1e-5)
    clipped = classic_key(plate, screen, GREEN, form="max")
    np.testing.assert_allclose(clipped[0], np.clip((fracs - 0.05) / 0.9, 0, 1), atol=1e-5)
    local = classic_key(plate, screen, GREEN, clip_black=0.0, clip_white=1.0)[0]
    assert np.all(np.diff(local) > 0) and np.all(np.abs(local - fracs) < 0.12)


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


@pytest.mark.parametrize("form", FORMS)
def test_a_tile_with_its_halo_keys_like_the_full_frame(form: str) -> None:
    rng = np.random.default_rng(1)
    h, w = 48, 56
    plate = rng.uniform(0.0, 1.0, (h, w, 3)).astype(np.float32)
    plate[10:30, 8:40] = [0.45, 0.25, 0.15]  # a subject, so the local form has opaque pixels to use
    screen = _fill(GREEN, h, w) * rng.uniform(0.5, 1.0, (h, w, 1)).astype(np.float32)
    full = classic_key(plate, screen, GREEN, form=form)
    halo = halo_for(form)
    assert halo == (8 if form == "local" else 0)
    core = (slice(18, 30), slice(20, 34))
    win = (slice(18 - halo, 30 + halo), slice(20 - halo, 34 + halo))
    tile = classic_key(plate[win], screen[win], GREEN, form=form)
    np.testing.assert_allclose(full[core], tile[halo : halo + 12, halo : halo + 14], atol=1e-6)
    # and a tile that stops at the frame's edge needs no halo on that side
    edge = classic_key(plate[:, : 20 + halo], screen[:, : 20 + halo], GREEN, form=form)
    np.testing.assert_allclose(full[:, :20], edge[:, :20], atol=1e-6)


def test_bad_arguments() -> None:
    screen = _fill(GREEN)
    with pytest.raises(ValueError):
        classic_key(screen, screen[:4], GREEN)
    with pytest.raises(ValueError):
        classic_key(screen, screen, GREEN, clip_black=0.9, clip_white=0.1)
    with pytest.raises(ValueError):
        classic_key(screen[..., :2], screen[..., :2], GREEN)
    with pytest.raises(ValueError, match="form"):
        classic_key(screen, screen, GREEN, form="keylight")
