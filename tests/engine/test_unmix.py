import numpy as np
import pytest

from gsrender.engine.encoding import srgb_eotf, srgb_oetf
from gsrender.engine.screen_estimate import BLUE, GREEN, channel_of_colour
from gsrender.engine.unmix import despill, premultiplied_foreground, straight_foreground

SCREEN = np.array([0.1, 0.6, 0.12], np.float32)


def _screen(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The screen as the network outputs it (encoded CHW) and as the unmix decodes it."""
    enc = np.ascontiguousarray(np.broadcast_to(srgb_oetf(SCREEN)[:, None, None], (3, h, w)))
    return enc, srgb_eotf(enc.transpose(1, 2, 0))


@pytest.mark.parametrize("opaque_share", [0.0, 0.9])  # dense path, sparse path
def test_unmix_recovers_exact_foreground_including_hdr(opaque_share):
    rng = np.random.default_rng(3)
    fg = rng.random((8, 8, 3)).astype(np.float32) * 4.0  # HDR values up to 4
    alpha = rng.random((8, 8)).astype(np.float32)
    alpha[rng.random((8, 8)) < opaque_share] = 1.0
    bg_enc, bg = _screen(8, 8)
    plate = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    premult = premultiplied_foreground(plate, alpha, bg_enc)
    np.testing.assert_allclose(premult, alpha[..., None] * fg, atol=1e-5)
    np.testing.assert_allclose(straight_foreground(premult, alpha), fg, rtol=1e-3, atol=2e-3)
    assert (premult[alpha == 1.0] == plate[alpha == 1.0]).all()  # opaque pixels are the plate


def test_zero_alpha_gives_zero_foreground_and_no_negative_values():
    bg_enc, bg = _screen(4, 4)
    plate = bg * 1.1
    alpha = np.zeros((4, 4), np.float32)
    assert (premultiplied_foreground(plate, alpha, bg_enc) == 0).all()
    alpha[:] = 0.5
    assert (premultiplied_foreground(plate * 0.1, alpha, bg_enc) >= 0).all()


def test_despill_limits_green_to_mean_of_red_and_blue():
    premult = np.array([[[0.2, 0.9, 0.4]]], np.float32)
    full = despill(premult, GREEN, 1.0)
    np.testing.assert_allclose(full[0, 0], [0.2, 0.3, 0.4], atol=1e-6)
    half = despill(premult, GREEN, 0.5)
    np.testing.assert_allclose(half[0, 0, 1], 0.6, atol=1e-6)
    assert despill(premult, GREEN, 0.0) is premult
    # a colour with no excess green is untouched
    grey = np.array([[[0.5, 0.5, 0.5]]], np.float32)
    np.testing.assert_array_equal(despill(grey, GREEN, 1.0), grey)


def test_blue_screen_despills_blue():
    blue = np.array([0.05, 0.1, 0.7], np.float32)
    assert channel_of_colour(blue) == BLUE and channel_of_colour(SCREEN) == GREEN
    out = despill(np.array([[[0.2, 0.4, 0.9]]], np.float32), BLUE, 1.0)
    np.testing.assert_allclose(out[0, 0], [0.2, 0.4, 0.3], atol=1e-6)


# ---------------------------------------------------------------- bounds of F at low alpha


def test_opaque_pixels_keep_negative_and_out_of_gamut_values():
    bg_enc, _ = _screen(2, 3)
    plate = np.array([[[1.2, -0.06, -0.01], [0.5, -0.02, 0.3], [0.2, 0.6, 0.1]]] * 2, np.float32)
    alpha = np.ones((2, 3), np.float32)
    alpha[1, 2] = 0.5
    premult = premultiplied_foreground(plate, alpha, bg_enc)
    np.testing.assert_array_equal(premult[0], plate[0])  # exactly the plate, negatives included
    np.testing.assert_array_equal(premult[1, :2], plate[1, :2])


def test_unmix_goes_negative_only_where_the_plate_was():
    bg_enc, _ = _screen(1, 2)
    plate = np.array([[[0.05, 0.1, 0.05], [-0.2, 0.1, 0.05]]], np.float32)  # darker than the screen
    alpha = np.full((1, 2), 0.5, np.float32)
    premult = premultiplied_foreground(plate, alpha, bg_enc)
    assert (premult[0, 0] >= 0).all()
    assert premult[0, 1, 0] == pytest.approx(0.5 * -0.2)  # a * min(I, 0): the input's own negative


def test_too_dark_screen_guess_cannot_blow_up_the_foreground_at_very_low_alpha():
    # A 64x64 pure-screen plate; the network says alpha 0.004 and a screen half as bright as it is.
    h = w = 64
    plate = np.broadcast_to(SCREEN, (h, w, 3)).astype(np.float32)
    dark = np.ascontiguousarray(np.broadcast_to(srgb_oetf(SCREEN * 0.5)[:, None, None], (3, h, w)))
    alpha = np.zeros((h, w), np.float32)
    alpha[20:40, 20:40] = 0.004
    premult = premultiplied_foreground(plate, alpha, dark)
    fg = straight_foreground(premult, alpha)
    # unbounded, F would be (I - 0.996 * B/2) / 0.004, about 75x the screen's green (45)
    assert fg.max() <= SCREEN.max() + 1e-6  # no brighter than the brightest the plate is nearby
    assert (premult <= alpha[..., None] * SCREEN + 1e-7).all()


def test_bound_leaves_moderate_alpha_and_hdr_highlights_alone():
    rng = np.random.default_rng(5)
    h = w = 32
    fg = np.full((h, w, 3), 0.4, np.float32)
    fg[8:12, 8:12] = 30.0  # a highlight seen through a semi-transparent edge
    alpha = rng.uniform(0.2, 0.9, (h, w)).astype(np.float32)
    alpha[:4] = 1.0  # an opaque subject row holds the highlight at full strength
    fg[:4, :4] = 30.0
    bg_enc, bg = _screen(h, w)
    plate = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    premult = premultiplied_foreground(plate, alpha, bg_enc)
    np.testing.assert_allclose(premult, alpha[..., None] * fg, rtol=1e-5, atol=1e-5)


def test_a_linear_background_is_used_as_it_is_hdr_included():
    """A clean plate is the screen behind the subject in linear light: it reaches the unmix without
    the network's bounded encoding, so a screen brighter than 1.0 unmixes exactly."""
    screen, fg, a = 2.0, 0.2, 0.5
    plate = np.full((4, 4, 3), a * fg + (1 - a) * screen, np.float32)
    alpha = np.full((4, 4), a, np.float32)
    premult = premultiplied_foreground(plate, alpha, bg_lin=np.full((4, 4, 3), screen, np.float32))
    np.testing.assert_allclose(premult, a * fg, atol=1e-6)
    with pytest.raises(ValueError, match="screen behind"):
        premultiplied_foreground(plate, alpha)
