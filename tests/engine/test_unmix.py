import numpy as np

from gsrender.engine.unmix import despill, premultiplied_foreground, screen_channel, straight_foreground

SCREEN = np.array([0.1, 0.6, 0.12], np.float32)


def test_unmix_recovers_exact_foreground_including_hdr():
    rng = np.random.default_rng(3)
    fg = rng.random((8, 8, 3)).astype(np.float32) * 4.0  # HDR values up to 4
    alpha = rng.random((8, 8)).astype(np.float32)
    bg = np.broadcast_to(SCREEN, (8, 8, 3)).astype(np.float32)
    plate = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    premult = premultiplied_foreground(plate, alpha, bg)
    np.testing.assert_allclose(premult, alpha[..., None] * fg, atol=1e-5)
    np.testing.assert_allclose(straight_foreground(premult, alpha), fg, rtol=1e-3, atol=2e-3)


def test_zero_alpha_gives_zero_foreground_and_no_negative_values():
    plate = np.broadcast_to(SCREEN * 1.1, (4, 4, 3)).astype(np.float32)
    alpha = np.zeros((4, 4), np.float32)
    premult = premultiplied_foreground(plate, alpha, np.broadcast_to(SCREEN, (4, 4, 3)).astype(np.float32))
    assert (premult == 0).all()
    alpha[:] = 0.5
    premult = premultiplied_foreground(
        plate * 0.1, alpha, np.broadcast_to(SCREEN, (4, 4, 3)).astype(np.float32)
    )
    assert (premult >= 0).all()


def test_despill_limits_green_to_mean_of_red_and_blue():
    premult = np.array([[[0.2, 0.9, 0.4]]], np.float32)
    full = despill(premult, SCREEN, 1.0)
    np.testing.assert_allclose(full[0, 0], [0.2, 0.3, 0.4], atol=1e-6)
    half = despill(premult, SCREEN, 0.5)
    np.testing.assert_allclose(half[0, 0, 1], 0.6, atol=1e-6)
    assert despill(premult, SCREEN, 0.0) is premult
    # a colour with no excess green is untouched
    grey = np.array([[[0.5, 0.5, 0.5]]], np.float32)
    np.testing.assert_array_equal(despill(grey, SCREEN, 1.0), grey)


def test_blue_screen_despills_blue():
    blue = np.array([0.05, 0.1, 0.7], np.float32)
    assert screen_channel(blue) == 2 and screen_channel(SCREEN) == 1
    out = despill(np.array([[[0.2, 0.4, 0.9]]], np.float32), blue, 1.0)
    np.testing.assert_allclose(out[0, 0], [0.2, 0.4, 0.3], atol=1e-6)
