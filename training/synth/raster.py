"""Small rasterisation helpers shared by the generator modules.

Everything here works on float32 arrays in pixel units (pixel (i, j) covers
[j, j+1) x [i, i+1), its centre is at (j + 0.5, i + 0.5)). The coverage functions
define the ground-truth alpha, so the plate is always composited from exactly what
they return: anti-aliasing quality only changes how edges look, never GT exactness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A clipped rectangular region of the frame (rows y0:y1, columns x0:x1)."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def empty(self) -> bool:
        return self.y1 <= self.y0 or self.x1 <= self.x0

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


def window_around(cx: float, cy: float, radius: float, height: int, width: int) -> Window:
    """The frame-clipped square window of a bounding circle (plus a 2 px margin)."""
    r = radius + 2.0
    return Window(
        max(0, int(np.floor(cy - r))),
        min(height, int(np.ceil(cy + r)) + 1),
        max(0, int(np.floor(cx - r))),
        min(width, int(np.ceil(cx + r)) + 1),
    )


def pixel_centres(win: Window) -> tuple[np.ndarray, np.ndarray]:
    """Column/row coordinate grids (broadcastable 1xW and Hx1) of the window's pixel centres."""
    xs = np.arange(win.x0, win.x1, dtype=np.float32)[None, :] + np.float32(0.5)
    ys = np.arange(win.y0, win.y1, dtype=np.float32)[:, None] + np.float32(0.5)
    return xs, ys


def coverage(sd: np.ndarray, softness: float = 1.0) -> np.ndarray:
    """Coverage from a signed distance in pixels (negative inside).

    softness 1 is a one-pixel box-filtered hard edge; larger values give a smoothstep
    ramp of that many pixels (a soft edge, e.g. a fuzzy sweater or a feathered prop).
    """
    if softness <= 1.0:
        return np.clip(np.float32(0.5) - sd, 0.0, 1.0).astype(np.float32, copy=False)
    t = np.clip(np.float32(0.5) - sd / np.float32(softness), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32, copy=False)


def sd_ellipse(x: np.ndarray, y: np.ndarray, a: float, b: float) -> np.ndarray:
    """First-order signed distance to an axis-aligned ellipse with radii a, b at the origin."""
    ia2, ib2 = np.float32(1.0 / (a * a)), np.float32(1.0 / (b * b))
    k = np.sqrt(x * x * ia2 + y * y * ib2)
    grad = np.sqrt((x * ia2) ** 2 + (y * ib2) ** 2)
    return ((k - 1.0) * k / np.maximum(grad, 1e-6)).astype(np.float32, copy=False)


def sd_round_box(x: np.ndarray, y: np.ndarray, hx: float, hy: float, r: float) -> np.ndarray:
    """Exact signed distance to a rounded box with half sizes hx, hy and corner radius r."""
    r = min(r, hx, hy)
    qx = np.abs(x) - np.float32(hx - r)
    qy = np.abs(y) - np.float32(hy - r)
    outside = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2)
    return (outside + np.minimum(np.maximum(qx, qy), 0.0) - np.float32(r)).astype(np.float32, copy=False)


def sd_radial(x: np.ndarray, y: np.ndarray, radius: float, harmonics: np.ndarray) -> np.ndarray:
    """Approximate signed distance to a blob r(theta) = radius * (1 + sum a_k cos(k theta + phi_k)).

    harmonics: rows (k, a_k, phi_k). Gives organic silhouettes (rocks, animals, bags).
    """
    rho = np.sqrt(x * x + y * y)
    th = np.arctan2(y, x)
    rt = np.ones_like(rho)
    drt = np.zeros_like(rho)
    for k, a, phi in harmonics:
        arg = k * th + phi
        rt += np.float32(a) * np.cos(arg)
        drt -= np.float32(a * k) * np.sin(arg)
    rt *= np.float32(radius)
    drt *= np.float32(radius)
    slope = np.sqrt(1.0 + (drt / np.maximum(rho, 1.0)) ** 2)
    return ((rho - rt) / slope).astype(np.float32, copy=False)


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth union of two signed distances (organic joins like neck/shoulders)."""
    if k <= 0:
        return np.minimum(a, b)
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return (b * (1.0 - h) + a * h - k * h * (1.0 - h)).astype(np.float32, copy=False)


def box_blur(img: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Box filter of width 2r+1 along one axis with edge replication (cumulative sums)."""
    if radius <= 0:
        return img
    n = img.shape[axis]
    pad = [(0, 0)] * img.ndim
    pad[axis] = (radius + 1, radius)
    c = np.cumsum(np.pad(img, pad, mode="edge"), axis=axis, dtype=np.float32)
    hi = [slice(None)] * img.ndim
    lo = [slice(None)] * img.ndim
    hi[axis] = slice(2 * radius + 1, 2 * radius + 1 + n)
    lo[axis] = slice(0, n)
    out = c[tuple(hi)] - c[tuple(lo)]
    out *= np.float32(1.0 / (2 * radius + 1))
    return out


