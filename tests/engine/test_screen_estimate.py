import numpy as np

from gsrender.engine.encoding import encode_for_network, srgb_eotf, srgb_oetf
from gsrender.engine.screen_estimate import estimate_screen

SCREEN = np.array([0.08, 0.45, 0.1], np.float32)


def _plate(h=96, w=160, falloff=True):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1.0 - 0.5 * (xx / w) if falloff else np.ones((h, w), np.float32)
    plate = SCREEN[None, None, :] * light[..., None]
    plate[30:70, 60:100] = [0.5, 0.3, 0.25]  # a subject
    return plate.astype(np.float32), light


def test_screen_colour_and_falloff_are_recovered():
    plate, light = _plate()
    est = estimate_screen(plate)
    assert est.found
    assert np.allclose(est.colour / est.colour[1], SCREEN / SCREEN[1], atol=0.05)
    # behind the subject the smooth estimate is screen-coloured, not subject-coloured
    behind = est.smooth[50, 80]
    assert behind[1] > 2 * behind[0]
    # the falloff from left to right is followed within 15 %
    ratio = est.smooth[10, 150, 1] / est.smooth[10, 5, 1]
    true_ratio = light[10, 150] / light[10, 5]
    assert abs(ratio - true_ratio) < 0.15


def test_no_screen_is_reported_and_override_is_used():
    grey = np.full((64, 64, 3), 0.3, np.float32)
    assert not estimate_screen(grey).found
    est = estimate_screen(_plate()[0], colour_override=np.array([0.1, 0.5, 0.1]))
    np.testing.assert_allclose(est.colour, [0.1, 0.5, 0.1])


def test_estimate_is_deterministic_and_full_size():
    plate, _ = _plate(75, 101)
    a, b = estimate_screen(plate), estimate_screen(plate.copy())
    assert a.smooth.shape == (75, 101, 3) and a.smooth.dtype == np.float32
    np.testing.assert_array_equal(a.smooth, b.smooth)


def test_encoding_round_trip_and_bounds():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(srgb_eotf(srgb_oetf(x)), x, atol=1e-5)
    assert abs(float(srgb_oetf(np.float32(0.214))) - 0.5) < 2e-3
    hdr = np.full((2, 2, 3), 5.0, np.float32)
    enc = encode_for_network(hdr)
    assert enc.shape == (3, 2, 2) and enc.max() <= 1.0


def test_dark_screen_wins_over_a_brighter_yellow_green_costume():
    """The greenest pixels are the costume; the largest green area is the screen."""
    dark = np.array([0.004, 0.03, 0.01], np.float32)
    plate = np.broadcast_to(dark, (96, 128, 3)).copy()
    plate[50:, 40:90] = [0.25, 0.55, 0.02]  # bright yellow-green shirt, a fifth of the frame
    est = estimate_screen(plate)
    assert est.found
    np.testing.assert_allclose(est.colour, dark, rtol=0.05)


def test_blue_screen_is_recognised_and_mirrors_the_green_estimate():
    """A blue screen is keyed as the green screen it becomes with G and B swapped."""
    plate, _ = _plate()
    blue = plate[..., [0, 2, 1]].copy()
    green_est, blue_est = estimate_screen(plate), estimate_screen(blue)
    assert blue_est.found and int(np.argmax(blue_est.colour)) == 2
    np.testing.assert_array_equal(blue_est.colour, green_est.colour[[0, 2, 1]])
    np.testing.assert_array_equal(blue_est.grid, green_est.grid[..., [0, 2, 1]])
    # an artist's blue pick goes the same way
    picked = estimate_screen(blue, colour_override=SCREEN[[0, 2, 1]])
    np.testing.assert_allclose(picked.colour, SCREEN[[0, 2, 1]])
    assert picked.smooth[50, 80, 2] > 2 * picked.smooth[50, 80, 0]


def test_blue_costume_in_front_of_a_green_screen_keeps_the_green_screen():
    plate, _ = _plate()
    plate[20:80, 40:120] = [0.05, 0.1, 0.5]  # a large blue costume, still less than the screen
    est = estimate_screen(plate)
    assert est.found and int(np.argmax(est.colour)) == 1


