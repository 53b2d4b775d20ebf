"""The key's clip kept off edges: soft edges keep the plain key, flat screen and subject are clipped,
and a tile with a HALO-pixel border keys its core like the whole frame."""

from __future__ import annotations

import numpy as np

from gsrender.engine.classic_keyer import classic_key
from gsrender.engine.edge_clip import HALO, clip_key, flatness

GREEN = np.array([0.08, 0.5, 0.1], np.float32)
GREY = np.array([0.3, 0.3, 0.3], np.float32)


def _soft_edge(h: int = 40, w: int = 48) -> np.ndarray:
    """Grey over the screen, coverage 0 -> 1 over 12 px."""
    cover = np.clip((np.arange(w, dtype=np.float32) - 18) / 12, 0, 1)[None, :, None]
    return np.broadcast_to(cover * GREY + (1 - cover) * GREEN, (h, w, 3)).copy()


def test_a_soft_edge_keeps_the_plain_key_and_flat_regions_are_clipped() -> None:
    plate = _soft_edge()
    screen = np.broadcast_to(GREEN, plate.shape).copy()
    plain = classic_key(plate, screen, GREEN, clip_black=0.0, clip_white=1.0)
    clipped = classic_key(plate, screen, GREEN)
    edges = classic_key(plate, screen, GREEN, clip_edges=True)
    ramp = slice(19, 30)
    np.testing.assert_allclose(edges[:, ramp], plain[:, ramp], atol=1e-6)
    assert np.abs(clipped[:, ramp] - plain[:, ramp]).max() > 0.03  # the classic clip steepens it
    tint = np.broadcast_to(0.04 * GREY + 0.96 * GREEN, plate.shape).copy()
    assert classic_key(tint, screen, GREEN, clip_edges=True).max() == 0.0  # flat faint tint: clipped


def test_camera_grain_on_flat_screen_reads_as_flat() -> None:
    """Grain of key sigma 0.02 (the 3x3 mean keeps it from reading as an edge)."""
    rng = np.random.default_rng(1)
    key = np.clip(rng.normal(0.0, 0.02, (64, 64)), 0, 1).astype(np.float32)
    assert flatness(key).mean() > 0.99


def test_a_tile_with_the_halo_keys_its_core_like_the_whole_frame() -> None:
    rng = np.random.default_rng(2)
    raw = np.clip(rng.normal(0.5, 0.4, (50, 70)), -0.2, 1.2).astype(np.float32)
    whole = clip_key(raw, 0.05, 0.95, True)
    y0, y1, x0, x1 = 12, 30, 20, 45
    win = raw[y0 - HALO : y1 + HALO, x0 - HALO : x1 + HALO]
    tile = clip_key(win, 0.05, 0.95, True)[HALO:-HALO, HALO:-HALO]
    np.testing.assert_array_equal(tile, whole[y0:y1, x0:x1])
    edge_win = raw[: y1 + HALO, : x1 + HALO]  # a tile stopping at the frame's top-left corner
    np.testing.assert_array_equal(clip_key(edge_win, 0.05, 0.95, True)[:y1, :x1], whole[:y1, :x1])
