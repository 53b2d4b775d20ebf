"""Matting metrics: zero for a perfect matte, hand-computable small cases, masks respected."""

from __future__ import annotations

import numpy as np
import pytest

from gsrender.training.metrics import (
    connectivity_error,
    foreground_error,
    gradient_error,
    matting_report,
    mse,
    sad,
    temporal_flicker,
    unknown_band,
)


def _disc_matte(h: int = 48, w: int = 48) -> np.ndarray:
    """A soft-edged disc: opaque core, a ramp of semi-transparent pixels, clear outside."""
    y, x = np.mgrid[:h, :w]
    r = np.hypot(y - h / 2, x - w / 2)
    return np.clip((14.0 - r) / 4.0, 0.0, 1.0).astype(np.float32)


def test_perfect_prediction_scores_zero() -> None:
    gt = _disc_matte()
    report = matting_report(gt.copy(), gt)
    assert set(report) == {
        "sad",
        "mse",
        "grad",
        "conn",
        "sad_unknown",
        "mse_unknown",
        "grad_unknown",
        "conn_unknown",
    }
    assert all(v == 0.0 for v in report.values())
    assert temporal_flicker([gt, gt, gt], [gt, gt, gt]) == 0.0
    fg = np.full(gt.shape + (3,), 0.3, np.float32)
    assert foreground_error(fg, fg, gt) == 0.0


def test_sad_and_mse_by_hand() -> None:
    gt = np.zeros((10, 100), np.float32)
    pred = gt + 0.5  # 1000 px off by 0.5 -> 500 -> 0.5 thousand
    assert sad(pred, gt) == pytest.approx(0.5)
    assert mse(pred, gt) == pytest.approx(0.25)
    pred[:, :50] = 0.0
    assert sad(pred, gt) == pytest.approx(0.25)
    assert mse(pred, gt) == pytest.approx(0.125)


def test_masks_are_respected() -> None:
    gt = np.zeros((10, 20), np.float32)
    pred = gt.copy()
    pred[:, 10:] = 1.0  # errors only on the right half
    left = np.zeros(gt.shape, bool)
    left[:, :10] = True
    assert sad(pred, gt, left) == 0.0
    assert mse(pred, gt, left) == 0.0
    assert connectivity_error(pred, gt, left) == 0.0
    assert sad(pred, gt, ~left) == pytest.approx(0.1)
    assert mse(pred, gt, ~left) == pytest.approx(1.0)  # a mean over the mask, not the frame
    assert mse(pred, gt, np.zeros(gt.shape, bool)) == 0.0
    # Gradients are taken on the whole frame: the step at column 10 spreads a few pixels.
    far_left = np.zeros(gt.shape, bool)
    far_left[:, :4] = True
    assert gradient_error(pred, gt, far_left) == pytest.approx(0.0, abs=1e-12)
    assert gradient_error(pred, gt, ~far_left) > 0.0


def test_gradient_error_ignores_constant_shift_in_flat_region() -> None:
    gt = np.full((24, 24), 0.3, np.float32)
    assert gradient_error(gt + 0.4, gt) == pytest.approx(0.0, abs=1e-12)
    assert sad(gt + 0.4, gt) > 0.0


def test_gradient_error_sees_blur() -> None:
    gt = np.zeros((24, 24), np.float32)
    gt[:, 12:] = 1.0
    blurred = gt.copy()
    blurred[:, 9:15] = np.linspace(0.0, 1.0, 8)[1:-1]
    assert gradient_error(blurred, gt) > 0.0
    assert gradient_error(gt, blurred) == pytest.approx(gradient_error(blurred, gt))


def _blob_case(attached: bool) -> tuple[np.ndarray, np.ndarray]:
    """gt: a body plus a 3x3 opaque blob; pred: the same but the blob is a little off (0.95)."""
    gt = np.zeros((20, 30), np.float32)
    gt[5:15, 3:13] = 1.0
    cols = slice(13, 16) if attached else slice(20, 23)
    gt[8:11, cols] = 1.0
    pred = gt.copy()
    pred[8:11, cols] = 0.95
    return pred, gt


