"""The despot keys out small solid islands on clear screen and nothing else."""

import numpy as np
import pytest

from gsrender.engine import despot as D
from gsrender.engine.backends.classic import ClassicBackend
from gsrender.engine.keyer import key_frame


def cross(alpha: np.ndarray, cy: int, cx: int, arm: int = 8, thick: int = 2) -> None:
    """A solid tracking-marker cross drawn into alpha."""
    alpha[max(0, cy - thick // 2) : cy + thick - thick // 2, max(0, cx - arm) : cx + arm + 1] = 1.0
    alpha[max(0, cy - arm) : cy + arm + 1, max(0, cx - thick // 2) : cx + thick - thick // 2] = 1.0


def subject(h: int = 160, w: int = 200) -> np.ndarray:
    """A large solid subject on clear screen, touching the bottom of the frame."""
    a = np.zeros((h, w), np.float32)
    a[80:, 70:130] = 1.0
    return a


def test_removes_a_marker_on_clear_screen_and_keeps_the_subject() -> None:
    a = subject()
    cross(a, 30, 30)
    a[29:32, 21:40] = np.maximum(a[29:32, 21:40], 0.05)  # a faint fringe goes with it
    out = D.despot(a)
    assert out[15:46, 15:46].max() == 0.0
    np.testing.assert_array_equal(out[60:], a[60:])


def test_keeps_islands_larger_than_the_size() -> None:
    a = subject()
    cross(a, 40, 40, arm=20)  # 41 px across
    np.testing.assert_array_equal(D.despot(a, 32), a)
    assert D.despot(a, 48)[40, 40] == 0.0


def test_keeps_an_island_close_to_the_subject() -> None:
    """Within BAND pixels of other key (a strand broken off near the subject) it stays."""
    a = subject()
    cross(a, 72, 100, arm=6)  # its lowest row (78) ends one pixel above the subject (80)
    np.testing.assert_array_equal(D.despot(a), a)


def test_keeps_faint_and_thin_islands() -> None:
    """Fewer than SOLID_COUNT solid pixels: a strand fragment or a speck of grain."""
    a = subject()
    a[20:40, 30] = 0.95  # a 20 px strand fragment, one pixel wide: 20 solid pixels ...
    a[20:40, 31] = 0.6
    a[20:40:2, 30] = 0.8  # ... of which only 10 reach SOLID
    a[50:58, 160:168] = 0.5  # a faint blob
    np.testing.assert_array_equal(D.despot(a), a)


def test_keeps_an_island_at_the_frame_edge() -> None:
    a = subject()
    cross(a, 30, 5)  # cut by the left edge: it may go on outside the frame
    np.testing.assert_array_equal(D.despot(a), a)


def test_size_zero_is_off_and_negative_is_refused() -> None:
    a = subject()
    cross(a, 30, 30)
    assert D.despot(a, 0) is a
    with pytest.raises(ValueError, match="despot size"):
        D.despot(a, -1)


def test_matches_a_direct_search_for_islands() -> None:
    """The summed-area form equals checking every square with its band directly."""
    rng = np.random.default_rng(3)
    a = np.zeros((70, 90), np.float32)
    for _ in range(9):
        y, x = rng.integers(0, 64), rng.integers(0, 84)
        h, w = rng.integers(1, 9, 2)
        a[y : y + h, x : x + w] = rng.choice([0.05, 0.5, 0.95, 1.0])
    size = 10
    side = size + 2 * D.BAND
    expect = np.zeros(a.shape, bool)
    for y in range(a.shape[0] - side + 1):
        for x in range(a.shape[1] - side + 1):
            sq = a[y : y + side, x : x + side]
            core = sq[D.BAND : D.BAND + size, D.BAND : D.BAND + size]
            band_clear = (sq >= D.CLEAR).sum() == (core >= D.CLEAR).sum()
            if band_clear and (core >= D.SOLID).sum() >= D.SOLID_COUNT:
                expect[y + D.BAND : y + D.BAND + size, x + D.BAND : x + D.BAND + size] = True
    out = D.despot(a, size)
    np.testing.assert_array_equal(out == 0.0, (a == 0.0) | expect)
    np.testing.assert_array_equal(out[~expect], a[~expect])


def test_the_keyer_despots_before_the_core_matte() -> None:
    """A render keys a yellow marker out; a core matte over it keeps it."""
    from gsrender.engine.compositor_inputs import FrameInputs

    plate = np.empty((96, 128, 3), np.float32)
    plate[:] = (0.08, 0.45, 0.1)  # green screen, linear
    plate[60:, 40:90] = (0.4, 0.3, 0.25)  # the subject, touching the bottom edge
    marker = np.zeros((96, 128), np.float32)
    cross(marker, 25, 100, arm=7, thick=3)
    plate[marker > 0] = (0.65, 0.5, 0.05)  # yellow tape
    keyed = key_frame(plate, ClassicBackend(), despot_size=0)
    assert keyed.alpha[25, 100] > 0.9  # the classic key holds yellow as subject
    despotted = key_frame(plate, ClassicBackend())
    assert despotted.alpha[15:36, 90:111].max() == 0.0
    np.testing.assert_array_equal(despotted.alpha[50:], keyed.alpha[50:])
    core = np.zeros((96, 128), np.float32)
    core[20:31, 95:106] = 1.0
    held = key_frame(plate, ClassicBackend(), inputs=FrameInputs(core=core))
    assert held.alpha[25, 100] == 1.0


def test_tiles_do_not_change_the_despot() -> None:
    """It runs on the assembled frame: a marker split across tile borders goes all the same."""
    plate = np.empty((96, 128, 3), np.float32)
    plate[:] = (0.08, 0.45, 0.1)
    plate[60:, 40:90] = (0.4, 0.3, 0.25)
    marker = np.zeros((96, 128), np.float32)
    cross(marker, 32, 96, arm=7, thick=3)  # across the 32 px tiles' borders at y 32 and x 96
    plate[marker > 0] = (0.65, 0.5, 0.05)
    whole = key_frame(plate, ClassicBackend())
    tiled = key_frame(plate, ClassicBackend(), tile=32)
    assert whole.alpha[32, 96] == 0.0
    np.testing.assert_allclose(tiled.alpha, whole.alpha, atol=1e-4)
