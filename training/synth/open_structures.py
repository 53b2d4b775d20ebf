"""Open subjects with the screen showing through: branching plants, nets and lace.

Real plates are full of these (pot plants, trees, fences, veils with holes), and a keyer
trained on closed blobs learns to fill the gaps: the shipped GsKeyNet painted alpha near 1
over screen seen between leaves. Both layers here have many holes at every scale, from
gaps of several hundred pixels down to sub-pixel twigs and threads.

Each layer follows the foreground module's contract (render(ctx) -> window, straight
colour, coverage, in object coordinates under the group's pose), so groups, blur and
motion apply to them unchanged and the ground truth stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .raster import Window, coverage, fractal_noise, pixel_centres
from .textures import TextureSpec, random_texture, render_texture

LEAF_TINTS = np.array(
    [
        [0.05, 0.12, 0.02],  # dark leaf green: close to the screen's hue, not its chroma
        [0.16, 0.26, 0.04],  # yellow-green
        [0.03, 0.06, 0.04],  # shadowed foliage
        [0.35, 0.18, 0.04],  # autumn
        [0.25, 0.05, 0.06],  # red leaves / petals
        [0.6, 0.55, 0.5],  # pale blossom
    ],
    np.float32,
)
BARK_TINTS = np.array([[0.09, 0.06, 0.04], [0.2, 0.16, 0.12], [0.03, 0.025, 0.02]], np.float32)


def _segment_sd(x: np.ndarray, y: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Signed distance to a capsule (x0, y0, x1, y1, width) on broadcast grids."""
    x0, y0, x1, y1, width = (np.float32(v) for v in seg)
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / max(float(dx * dx + dy * dy), 1e-6), 0.0, 1.0)
    return np.hypot(x - (x0 + t * dx), y - (y0 + t * dy)) - np.float32(0.5) * width


def _box(win: Window, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice] | None:
    """Window-relative slices of a canvas bounding box, or None when they do not overlap."""
    c0, c1 = max(win.x0, int(np.floor(x0))), min(win.x1, int(np.ceil(x1)) + 1)
    r0, r1 = max(win.y0, int(np.floor(y0))), min(win.y1, int(np.ceil(y1)) + 1)
    if c0 >= c1 or r0 >= r1:
        return None
    return slice(r0 - win.y0, r1 - win.y0), slice(c0 - win.x0, c1 - win.x0)


@dataclass
class Branches:
    """A branching plant: capsule segments (bark) and elliptical leaves, in object coordinates."""

    segments: np.ndarray  # n x 5: x0, y0, x1, y1, width
    leaves: np.ndarray  # m x 5: cx, cy, half length, half width, angle
    bark: TextureSpec
    leaf: TextureSpec
    tag: str = "open"

    def render(self, ctx: object) -> tuple[Window, np.ndarray, np.ndarray] | None:
        pts = np.concatenate([self.segments[:, 0:2], self.segments[:, 2:4], self.leaves[:, 0:2]])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = float(max(self.segments[:, 4].max(initial=0.0), self.leaves[:, 2].max(initial=0.0))) + 2.0
        c = (lo + hi) / 2
        win = ctx.window(float(c[0]), float(c[1]), float(np.hypot(*(hi - lo)) / 2) + pad)  # type: ignore[attr-defined]
        if win.empty:
            return None
        xs, ys = pixel_centres(win)
        x, y = ctx.to_object(xs, ys)  # type: ignore[attr-defined]
        x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
        shape = (win.y1 - win.y0, win.x1 - win.x0)
        # distances are computed in canvas space (the pose is rigid), each shape only over its
        # own bounding box: a plant has hundreds of pieces and most pixels are far from each
        sx0, sy0 = ctx.to_image(self.segments[:, 0], self.segments[:, 1])  # type: ignore[attr-defined]
        sx1, sy1 = ctx.to_image(self.segments[:, 2], self.segments[:, 3])  # type: ignore[attr-defined]
        sd_bark = np.full(shape, np.float32(1e3), np.float32)
        for x0, y0, x1, y1, wd in zip(sx0, sy0, sx1, sy1, self.segments[:, 4], strict=True):
            r = 0.5 * float(wd) + 2.0
            sl = _box(win, min(x0, x1) - r, max(x0, x1) + r, min(y0, y1) - r, max(y0, y1) + r)
            if sl is not None:
                gx, gy = xs[:, sl[1]], ys[sl[0], :]
                np.minimum(sd_bark[sl], _segment_sd(gx, gy, np.array([x0, y0, x1, y1, wd])), out=sd_bark[sl])
        sd_leaf = np.full(shape, np.float32(1e3), np.float32)
        lx, ly = ctx.to_image(self.leaves[:, 0], self.leaves[:, 1])  # type: ignore[attr-defined]
        for cx, cy, (a, b, ang) in zip(lx, ly, self.leaves[:, 2:5], strict=True):
            sl = _box(win, cx - a - 2, cx + a + 2, cy - a - 2, cy + a + 2)
            if sl is None:
                continue
            gx, gy = xs[:, sl[1]], ys[sl[0], :]
            ang = ang + np.float32(ctx.pose.angle)  # type: ignore[attr-defined]
            cs, sn = np.float32(np.cos(ang)), np.float32(np.sin(ang))
            u = (gx - np.float32(cx)) * cs + (gy - np.float32(cy)) * sn
            v = -(gx - np.float32(cx)) * sn + (gy - np.float32(cy)) * cs
            rr = np.sqrt((u / np.float32(a)) ** 2 + (v / np.float32(b)) ** 2)
            np.minimum(sd_leaf[sl], (rr - 1.0) * np.float32(min(a, b)), out=sd_leaf[sl])
        alpha = coverage(np.minimum(sd_bark, sd_leaf))
        inside = alpha > 0
        if not inside.any():
            return None
        colour = np.zeros(alpha.shape + (3,), np.float32)
        is_leaf = inside & (sd_leaf < sd_bark)
        is_bark = inside & ~is_leaf
        if is_leaf.any():
            colour[is_leaf] = render_texture(self.leaf, x[is_leaf], y[is_leaf])
        if is_bark.any():
            colour[is_bark] = render_texture(self.bark, x[is_bark], y[is_bark])
        return win, colour, alpha


