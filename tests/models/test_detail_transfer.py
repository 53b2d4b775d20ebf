"""The detail transfer: the evidence's fine structure replaces the corrected key's across edges,
and nowhere else."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gsrender.models.networks.detail_transfer import (
    BAND_HIGH,
    NEAR_CLEAR,
    PASSES,
    restore_detail,
    smooth,
)
from gsrender.training.metrics import gradient_error

SCALE = 2


def _map(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, np.float32))[None, None]


def _strands(size: int = 64) -> np.ndarray:
    """Vertical strands 1-2 px wide with clear screen between them, beside a solid subject."""
    key = np.zeros((size, size), np.float32)
    key[:, :12] = 1.0
    for x, w, c in ((22, 1, 0.8), (32, 2, 0.6), (42, 1, 0.4), (52, 2, 0.9)):
        key[:, x : x + w] = c
    return key


def _softened(key: np.ndarray) -> np.ndarray:
    """What a correction at half resolution does to such strands: their levels, not their shape."""
    return smooth(_map(key), 1)[0, 0].numpy()


def test_a_softened_strand_gets_the_evidences_detail_back() -> None:
    key = _strands()
    soft = _softened(key)
    out = restore_detail(_map(soft), _map(key), torch.ones_like(_map(key)), SCALE)[0, 0].numpy()
    assert gradient_error(out, key) < 0.25 * gradient_error(soft, key)
    assert np.abs(out - key).sum() < 0.5 * np.abs(soft - key).sum()


def test_solid_subject_and_clear_screen_are_left_as_the_correction_keyed_them() -> None:
    key = _strands()
    soft = _softened(key)
    soft[:, 58:] = 0.0  # clear screen the correction keyed out
    out = restore_detail(_map(soft), _map(key), torch.ones_like(_map(key)), SCALE)[0, 0].numpy()
    partial = (soft > 0.02) & (soft < BAND_HIGH)
    grown = partial.copy()
    grown[:, 1:] |= partial[:, :-1]
    grown[:, :-1] |= partial[:, 1:]
    np.testing.assert_array_equal(out[~grown], soft[~grown])


def test_partial_specks_inside_a_subject_keep_the_corrections_level() -> None:
    """Texture the correction filled in (light clothing) is far from clear screen: untouched."""
    key = np.ones((64, 64), np.float32)
    key[20:44:3, 20:44:3] = 0.3  # the screen-tinted weave the evidence keys as holes
    alpha = np.full_like(key, 0.97)  # the correction's near-solid fill
    alpha[:, :4] = 0.0  # clear screen on the left edge only
    out = restore_detail(_map(alpha), _map(key), torch.ones_like(_map(key)), SCALE)[0, 0].numpy()
    far = np.zeros_like(key, bool)
    far[:, 4 + NEAR_CLEAR + 1 :] = True
    np.testing.assert_array_equal(out[far], alpha[far])


def test_it_never_raises_alpha_where_the_gate_is_shut() -> None:
    key = _strands()
    soft = _softened(key)
    gate = np.ones_like(key)
    gate[:, 38:] = 0.0
    out = restore_detail(_map(soft), _map(key), _map(gate), SCALE)[0, 0].numpy()
    assert (out[:, 38:] <= soft[:, 38:] + 1e-7).all()
    assert (out[:, :38] > soft[:, :38] + 0.05).any()


def test_where_the_correction_overruled_the_evidence_it_is_left_alone() -> None:
    """A greenish leaf the evidence keys at 0.1 and the correction at 0.8: its texture is wrong."""
    key = np.full((48, 48), 0.1, np.float32)
    key[::2, ::2] = 0.3
    alpha = np.full_like(key, 0.8)
    alpha[:, :2] = 0.0
    out = restore_detail(_map(alpha), _map(key), torch.ones_like(_map(key)), SCALE)[0, 0].numpy()
    np.testing.assert_allclose(out[:, 8:], alpha[:, 8:], atol=1e-6)


def test_off_is_the_corrected_key() -> None:
    key, alpha = _strands(), _softened(_strands())
    out = restore_detail(_map(alpha), _map(key), torch.ones_like(_map(key)), 0.0)
    torch.testing.assert_close(out, _map(alpha))


@pytest.mark.parametrize("scale", [1, 2])
def test_the_smoothing_at_the_frame_edge_is_the_same_for_a_tile_that_stops_there(scale: int) -> None:
    rng = np.random.default_rng(0)
    frame = rng.random((40, 50)).astype(np.float32)
    whole = smooth(_map(frame), scale)[0, 0].numpy()
    crop = smooth(_map(frame[:, :30]), scale)[0, 0].numpy()
    inner = 30 - PASSES * scale
    np.testing.assert_allclose(crop[:, :inner], whole[:, :inner], atol=1e-6)
