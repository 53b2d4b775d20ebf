"""Standard alpha-matting metrics, so our numbers compare with published ones.

Definitions follow Rhemann et al. 2009 (alphamatting.com) and Xu et al. 2017 (Deep
Image Matting) as their evaluation code is commonly re-implemented:

* alpha is in [0, 1] (not 0..255);
* SAD, gradient and connectivity errors are sums over the evaluated pixels, reported
  divided by 1000; MSE is a plain mean over the evaluated pixels (not scaled);
* gradient and connectivity maps are computed on the whole frame, then summed only
  over the mask, so the mask never creates artificial edges.

A mask selects the evaluated pixels; ``None`` means the whole frame. The published
benchmarks evaluate on the trimap's unknown region, which ``unknown_band`` rebuilds
from the ground truth.

Training-side only (uses scipy); the render engine never imports this module.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

GRAD_SIGMA = 1.4
_GRAD_EPS = 1e-2  # truncation of the derivative-of-Gaussian kernel (as in the DIM code)
_LEVEL_EPS = 1e-6  # alpha within this of 0 or 1 counts as fully transparent / opaque


def _alpha(a: np.ndarray, name: str) -> np.ndarray:
    """HxW or HxWx1 -> HxW float64 (float64 so sums over large frames stay exact)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected an HxW alpha, got shape {a.shape}")
    return a


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, g = _alpha(pred, "pred"), _alpha(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} differ in shape")
    return p, g


def _mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        return np.ones(shape, dtype=bool)
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.shape != shape:
        raise ValueError(f"mask {m.shape} does not match alpha {shape}")
    return m.astype(bool)


def sad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Sum of absolute differences over the mask, in thousands (alpha in [0, 1])."""
    p, g = _pair(pred, gt)
    m = _mask(mask, p.shape)
    return float(np.abs(p - g)[m].sum() / 1000.0)


def mse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over the mask pixels (0.0 for an empty mask)."""
    p, g = _pair(pred, gt)
    m = _mask(mask, p.shape)
    n = int(m.sum())
    if n == 0:
        return 0.0
    return float(np.square(p - g)[m].sum() / n)


def gauss_deriv_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """1-D Gaussian and first-derivative-of-Gaussian taps for the DIM gradient filter.

    The DIM code builds the 2-D kernel g(y) * g'(x), truncated where the Gaussian falls
    below ``_GRAD_EPS`` of its peak scale, and normalises it to unit L2 norm. The kernel
    is separable and its L2 norm is the product of the 1-D norms, so each 1-D factor is
    normalised on its own.
    """
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * _GRAD_EPS)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    dg = -x / sigma**2 * g
    return g / np.linalg.norm(g), dg / np.linalg.norm(dg)


def _grad_mag(a: np.ndarray, sigma: float) -> np.ndarray:
    g, dg = gauss_deriv_kernels(sigma)
    gx = ndimage.correlate1d(ndimage.correlate1d(a, g, axis=0, mode="nearest"), dg, axis=1, mode="nearest")
    gy = ndimage.correlate1d(ndimage.correlate1d(a, dg, axis=0, mode="nearest"), g, axis=1, mode="nearest")
    return np.hypot(gx, gy)


def gradient_error(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, sigma: float = GRAD_SIGMA
) -> float:
    """Sum over the mask of (|grad pred| - |grad gt|)^2, divided by 1000.

    Gradients use first-order Gaussian derivative filters (sigma 1.4) with the kernel
    normalised to unit L2 norm and replicated borders, as in the DIM evaluation code;
    alpha is in [0, 1]. Catches blurry or noisy edges that SAD barely sees.
    """
    p, g = _pair(pred, gt)
    m = _mask(mask, p.shape)
    return float(_grad_error_map(p, g, sigma)[m].sum() / 1000.0)


def _grad_error_map(p: np.ndarray, g: np.ndarray, sigma: float = GRAD_SIGMA) -> np.ndarray:
    return np.square(_grad_mag(p, sigma) - _grad_mag(g, sigma))