@dataclass
class Mesh:
    """A net, fence or lace panel: thread coverage inside an outline, holes everywhere."""

    threads: np.ndarray  # HxW coverage in object space of the whole canvas, precomputed
    origin: tuple[float, float]
    texture: TextureSpec
    tag: str = "open"

    def render(self, ctx: object) -> tuple[Window, np.ndarray, np.ndarray] | None:
        h, w = self.threads.shape
        ox, oy = self.origin
        win = ctx.window(ox + w / 2, oy + h / 2, float(np.hypot(h, w) / 2))  # type: ignore[attr-defined]
        if win.empty:
            return None
        xs, ys = pixel_centres(win)
        x, y = ctx.to_object(xs, ys)  # type: ignore[attr-defined]
        # nearest-neighbour lookup keeps the precomputed anti-aliased coverage exact at pose 0
        ix = np.floor(np.asarray(x) - np.float32(ox)).astype(np.int64)
        iy = np.floor(np.asarray(y) - np.float32(oy)).astype(np.int64)
        ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        alpha = np.zeros(ok.shape, np.float32)
        alpha[ok] = self.threads[iy[ok], ix[ok]]
        inside = alpha > 0
        if not inside.any():
            return None
        colour = np.zeros(alpha.shape + (3,), np.float32)
        colour[inside] = render_texture(self.texture, np.asarray(x)[inside], np.asarray(y)[inside])
        return win, colour, alpha


def _grow(
    rng: np.random.Generator,
    x: float,
    y: float,
    ang: float,
    length: float,
    width: float,
    depth: int,
    scale: float,
    segs: list[list[float]],
    leaves: list[list[float]],
    leaf_size: float,
) -> None:
    """Recursive branching: each branch a slightly bent chain, 2-3 thinner children at its end."""
    pieces = int(rng.integers(2, 4))
    for k in range(pieces):
        ang += float(rng.normal(0, 0.15))
        nx, ny = x + np.cos(ang) * length / pieces, y + np.sin(ang) * length / pieces
        wk = width * (1.0 - 0.25 * k / pieces)
        segs.append([x, y, nx, ny, wk])
        if depth <= 2 and rng.random() < 0.8:  # leaves along the thin outer branches
            for _ in range(int(rng.integers(1, 4))):
                la = ang + float(rng.choice([-1, 1]) * rng.uniform(0.4, 1.3))
                size = leaf_size * float(rng.uniform(0.6, 1.4))
                d = size * 0.9
                leaves.append(
                    [nx + np.cos(la) * d, ny + np.sin(la) * d, size, size * rng.uniform(0.25, 0.5), la]
                )
        x, y = nx, ny
    if depth == 0:
        return
    for _ in range(int(rng.integers(2, 4))):
        _grow(
            rng, x, y, ang + float(rng.uniform(-0.9, 0.9)), length * float(rng.uniform(0.55, 0.8)),
            max(0.35, width * float(rng.uniform(0.55, 0.75))), depth - 1, scale, segs, leaves, leaf_size,
        )  # fmt: skip