def test_a_fringe_of_half_transparent_strands_does_not_darken_the_screen_behind_it():
    """A wide fringe where 30% brown strands cover the screen (hair around a head): its red/green ratio
    is 0.17 off the screen's, once within the screen tolerance, so the fringe's darker, browner colour
    was averaged into the screen behind it, and every strand over it keyed too thin."""
    screen = np.array([0.1, 0.6, 0.12], np.float32)
    brown = np.array([0.3, 0.2, 0.1], np.float32)
    plate = np.broadcast_to(screen, (160, 160, 3)).copy()
    plate[32:128, 32:128] = 0.3 * brown + 0.7 * screen
    plate[64:96, 64:96] = brown  # the head the fringe surrounds
    est = estimate_screen(plate)
    strength = est.smooth[..., 1] - est.smooth[..., [0, 2]].max(axis=-1)
    true_strength = screen[1] - screen[[0, 2]].max()
    assert np.abs(strength[40:120, 40:120] / true_strength - 1).max() < 0.05


def test_a_cool_shadow_on_the_screen_still_builds_the_estimate():
    """A shadow lit by cooler bounce light (blue/green up by 0.2, half the light) is screen: the
    estimate follows it, so the shadow keys to 0 instead of leaking."""
    screen = np.array([0.1, 0.6, 0.12], np.float32)
    plate = np.broadcast_to(screen, (160, 160, 3)).copy()
    shadow = 0.5 * np.array([0.1, 0.6, 0.12 + 0.2 * 0.6], np.float32)
    plate[:, :96] = shadow
    est = estimate_screen(plate)
    np.testing.assert_allclose(est.smooth[80, 20], shadow, rtol=0.05)


def test_the_screen_channel_is_decided_once_even_where_red_is_brightest():
    """A blue screen under warm light can be brightest in red. The estimate decides the channel
    (blue: blue exceeds green) and every consumer takes that decision: the classic keyer, despill."""
    from gsrender.engine.backends.classic import ClassicBackend
    from gsrender.engine.classic_keyer import classic_key
    from gsrender.engine.keyer import key_frame
    from gsrender.engine.screen_estimate import BLUE, channel_of_colour

    screen = np.array([0.45, 0.2, 0.42], np.float32)
    plate = np.empty((64, 64, 3), np.float32)
    plate[:] = screen
    plate[16:48, 16:48] = (0.6, 0.1, 0.1)
    est = estimate_screen(plate, screen)
    assert est.channel == BLUE == channel_of_colour(screen)
    decided = classic_key(plate, est.smooth, est.colour, channel=BLUE)
    np.testing.assert_array_equal(classic_key(plate, est.smooth, est.colour), decided)
    assert not np.array_equal(classic_key(plate, est.smooth, est.colour, channel=0), decided)  # red's key
    despilled = key_frame(plate, ClassicBackend(), screen_colour=screen, despill_strength=1.0)
    plain = key_frame(plate, ClassicBackend(), screen_colour=screen, despill_strength=0.0)
    assert despilled.screen.channel == BLUE
    change = despilled.premult - plain.premult
    assert not change[..., :2].any() and change[..., 2].any()  # despill limited blue alone


def test_a_teal_screen_outweighs_brighter_blue_props_in_front_of_it():
    """A dark teal-green screen whose green leads blue by only a few percent, with strongly blue
    props over a fifth of the frame: still a green screen (the props lead by more, the screen
    covers more)."""
    from gsrender.engine.screen_estimate import GREEN

    plate = np.empty((96, 128, 3), np.float32)
    plate[:] = (0.045, 0.163, 0.137)
    plate[20:60, 20:80] = (0.05, 0.1, 0.6)
    assert estimate_screen(plate).channel == GREEN


def test_a_blue_costume_on_a_green_screen_and_a_green_one_on_a_blue_screen():
    """The screen covers more of the frame than the costume in either colour."""
    from gsrender.engine.screen_estimate import BLUE, GREEN

    for screen, costume, channel in (
        ((0.1, 0.6, 0.12), (0.05, 0.1, 0.7), GREEN),
        ((0.08, 0.15, 0.45), (0.1, 0.7, 0.1), BLUE),
    ):
        plate = np.empty((96, 128, 3), np.float32)
        plate[:] = screen
        plate[10:80, 30:90] = costume  # 44% of the frame, brighter and more saturated than the screen
        assert estimate_screen(plate).channel == channel