def _largest_component(binary: np.ndarray) -> np.ndarray:
    """Largest 4-connected component of a boolean image (all False if empty)."""
    labels, n = ndimage.label(binary)  # default structure = 4-connectivity in 2-D
    if n == 0:
        return np.zeros(binary.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def connectivity_error(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray | None = None,
    step: float = 0.1,
    theta: float = 0.15,
) -> float:
    """Threshold-sweep connectivity error (Rhemann et al. 2009), divided by 1000.

    For thresholds t = step, 2*step, ..., 1 the largest 4-connected component of
    (pred >= t) & (gt >= t) is found; l is the last threshold before a pixel left that
    component (1 if it never did). With d = alpha - l, phi = 1 - d * (d >= theta), and
    the error is the sum over the mask of |phi_pred - phi_gt|. Errors on pixels that are
    detached from the main matte cost more than the same errors on attached ones.
    """
    p, g = _pair(pred, gt)
    m = _mask(mask, p.shape)
    return float(_conn_error_map(p, g, step, theta)[m].sum() / 1000.0)


def _conn_error_map(p: np.ndarray, g: np.ndarray, step: float = 0.1, theta: float = 0.15) -> np.ndarray:
    if not 0.0 < step <= 1.0:
        raise ValueError(f"step must be in (0, 1], got {step}")
    n_steps = int(round(1.0 / step))
    # Rounded so that e.g. 0.9 is 0.9, not 0.9000000000000001 (which would drop alpha 0.9).
    thresholds = np.round(np.arange(n_steps + 1) * step, 10)
    level = np.full(p.shape, -1.0)
    for i in range(1, len(thresholds)):
        omega = _largest_component((p >= thresholds[i]) & (g >= thresholds[i]))
        leaving = (level == -1.0) & ~omega
        level[leaving] = thresholds[i - 1]
    level[level == -1.0] = 1.0
    dp = p - level
    dg = g - level
    phi_p = 1.0 - dp * (dp >= theta)
    phi_g = 1.0 - dg * (dg >= theta)
    return np.abs(phi_p - phi_g)


def unknown_band(gt: np.ndarray, width: int | None = None) -> np.ndarray:
    """The trimap "unknown" region rebuilt from the ground truth, as a bool HxW mask.

    Every pixel with 0 < gt < 1, plus every pixel within ``width`` pixels (Euclidean) of
    the transition between opaque and transparent: i.e. the dilation of gt > 0 minus the
    erosion of gt == 1. The frame border is not treated as an edge. Default width is
    max(3, 1% of the smaller side), so the band scales with resolution.
    """
    a = _alpha(gt, "gt")
    if width is None:
        width = max(3, int(round(0.01 * min(a.shape))))
    any_fg = a > _LEVEL_EPS
    solid = a >= 1.0 - _LEVEL_EPS
    if width <= 0:
        return any_fg & ~solid
    # distance_transform_edt measures distance to the nearest False pixel; guard the
    # degenerate all-True inputs, for which it has no False pixel to measure from.
    if not any_fg.any():
        dilated = np.zeros(a.shape, dtype=bool)
    elif any_fg.all():
        dilated = np.ones(a.shape, dtype=bool)
    else:
        dilated = ndimage.distance_transform_edt(~any_fg) <= width
    if solid.all():
        eroded = np.ones(a.shape, dtype=bool)
    elif not solid.any():
        eroded = np.zeros(a.shape, dtype=bool)
    else:
        eroded = ndimage.distance_transform_edt(solid) > width
    return dilated & ~eroded


def foreground_error(pred_fg: np.ndarray, gt_fg: np.ndarray, gt_alpha: np.ndarray) -> float:
    """Alpha-weighted mean absolute error of the straight (unpremultiplied) foreground.

    sum(gt_alpha * mean_over_channels |pred_fg - gt_fg|) / sum(gt_alpha), in the units
    of the inputs (scene-linear). Pixels with alpha 0 have no defined foreground colour
    and are ignored; semi-transparent pixels count in proportion to how much they show.
    Returns 0.0 when the ground truth is fully transparent.
    """
    pf = np.asarray(pred_fg, dtype=np.float64)
    gf = np.asarray(gt_fg, dtype=np.float64)
    a = np.clip(_alpha(gt_alpha, "gt_alpha"), 0.0, 1.0)
    if pf.shape != gf.shape or pf.ndim != 3 or pf.shape[:2] != a.shape:
        raise ValueError(f"foreground shapes {pf.shape}, {gf.shape} and alpha {a.shape} do not match")
    total = a.sum()
    if total <= 0.0:
        return 0.0
    per_px = np.abs(pf - gf).mean(axis=2)
    return float((a * per_px).sum() / total)


def temporal_flicker(pred_seq: list[np.ndarray], gt_seq: list[np.ndarray]) -> float:
    """dtSSD (Erofeev et al. 2015): temporal coherence of a predicted alpha sequence.

    For each pair of consecutive frames, sqrt(mean(((p_t - p_{t-1}) - (g_t - g_{t-1}))^2))
    over all pixels, then the mean over the pairs. Alpha in [0, 1] (some papers report
    this x100). Zero when the prediction changes exactly as the ground truth does, so a
    constant per-pixel bias is not flicker. Returns 0.0 for fewer than two frames.
    """
    if len(pred_seq) != len(gt_seq):
        raise ValueError(f"pred has {len(pred_seq)} frames, gt has {len(gt_seq)}")
    if len(pred_seq) < 2:
        return 0.0
    frames = [_pair(p, g) for p, g in zip(pred_seq, gt_seq, strict=True)]
    vals = []
    for (p0, g0), (p1, g1) in zip(frames[:-1], frames[1:], strict=True):
        if p1.shape != p0.shape:
            raise ValueError("all frames of a sequence must have the same shape")
        vals.append(math.sqrt(float(np.mean(np.square((p1 - p0) - (g1 - g0))))))
    return float(np.mean(vals))


def matting_report(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """SAD, MSE, gradient and connectivity errors on the whole frame and the unknown band.

    Keys: sad, mse, grad, conn (whole frame) and the same with an ``_unknown`` suffix
    (restricted to ``unknown_band(gt)``, the region the published benchmarks score).
    """
    p, g = _pair(pred, gt)
    band = unknown_band(g)
    grad_map = _grad_error_map(p, g)  # the expensive maps are computed once for both regions
    conn_map = _conn_error_map(p, g)
    report: dict[str, float] = {}
    for suffix, m in (("", np.ones(p.shape, dtype=bool)), ("_unknown", band)):
        report[f"sad{suffix}"] = sad(p, g, m)
        report[f"mse{suffix}"] = mse(p, g, m)
        report[f"grad{suffix}"] = float(grad_map[m].sum() / 1000.0)
        report[f"conn{suffix}"] = float(conn_map[m].sum() / 1000.0)
    return report