def sample_branches(rng: np.random.Generator, h: int, w: int, scale: float, green: bool) -> Branches:
    """A plant or tree growing into the frame from an edge; leaves sometimes absent (bare twigs)."""
    side = int(rng.integers(4))
    u = float(rng.uniform(0.15, 0.85))
    root, ang = [((u * w, h + 2.0), -np.pi / 2), ((-2.0, u * h), 0.0), ((w + 2.0, u * h), np.pi),
                 ((u * w, -2.0), np.pi / 2)][side]  # fmt: skip
    segs: list[list[float]] = []
    leaves: list[list[float]] = []
    leaf_size = float(np.exp(rng.uniform(np.log(2.0), np.log(14.0))) * scale) if rng.random() < 0.8 else 0.0
    start = ang + float(rng.normal(0, 0.3))
    trunk = float(rng.uniform(0.25, 0.45) * min(h, w))
    width = float(rng.uniform(2.0, 9.0) * scale)
    depth = int(rng.integers(3, 6))
    _grow(rng, root[0], root[1], start, trunk, width, depth, scale, segs, leaves, max(leaf_size, 1.0))
    if leaf_size == 0.0:
        leaves = []
    tint = LEAF_TINTS[int(rng.integers(len(LEAF_TINTS)))] * np.float32(rng.uniform(0.6, 1.6))
    if green:
        tint = np.array([0.08, 0.3, 0.06], np.float32) * np.float32(rng.uniform(0.6, 1.4))
    bark = BARK_TINTS[int(rng.integers(len(BARK_TINTS)))] * np.float32(rng.uniform(0.6, 1.5))
    return Branches(
        np.asarray(segs, np.float32).reshape(-1, 5),
        np.asarray(leaves, np.float32).reshape(-1, 5),
        random_texture(rng, bark, saturation=0.6),
        random_texture(rng, tint, saturation=float(rng.uniform(0.5, 1.0))),
    )


def _threads(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Coverage of a thread pattern (net, fence, or noise lace) inside a soft outline."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + np.float32(0.5)
    kind = int(rng.integers(3))
    if kind < 2:  # net (two thread families) or fence (one, thicker)
        cover = np.zeros((h, w), np.float32)
        families = 2 if kind == 0 else int(rng.integers(1, 3))
        base = float(rng.uniform(0, np.pi))
        for f in range(families):
            ang = base + f * float(rng.uniform(0.9, 2.2))
            spacing = float(np.exp(rng.uniform(np.log(4.0), np.log(30.0))) * scale)
            width = float(np.exp(rng.uniform(np.log(0.4), np.log(3.5 if kind else 2.0))) * max(1.0, scale))
            d = xx * np.float32(np.cos(ang)) + yy * np.float32(np.sin(ang))
            d = d + np.float32(rng.uniform(0, 3)) * np.sin(
                (xx * np.float32(-np.sin(ang)) + yy * np.float32(np.cos(ang))) / np.float32(spacing * 2)
            )
            dist = np.abs((d / np.float32(spacing)) % 1.0 - 0.5) * np.float32(spacing)
            line = coverage(np.float32(spacing / 2) - dist - np.float32(width / 2))
            cover = 1.0 - (1.0 - cover) * line
    else:  # lace / foliage-like noise: organic holes with sharp edges
        n = fractal_noise(rng, h, w, 4, int(rng.integers(4, 12)))
        thr = float(rng.uniform(-0.15, 0.2))
        gy, gx = np.gradient(n)
        grad = np.maximum(np.hypot(gx, gy), 1e-4)
        cover = coverage((thr - n) / grad)
    outline = fractal_noise(rng, h, w, 2, 3) + np.float32(0.2)
    gy, gx = np.gradient(outline)
    ramp = coverage(-outline / np.maximum(np.hypot(gx, gy), 1e-4))  # the panel's outline, a sharp edge
    return (cover * ramp).astype(np.float32)


def sample_mesh(rng: np.random.Generator, h: int, w: int, scale: float, green: bool) -> Mesh:
    """A net, fence or lace panel covering part of the frame."""
    ph, pw = int(h * rng.uniform(0.4, 1.0)), int(w * rng.uniform(0.4, 1.0))
    origin = (float(rng.uniform(0, w - pw + 1)), float(rng.uniform(0, h - ph + 1)))
    palette = np.array([[0.01, 0.01, 0.01], [0.6, 0.6, 0.58], [0.3, 0.2, 0.1], [0.5, 0.08, 0.05]], np.float32)
    tint = palette[int(rng.integers(len(palette)))] * np.float32(rng.uniform(0.6, 1.4))
    if green:
        tint = np.array([0.1, 0.35, 0.1], np.float32)
    return Mesh(_threads(rng, ph, pw, scale), origin, random_texture(rng, tint, saturation=0.5))


def sample_open(rng: np.random.Generator, h: int, w: int, scale: float, green: bool) -> list:
    """One to three open layers: plants most of the time, nets and lace otherwise."""
    layers: list = []
    for _ in range(int(rng.integers(1, 3))):
        if rng.random() < 0.65:
            layers.append(sample_branches(rng, h, w, scale, green))
        else:
            layers.append(sample_mesh(rng, h, w, scale, green))
        green = False
    return layers


__all__ = ["Branches", "Mesh", "sample_open", "sample_branches", "sample_mesh"]