def test_connectivity_penalises_detached_blob_more() -> None:
    attached = connectivity_error(*_blob_case(attached=True))
    detached = connectivity_error(*_blob_case(attached=False))
    assert sad(*_blob_case(True)) == pytest.approx(sad(*_blob_case(False)))
    # Attached: the small error is forgiven (d < theta). Detached: phi differs by 0.05 on 9 px.
    assert attached == pytest.approx(0.0, abs=1e-12)
    assert detached == pytest.approx(9 * 0.05 / 1000, rel=1e-4)
    assert detached > attached


def test_connectivity_detached_false_positive() -> None:
    gt = np.zeros((20, 30), np.float32)
    gt[5:15, 3:13] = 1.0
    pred = gt.copy()
    pred[2:4, 22:25] = 1.0  # 6 px of spurious opaque matte off the subject: phi 0 vs 1
    assert connectivity_error(pred, gt) == pytest.approx(6 / 1000)


def test_unknown_band() -> None:
    gt = np.zeros((40, 40), np.float32)
    gt[10:30, 10:30] = 1.0
    gt[20, 35] = 0.5  # an isolated semi-transparent pixel is always unknown
    band = unknown_band(gt, width=2)
    assert band.dtype == bool and band.shape == gt.shape
    assert band[20, 35]
    assert band[20, 8] and band[20, 11] and band[20, 10] and band[20, 9]
    assert not band[20, 7] and not band[20, 12] and not band[20, 20] and not band[0, 0]
    # Default width scales with resolution but is at least 3.
    default = unknown_band(gt)
    assert default[20, 7] and default[20, 12] and not default[20, 6]
    # Degenerate mattes: all clear or all opaque have no unknown region.
    assert not unknown_band(np.zeros((8, 8))).any()
    assert not unknown_band(np.ones((8, 8))).any()
    # The frame border is not an edge.
    half = np.zeros((8, 16))
    half[:, 8:] = 1.0
    assert not unknown_band(half, width=1)[:, 14:].any()


def test_report_unknown_metrics_use_band() -> None:
    gt = _disc_matte()
    pred = gt.copy()
    pred[0:3, 0:3] = 0.2  # far from the subject: outside the unknown band
    r = matting_report(pred, gt)
    assert r["sad"] == pytest.approx(9 * 0.2 / 1000)
    assert r["sad_unknown"] == 0.0 and r["mse_unknown"] == 0.0
    assert r["mse"] == pytest.approx(9 * 0.04 / gt.size)


def test_foreground_error_weighted_by_alpha() -> None:
    alpha = np.array([[0.0, 0.5, 1.0]], np.float32)
    gt_fg = np.zeros((1, 3, 3), np.float32)
    pred_fg = gt_fg.copy()
    pred_fg[0, 0] = 9.0  # alpha 0: foreground undefined, ignored
    pred_fg[0, 1] = 0.3  # weight 0.5
    pred_fg[0, 2, 0] = 0.6  # weight 1, mean over channels 0.2
    assert foreground_error(pred_fg, gt_fg, alpha) == pytest.approx((0.5 * 0.3 + 1.0 * 0.2) / 1.5)
    assert foreground_error(pred_fg, gt_fg, np.zeros((1, 3))) == 0.0


def test_temporal_flicker_by_hand() -> None:
    gt = [np.zeros((4, 4), np.float32)] * 3
    biased = [g + 0.3 for g in gt]  # steady error is not flicker
    assert temporal_flicker(biased, gt) == pytest.approx(0.0)
    flick = [gt[0], gt[0] + 0.2, gt[0]]  # +0.2 then -0.2
    assert temporal_flicker(flick, gt) == pytest.approx(0.2)
    assert temporal_flicker([gt[0]], [gt[0]]) == 0.0
    with pytest.raises(ValueError):
        temporal_flicker(flick, gt[:2])