def blur(img: np.ndarray, sigma: float, passes: int = 2) -> np.ndarray:
    """Gaussian-like blur: repeated separable box filters whose variance matches sigma."""
    if sigma <= 0.3:
        return img
    width = np.sqrt(12.0 * sigma * sigma / passes + 1.0)
    r = max(1, int(round((width - 1.0) / 2.0)))
    out = img
    for _ in range(passes):
        out = box_blur(box_blur(out, r, 0), r, 1)
    return out


def splat(
    xs: np.ndarray, ys: np.ndarray, weights: np.ndarray, values: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear (tent-filter) splatting of weighted point samples.

    Returns (density HxW, weighted value sums HxWxC). Sampling a curve every <= 0.5 px
    with weight width*step makes the density the tent-filtered area of the curve in each
    pixel: anti-aliased sub-pixel coverage without a per-segment loop.
    """
    fx = xs - np.float32(0.5)
    fy = ys - np.float32(0.5)
    x0 = np.floor(fx)
    y0 = np.floor(fy)
    keep = (x0 >= -1) & (x0 < width) & (y0 >= -1) & (y0 < height)
    fx, fy, x0, y0 = fx[keep], fy[keep], x0[keep], y0[keep]
    wts, vals = weights[keep], values[keep]
    tx = fx - x0
    ty = fy - y0
    pw = width + 2
    base = (y0.astype(np.int64) + 1) * pw + (x0.astype(np.int64) + 1)
    idx = np.concatenate([base, base + 1, base + pw, base + pw + 1])
    w4 = np.concatenate([(1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty]) * np.tile(wts, 4)
    size = (height + 2) * pw
    dens = np.bincount(idx, w4, minlength=size).reshape(height + 2, pw)[1:-1, 1:-1]
    acc = np.empty((height, width, vals.shape[1]), np.float32)
    for c in range(vals.shape[1]):
        s = np.bincount(idx, w4 * np.tile(vals[:, c], 4), minlength=size)
        acc[..., c] = s.reshape(height + 2, pw)[1:-1, 1:-1]
    return dens.astype(np.float32), acc


def motion_blur(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Average of the image shifted along the segment (-d/2, d/2): a box shutter.

    Shifts are whole pixels at ~1 px spacing, so even long streaks cost one slice-add per
    pixel of travel. The frame edge is treated as empty (zero), which is right for
    premultiplied colour and alpha of a subject.
    """
    length = float(np.hypot(dx, dy))
    n = max(2, int(np.ceil(length)) + 1)
    t = np.linspace(-0.5, 0.5, n)
    offs = sorted({(int(round(dy * s)), int(round(dx * s))) for s in t})
    m = max(max(abs(a), abs(b)) for a, b in offs)
    h, w = img.shape[:2]
    pad = [(m, m), (m, m)] + [(0, 0)] * (img.ndim - 2)
    p = np.pad(img, pad)
    acc = np.zeros_like(img)
    for oy, ox in offs:
        acc += p[m - oy : m - oy + h, m - ox : m - ox + w]
    return acc * np.float32(1.0 / len(offs))


def upsample_grid(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Smooth (cosine-eased bilinear) upsampling of a small grid to the frame size."""
    gh, gw = grid.shape[:2]

    def axis(n: int, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(n, dtype=np.float32) + 0.5) * (g - 1) / n
        i0 = np.minimum(np.floor(pos).astype(np.int64), g - 2)
        f = pos - i0
        f = f * f * (3.0 - 2.0 * f)
        return i0, i0 + 1, f.astype(np.float32)

    y0, y1, fy = axis(height, gh)
    x0, x1, fx = axis(width, gw)
    extra = (None,) * (grid.ndim - 2)
    rows = grid[y0] * (1 - fy)[(slice(None), None, *extra)] + grid[y1] * fy[(slice(None), None, *extra)]
    out = rows[:, x0] * (1 - fx)[(None, slice(None), *extra)] + rows[:, x1] * fx[(None, slice(None), *extra)]
    return out.astype(np.float32)


def fractal_noise(
    rng: np.random.Generator, height: int, width: int, octaves: int, base_cells: int
) -> np.ndarray:
    """Smooth value noise in about [-1, 1] (smoke, screen lighting irregularities)."""
    out = np.zeros((height, width), np.float32)
    amp, total = 1.0, 0.0
    cells = base_cells
    for _ in range(octaves):
        g = rng.uniform(-1.0, 1.0, (cells + 2, cells + 2)).astype(np.float32)
        out += np.float32(amp) * upsample_grid(g, height, width)
        total += amp
        amp *= 0.5
        cells *= 2
    return out / np.float32(total)
