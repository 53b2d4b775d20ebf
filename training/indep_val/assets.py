"""Textures and opacity patterns for the rendered scenes (numpy arrays, deterministic).

Albedo comes from photographs that ship with scikit-image (no download), linearised from
sRGB. Opacity patterns (leaf outlines, nets, lace) are drawn analytically and anti-aliased
by supersampling, so a mask's fractional values are real partial coverage, not blur.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from gsrender.engine.encoding import srgb_eotf

MAX_SIDE = 512


@cache
def photo_albedo(name: str) -> np.ndarray:
    """Linear HxWx3 float32 albedo in [0, 0.9] from skimage.data.<name> (cached, read-only)."""
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3].astype(np.float32) / 255.0
    step = max(1, int(np.ceil(max(img.shape[:2]) / MAX_SIDE)))
    if step > 1:
        h, w = (img.shape[0] // step) * step, (img.shape[1] // step) * step
        img = img[:h, :w].reshape(h // step, step, w // step, step, 3).mean(axis=(1, 3))
    lin = np.minimum(srgb_eotf(img), 0.9).astype(np.float32)
    lin.setflags(write=False)
    return lin


def _supersampled(fn, size: int, ss: int = 4) -> np.ndarray:
    """Evaluate a coverage function on an ss x ss subgrid per texel and average."""
    t = (np.arange(size * ss, dtype=np.float64) + 0.5) / (size * ss) * 2.0 - 1.0
    y, x = np.meshgrid(-t, t, indexing="ij")  # x right, y up, in [-1, 1]
    v = fn(x, y).astype(np.float32)
    return v.reshape(size, ss, size, ss).mean(axis=(1, 3))


def leaf(seed: int, size: int = 128) -> np.ndarray:
    """A leaf outline along +y (tip at the top), serrated or smooth, with a notch of damage."""
    r = np.random.default_rng(seed)
    teeth = int(r.integers(0, 14))
    depth = r.uniform(0.0, 0.08) if teeth else 0.0
    power = r.uniform(0.6, 1.4)
    hx, hy, hr = r.uniform(-0.4, 0.4), r.uniform(-0.6, 0.6), r.uniform(0.0, 0.15)

    def cover(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        t = np.clip((y + 1.0) / 2.0, 0.0, 1.0)
        half = np.sin(np.pi * t) ** power * 0.95 * (1.0 - depth * (0.5 + 0.5 * np.sin(teeth * np.pi * t * 2)))
        inside = (np.abs(x) < half) & (np.abs(y) < 0.98)
        stem = (np.abs(x) < 0.03) & (y < -0.7)
        hole = (x - hx) ** 2 + (y - hy) ** 2 < hr**2
        return (inside | stem) & ~hole

    return _supersampled(cover, size)


def net(seed: int, size: int = 256) -> np.ndarray:
    """A knotted net or mesh fabric: threads of opacity 1 around open holes."""
    r = np.random.default_rng(seed)
    cells = r.uniform(6, 16)
    width = r.uniform(0.06, 0.2)  # thread width as a fraction of the cell
    angle = r.choice([0.0, np.pi / 4]) + r.normal(0, 0.05)

    def cover(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u = (x * np.cos(angle) - y * np.sin(angle)) * cells / 2
        v = (x * np.sin(angle) + y * np.cos(angle)) * cells / 2
        du, dv = np.abs(u - np.round(u)), np.abs(v - np.round(v))
        return (du < width / 2) | (dv < width / 2) | (np.abs(x) > 0.97) | (np.abs(y) > 0.97)

    return _supersampled(cover, size)


def lace(seed: int, size: int = 512) -> np.ndarray:
    """Tulle with lace: a fine three-way thread net (partial coverage comes from sub-pixel
    threads, as in real tulle), larger open holes, and opaque embroidered rings and petals."""
    r = np.random.default_rng(seed)
    cells = r.uniform(50, 90)
    width = r.uniform(0.12, 0.3)
    holes = r.uniform(6, 12)
    hole_r = r.uniform(0.2, 0.38)
    motifs = r.uniform(-0.9, 0.9, (int(r.integers(4, 10)), 2))
    m_r = r.uniform(0.08, 0.18, len(motifs))

    def cover(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        tulle = np.zeros(x.shape, bool)
        for ang in (0.0, np.pi / 3, 2 * np.pi / 3):
            u = (x * np.cos(ang) + y * np.sin(ang)) * cells / 2
            tulle |= np.abs(u - np.round(u)) < width / 2
        u, v = x * holes / 2, y * holes / 2
        tulle &= np.hypot(u - np.round(u), v - np.round(v)) > hole_r
        for (mx, my), rad in zip(motifs, m_r, strict=True):
            d = np.hypot(x - mx, y - my)
            tulle |= (np.abs(d - rad) < 0.012) | (d < rad * 0.35)
        return tulle | (np.abs(np.abs(y) - 0.97) < 0.01)

    return _supersampled(cover, size)


PATTERNS = {"leaf": leaf, "net": net, "lace": lace}


def opacity_pattern(name: str, seed: int) -> np.ndarray:
    """HxW float32 opacity in [0, 1] for a Material.opacity name."""
    if name not in PATTERNS:
        raise ValueError(f"unknown opacity pattern {name!r}")
    return np.ascontiguousarray(np.clip(PATTERNS[name](seed), 0.0, 1.0), dtype=np.float32)


def wrinkled_screen(depth: float, half_w: float, half_h: float, amp: float, seed: int, n: int = 72):
    """Vertices (Nx3), faces (Mx3, counter-clockwise seen from +z) and normals of a cloth screen."""
    r = np.random.default_rng(seed)
    xs = np.linspace(-half_w, half_w, n)
    ys = np.linspace(-half_h, half_h, int(n * half_h / half_w) + 2)
    y, x = np.meshgrid(ys, xs, indexing="ij")
    z = np.zeros_like(x)
    for _ in range(6):  # broad sags and a few folds
        k = r.uniform(0.5, 4.0) / max(half_w, 1e-3)
        ang = r.uniform(0, np.pi)
        ph = r.uniform(0, 2 * np.pi)
        z += amp * r.uniform(0.3, 1.0) * np.sin(k * (x * np.cos(ang) + y * np.sin(ang)) * np.pi + ph)
    for _ in range(int(r.integers(0, 4))):
        x0 = r.uniform(-half_w, half_w)
        z += (
            amp
            * 1.5
            * np.exp(-(((x - x0) / (0.05 * half_w)) ** 2))
            * np.clip(1 - (y + half_h) / (2 * half_h), 0, 1)
        )
    verts = np.stack([x, y, z - depth], axis=-1).reshape(-1, 3)
    rows, cols = x.shape
    idx = np.arange(rows * cols).reshape(rows, cols)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    gy, gx = np.gradient(z, ys, xs)
    normals = np.stack([-gx, -gy, np.ones_like(z)], -1).reshape(-1, 3)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return verts, faces, normals
