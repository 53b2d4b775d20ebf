"""Foreground subjects with exact coverage: solids, hair and fur, veils, smoke, wires.

Each layer is stored as plain parameters in object coordinates and rendered for a Pose,
so a sequence can move the same subject smoothly. A layer returns straight colour and
coverage; groups composite layers with the over operator in premultiplied form and blur
premultiplied colour and alpha together (motion blur, defocus), which keeps the
foreground colour F = P / alpha and the alpha exact for the compositing equation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .open_structures import Branches, Mesh, sample_open
from .raster import (
    Window,
    blur,
    coverage,
    fractal_noise,
    motion_blur,
    pixel_centres,
    sd_ellipse,
    sd_radial,
    sd_round_box,
    smooth_min,
    splat,
    window_around,
)
from .textures import TextureSpec, random_texture, render_texture, sample_bilinear

ELEMENT_KINDS = ("solid", "hair", "fur", "semi_transparent", "thin", "open")
STEP_PX = 0.6  # max spacing of strand samples: the tent splat ripples < ~6% at this spacing
POINTS_PER_PX = 0.6  # strand sample budget per frame pixel, keeps big hairdos within the time budget
MODIFIER_KINDS = ("motion_blur", "defocus", "greenish_fg", "hdr", "large")


# --------------------------------------------------------------------------- poses


@dataclass(frozen=True)
class Pose:
    """Rigid motion of a group about its pivot, plus time for secondary motion (hair sway)."""

    dx: float = 0.0
    dy: float = 0.0
    angle: float = 0.0
    t: float = 0.0


@dataclass
class Ctx:
    """What a layer needs to render: canvas size, pose and the pivot it rotates about."""

    height: int
    width: int
    pose: Pose
    pivot: tuple[float, float]

    def to_image(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Object coordinates -> canvas pixels (strand samples move forward)."""
        px, py = self.pivot
        c, s = np.float32(np.cos(self.pose.angle)), np.float32(np.sin(self.pose.angle))
        x0, y0 = x - np.float32(px), y - np.float32(py)
        return (
            c * x0 - s * y0 + np.float32(px + self.pose.dx),
            s * x0 + c * y0 + np.float32(py + self.pose.dy),
        )

    def to_object(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canvas pixels -> object coordinates (shapes are evaluated backward), full-size grids."""
        px, py = self.pivot
        c, s = np.float32(np.cos(self.pose.angle)), np.float32(np.sin(self.pose.angle))
        x0, y0 = x - np.float32(px + self.pose.dx), y - np.float32(py + self.pose.dy)
        shape = np.broadcast_shapes(x.shape, y.shape)
        if self.pose.angle == 0.0:
            return np.broadcast_to(x0 + np.float32(px), shape), np.broadcast_to(y0 + np.float32(py), shape)
        return c * x0 + s * y0 + np.float32(px), -s * x0 + c * y0 + np.float32(py)

    def window(self, cx: float, cy: float, radius: float) -> Window:
        """Canvas window of an object-space bounding circle (rotation keeps circles circles)."""
        ix, iy = self.to_image(np.float32(cx), np.float32(cy))
        return window_around(float(ix), float(iy), radius, self.height, self.width)


# --------------------------------------------------------------------------- primitives


@dataclass(frozen=True)
class Prim:
    """A signed-distance primitive in object coordinates."""

    kind: str  # "ellipse" | "box" | "blob"
    cx: float
    cy: float
    a: float  # ellipse/box half size x, blob radius
    b: float  # ellipse/box half size y
    angle: float = 0.0
    r: float = 0.0  # box corner radius
    harmonics: np.ndarray | None = None  # blob rows (k, a_k, phi_k)

    @property
    def radius(self) -> float:
        if self.kind == "blob":
            assert self.harmonics is not None
            return self.a * (1.0 + float(np.abs(self.harmonics[:, 1]).sum()))
        return float(np.hypot(self.a, self.b))

    def sd(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        dx, dy = x - np.float32(self.cx), y - np.float32(self.cy)
        if self.angle:
            c, s = np.float32(np.cos(self.angle)), np.float32(np.sin(self.angle))
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        if self.kind == "ellipse":
            return sd_ellipse(dx, dy, self.a, self.b)
        if self.kind == "box":
            return sd_round_box(dx, dy, self.a, self.b, self.r)
        assert self.harmonics is not None
        return sd_radial(dx, dy, self.a, self.harmonics)


def _bounds(prims: list[Prim]) -> tuple[float, float, float]:
    """Bounding circle (cx, cy, radius) of a set of primitives."""
    lo = np.array([[p.cx - p.radius, p.cy - p.radius] for p in prims]).min(axis=0)
    hi = np.array([[p.cx + p.radius, p.cy + p.radius] for p in prims]).max(axis=0)
    c = (lo + hi) / 2
    return float(c[0]), float(c[1]), float(np.hypot(*(hi - lo)) / 2)


def random_blob(rng: np.random.Generator, cx: float, cy: float, radius: float, wobble: float) -> Prim:
    """An organic outline: low harmonics only, so it stays one smooth, mostly convex body."""
    ks = np.arange(2, 6, dtype=np.float32)
    amps = (rng.uniform(0, wobble, 4) / ks).astype(np.float32)
    phis = rng.uniform(0, 2 * np.pi, 4).astype(np.float32)
    return Prim("blob", cx, cy, radius, radius, 0.0, harmonics=np.stack([ks, amps, phis], axis=1))


# --------------------------------------------------------------------------- layers


@dataclass
class Solid:
    """Opaque textured object (union of primitives) with shading, rim light and highlights."""

    parts: list[Prim]
    textures: list[TextureSpec]  # one per part
    softness: float = 1.0  # edge ramp width in px (1 = hard anti-aliased edge)
    blend: float = 0.0  # smooth-union radius between parts
    light_dir: tuple[float, float] = (0.0, 0.0)  # shading gradient per px
    rim: tuple[float, float, float, float] = (0.0, 1.0, 1.0, 1.0)  # strength, width px, tint g, tint b
    highlight: tuple[float, float, float, float] | None = None  # cx, cy, sigma, peak (HDR when > 1)
    opacity: float = 1.0
    tag: str = "solid"

    def render(self, ctx: Ctx) -> tuple[Window, np.ndarray, np.ndarray] | None:
        """(window, straight colour, coverage) on the canvas, or None when off-canvas."""
        cx, cy, rad = _bounds(self.parts)
        win = ctx.window(cx, cy, rad + self.softness)
        if win.empty:
            return None
        xs, ys = pixel_centres(win)
        x, y = ctx.to_object(xs, ys)
        sds = [p.sd(x, y) for p in self.parts]
        sd = sds[0]
        for other in sds[1:]:
            sd = smooth_min(sd, other, self.blend)
        alpha = coverage(sd, self.softness)
        colour = np.zeros(alpha.shape + (3,), np.float32)
        inside = alpha > 0
        if not inside.any():
            return None
        owner = np.argmin(np.stack(sds), axis=0) if len(sds) > 1 else np.zeros(alpha.shape, np.int64)
        for k, tex in enumerate(self.textures):
            sel = inside & (owner == k)
            if sel.any():
                colour[sel] = render_texture(tex, x[sel], y[sel])
        gx, gy = self.light_dir
        shade = np.clip(
            1.0 + np.float32(gx) * (x - np.float32(cx)) + np.float32(gy) * (y - np.float32(cy)), 0.35, 1.6
        )
        colour *= shade[..., None]
        strength, width, tg, tb = self.rim
        if strength:
            rim = np.float32(strength) * np.exp(np.minimum(sd, 0.0) * np.float32(1.0 / width))
            colour += rim[..., None] * np.array([1.0, tg, tb], np.float32)
        if self.highlight is not None:
            hx, hy, sig, peak = self.highlight
            d2 = (x - np.float32(hx)) ** 2 + (y - np.float32(hy)) ** 2
            colour += (np.float32(peak) * np.exp(-d2 * np.float32(0.5 / sig**2)))[..., None]
        return win, colour, alpha * np.float32(self.opacity)


@dataclass
class Veil:
    """Semi-transparent cloth or glass: opacity varies inside the shape, never reaching 1."""

    shape: Prim
    colour: np.ndarray
    base: float  # interior opacity
    style: str  # "cloth" | "glass"
    fold_freq: float = 0.1
    fold_phase: float = 0.0
    weave: float = 0.0
    rim_width: float = 3.0
    highlight: tuple[float, float, float, float] | None = None
    texture: TextureSpec | None = None
    tag: str = "semi_transparent"

    def render(self, ctx: Ctx) -> tuple[Window, np.ndarray, np.ndarray] | None:
        """(window, straight colour, coverage) on the canvas, or None when off-canvas."""
        win = ctx.window(self.shape.cx, self.shape.cy, self.shape.radius + 2)
        if win.empty:
            return None
        xs, ys = pixel_centres(win)
        x, y = ctx.to_object(xs, ys)
        sd = self.shape.sd(x, y)
        cov = coverage(sd)
        c, s = np.float32(np.cos(self.shape.angle)), np.float32(np.sin(self.shape.angle))
        u = c * (x - np.float32(self.shape.cx)) + s * (y - np.float32(self.shape.cy))
        if self.style == "cloth":
            folds = 1.0 + 0.9 * (
                0.5 + 0.5 * np.sin(np.float32(self.fold_freq) * u + np.float32(self.fold_phase))
            )
            op = 1.0 - np.float32(1.0 - self.base) ** folds
            if self.weave:
                v = -s * (x - np.float32(self.shape.cx)) + c * (y - np.float32(self.shape.cy))
                op = op * (1.0 + np.float32(self.weave) * np.sin(2.2 * u) * np.sin(2.2 * v))
        else:  # glass: thin in the middle, denser toward the rim where the surface is grazing
            rim = np.exp(np.minimum(sd, 0.0) * np.float32(1.0 / self.rim_width))
            op = np.float32(self.base) + np.float32(0.6) * rim
        alpha = np.clip(op, 0.0, 0.97) * cov
        if self.texture is not None:
            colour = render_texture(self.texture, x, y)
        else:
            colour = np.broadcast_to(self.colour, alpha.shape + (3,)).copy()
        if self.highlight is not None:
            hx, hy, sig, peak = self.highlight
            d2 = (x - np.float32(hx)) ** 2 + (y - np.float32(hy)) ** 2
            glint = np.exp(-d2 * np.float32(0.5 / sig**2))
            # a specular glint is more opaque and very bright: reflected light, not transmitted
            alpha = alpha + (np.float32(0.97) * cov - alpha) * glint * np.float32(0.8)
            colour += (np.float32(peak) * glint)[..., None]
        return win, colour.astype(np.float32), alpha.astype(np.float32)


@dataclass
class Smoke:
    """Wispy volumetric semi-transparency from fractal noise inside a soft envelope."""

    cx: float
    cy: float
    rx: float
    ry: float
    noise: np.ndarray  # small noise image in [-1, 1], sampled around its centre (no mirroring)
    freq: float  # noise px per object px
    density: float
    colour: np.ndarray
    tag: str = "semi_transparent"

    def render(self, ctx: Ctx) -> tuple[Window, np.ndarray, np.ndarray] | None:
        """(window, straight colour, coverage) on the canvas, or None when off-canvas."""
        win = ctx.window(self.cx, self.cy, 1.5 * max(self.rx, self.ry))
        if win.empty:
            return None
        xs, ys = pixel_centres(win)
        x, y = ctx.to_object(xs, ys)
        dx = (x - np.float32(self.cx)) * np.float32(1.0 / self.rx)
        dy = (y - np.float32(self.cy)) * np.float32(1.0 / self.ry)
        env = np.exp(-1.5 * (dx * dx + dy * dy))
        half = np.float32(self.noise.shape[0] / 2)
        f = np.float32(self.freq)
        n = sample_bilinear(
            self.noise, (x - np.float32(self.cx)) * f + half, (y - np.float32(self.cy)) * f + half
        )
        dens = np.clip(n * 1.2 + 0.35, 0.0, None) * env * np.float32(self.density)
        alpha = np.clip(1.0 - np.exp(-dens), 0.0, 0.95)
        alpha = np.where(alpha < 2e-3, 0.0, alpha).astype(np.float32)
        shade = (0.85 + 0.15 * n)[..., None]
        return win, (self.colour * shade).astype(np.float32), alpha


@dataclass
class Strands:
    """Hair, fur or wires: curves sampled every <= STEP_PX and splatted with exact weights.

    Angles along each curve: a saturating bend (gravity), a curl and a smooth random walk;
    positions are their running sum. combine "exp" treats overlapping strands as random
    occluders (alpha = 1 - exp(-density), right for hair); "clip" is for one opaque wire.
    """

    roots: np.ndarray  # (n, 2) object coords
    angle0: np.ndarray  # (n,)
    bend: np.ndarray  # (n,) total bend (rad) approached over bend_len
    bend_len: np.ndarray  # (n,)
    curl_amp: np.ndarray  # (n,)
    curl_freq: np.ndarray  # (n,) rad per px
    curl_phase: np.ndarray  # (n,)
    walk: np.ndarray  # (n, K) per-step curvature increments (angle = their double running sum)
    length: np.ndarray  # (n,) px
    width: np.ndarray  # (n,) px at the root
    taper: float  # fraction of width lost at the tip
    colour: np.ndarray  # (n, 3)
    tip_colour: np.ndarray  # (n, 3)
    sway_amp: np.ndarray  # (n,) rad at the tip, for sequences
    sway_phase: np.ndarray  # (n,)
    combine: str = "exp"
    lanes: int = 1
    tag: str = "hair"

    @property
    def steps(self) -> int:
        return self.walk.shape[1]

    def centrelines(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Sample points (n, K) x, y, tangent angle and the arc fraction s in (0, 1)."""
        k = self.steps
        s = (np.arange(k, dtype=np.float32) + 0.5) / k
        arc = s[None, :] * self.length[:, None]
        ang = (
            self.angle0[:, None]
            + self.bend[:, None] * (1.0 - np.exp(-arc / self.bend_len[:, None]))
            + self.curl_amp[:, None] * np.sin(self.curl_freq[:, None] * arc + self.curl_phase[:, None])
            + np.cumsum(np.cumsum(self.walk, axis=1), axis=1)
        )
        if t:
            ang = ang + (self.sway_amp * np.sin(0.3 * t + self.sway_phase))[:, None] * s[None, :]
        step = (self.length / k)[:, None]
        # midpoint positions of each step: cumulative sum minus half the last step
        dx = step * np.cos(ang)
        dy = step * np.sin(ang)
        x = self.roots[:, 0:1] + np.cumsum(dx, axis=1) - 0.5 * dx
        y = self.roots[:, 1:2] + np.cumsum(dy, axis=1) - 0.5 * dy
        return x.astype(np.float32), y.astype(np.float32), ang.astype(np.float32), np.broadcast_to(s, x.shape)

    def render(self, ctx: Ctx) -> tuple[Window, np.ndarray, np.ndarray] | None:
        """(window, straight colour, coverage) on the canvas, or None when off-canvas."""
        n, k = self.walk.shape
        if n == 0:
            return None
        x, y, ang, s = self.centrelines(ctx.pose.t)
        step = (self.length / k)[:, None].astype(np.float32)
        wid = self.width[:, None] * (1.0 - np.float32(self.taper) * s * s)
        if self.lanes > 1:  # wide wires: parallel lanes <= 0.5 px apart fill the width evenly
            offs = (np.arange(self.lanes, dtype=np.float32) - (self.lanes - 1) / 2) / self.lanes
            nx, ny = -np.sin(ang), np.cos(ang)
            x = (x[None] + offs[:, None, None] * wid[None] * nx[None]).reshape(-1, k)
            y = (y[None] + offs[:, None, None] * wid[None] * ny[None]).reshape(-1, k)
            wts = np.tile(wid * step / self.lanes, (self.lanes, 1))
            s = np.tile(s, (self.lanes, 1))
            col0, col1 = np.tile(self.colour, (self.lanes, 1)), np.tile(self.tip_colour, (self.lanes, 1))
        else:
            wts = wid * step
            col0, col1 = self.colour, self.tip_colour
        ix, iy = ctx.to_image(x, y)
        sf = s.reshape(-1)[:, None]
        vals = (np.repeat(col0, k, axis=0) * (1 - sf) + np.repeat(col1, k, axis=0) * sf).astype(np.float32)
        lo_x, hi_x = float(ix.min()), float(ix.max())
        lo_y, hi_y = float(iy.min()), float(iy.max())
        win = Window(
            max(0, int(np.floor(lo_y)) - 2),
            min(ctx.height, int(np.ceil(hi_y)) + 3),
            max(0, int(np.floor(lo_x)) - 2),
            min(ctx.width, int(np.ceil(hi_x)) + 3),
        )
        if win.empty:
            return None
        wh, ww = win.y1 - win.y0, win.x1 - win.x0
        dens, acc = splat(
            ix.reshape(-1) - np.float32(win.x0),
            iy.reshape(-1) - np.float32(win.y0),
            wts.reshape(-1).astype(np.float32),
            vals,
            wh,
            ww,
        )
        if self.combine == "exp":
            alpha = 1.0 - np.exp(-dens)
        else:
            alpha = np.minimum(dens, 1.0)
        colour = acc / np.maximum(dens, 1e-12)[..., None]
        alpha = np.where(dens > 1e-6, alpha, 0.0).astype(np.float32)
        return win, colour.astype(np.float32), alpha


Layer = Solid | Veil | Smoke | Strands | Branches | Mesh


@dataclass
class Group:
    """Layers that move together; blur applies to the group's premultiplied result."""

    layers: list[Layer]
    pivot: tuple[float, float]
    motion_blur: tuple[float, float] = (0.0, 0.0)  # streak vector in px
    defocus: float = 0.0  # blur sigma in px
    motion: np.ndarray = field(default_factory=lambda: np.zeros(7, np.float32))
    # motion: vx, vy (px/frame), ax, ay (px), freq (rad/frame), phase, rot amp (rad)

    def pose(self, t: float) -> Pose:
        """Smooth drift + wobble + sway rotation; identity at t = 0 (single plates)."""
        vx, vy, ax, ay, f, ph, rot = (float(v) for v in self.motion)

        def wob(tt: float) -> float:
            return float(np.sin(f * tt + ph))

        w = wob(t) - wob(0.0)
        w2 = float(np.sin(0.7 * f * t + 2 * ph) - np.sin(2 * ph))
        return Pose(vx * t + ax * w, vy * t + ay * w2, rot * w, t)

    def render(self, height: int, width: int, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Premultiplied colour (HxWx3) and alpha (HxW) of the group at time t."""
        mx, my = self.motion_blur
        blurred = bool(mx or my or self.defocus)
        # render on a canvas with a margin so blur pulls in what is just outside the frame
        margin = int(np.ceil(0.5 * max(abs(mx), abs(my)) + 3 * self.defocus)) + 2 if blurred else 0
        ch, cw = height + 2 * margin, width + 2 * margin
        pose = self.pose(t)
        ctx = Ctx(ch, cw, Pose(pose.dx + margin, pose.dy + margin, pose.angle, pose.t), self.pivot)
        prem = np.zeros((ch, cw, 3), np.float32)
        alpha = np.zeros((ch, cw), np.float32)
        box = [ch, 0, cw, 0]  # bounds of everything drawn
        for layer in self.layers:
            out = layer.render(ctx)
            if out is None:
                continue
            win, colour, a = out
            sl = win.slices
            keep = 1.0 - a
            prem[sl] *= keep[..., None]
            prem[sl] += colour * a[..., None]
            alpha[sl] *= keep
            alpha[sl] += a
            box = [min(box[0], win.y0), max(box[1], win.y1), min(box[2], win.x0), max(box[3], win.x1)]
        if blurred and box[0] < box[1]:
            y0, y1 = max(0, box[0] - margin), min(ch, box[1] + margin)
            x0, x1 = max(0, box[2] - margin), min(cw, box[3] + margin)
            sub = np.concatenate([prem[y0:y1, x0:x1], alpha[y0:y1, x0:x1, None]], axis=2)
            if mx or my:
                sub = motion_blur(sub, mx, my)
            if self.defocus:
                sub = blur(sub, self.defocus, passes=3)
            prem[y0:y1, x0:x1] = sub[..., :3]
            alpha[y0:y1, x0:x1] = sub[..., 3]
        if margin:
            prem = prem[margin : margin + height, margin : margin + width]
            alpha = alpha[margin : margin + height, margin : margin + width]
        return prem, alpha


# --------------------------------------------------------------------------- sampling

SKIN = np.array(
    [[0.62, 0.42, 0.32], [0.45, 0.28, 0.19], [0.3, 0.17, 0.1], [0.14, 0.07, 0.04], [0.06, 0.03, 0.02]],
    np.float32,
)
HAIR = np.array(
    [
        [0.012, 0.009, 0.007],  # black
        [0.05, 0.028, 0.014],  # dark brown
        [0.12, 0.07, 0.035],  # brown
        [0.38, 0.27, 0.13],  # blond
        [0.55, 0.45, 0.3],  # platinum
        [0.22, 0.06, 0.02],  # red
        [0.3, 0.3, 0.3],  # grey
    ],
    np.float32,
)


def _green_tint(rng: np.random.Generator) -> np.ndarray:
    """A foreground colour close to, but not equal to, a chroma green (the hard case)."""
    return np.array([rng.uniform(0.05, 0.6), rng.uniform(0.7, 1.0), rng.uniform(0.05, 0.6)], np.float32)


def _random_tint(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.25, 1.0, 3).astype(np.float32) * np.float32(rng.uniform(0.4, 1.0))


def _solid_extras(
    rng: np.random.Generator, cx: float, cy: float, size: float, hdr: bool
) -> tuple[tuple[float, float], tuple[float, float, float, float], tuple[float, float, float, float] | None]:
    ang = rng.uniform(0, 2 * np.pi)
    g = rng.uniform(0.0, 0.8) / max(size, 1.0)
    light = (float(g * np.cos(ang)), float(g * np.sin(ang)))
    rim = (0.0, 1.0, 1.0, 1.0)
    if rng.random() < 0.35:  # back light: bright fringe right at the edge, a classic keying trap
        rim = (float(rng.uniform(0.05, 0.5)), float(rng.uniform(1.0, 4.0)), float(rng.uniform(0.8, 1.0)), 1.0)
    hl = None
    if hdr:
        hl = (
            float(cx + rng.uniform(-0.4, 0.4) * size),
            float(cy + rng.uniform(-0.4, 0.4) * size),
            float(rng.uniform(1.0, 0.06 * size + 1.5)),
            float(rng.uniform(1.5, 10.0)),
        )
    return light, rim, hl


def _strands(
    rng: np.random.Generator,
    roots: np.ndarray,
    angle0: np.ndarray,
    length: np.ndarray,
    width: np.ndarray,
    colour: np.ndarray,
    tip_colour: np.ndarray,
    gravity: float,
    curl: float,
    wander: float,
    sway: float,
    combine: str = "exp",
    lanes: int = 1,
    tag: str = "hair",
    taper: float = 0.7,
    budget: float | None = None,
) -> list[Strands]:
    """Random curve parameters; strands are bucketed by length so short ones stay cheap.

    Splitting hair into buckets composites as 1 - exp(-(d1 + d2)), the same coverage as
    one layer, so it changes cost, not the ground truth model.
    """
    if budget is not None:
        keep = _within_budget(rng, length, budget)
        roots, angle0, length, width = roots[keep], angle0[keep], length[keep], width[keep]
        colour, tip_colour = colour[keep], tip_colour[keep]
    order = np.argsort(length, kind="stable")
    n_all = len(roots)
    buckets = [order] if n_all < 64 else np.array_split(order, 3)
    out = []
    for idx in buckets:
        if len(idx):
            out.append(
                _strand_bucket(
                    rng,
                    roots[idx],
                    angle0[idx],
                    length[idx],
                    width[idx],
                    colour[idx],
                    tip_colour[idx],
                    gravity,
                    curl,
                    wander,
                    sway,
                    combine,
                    lanes,
                    tag,
                    taper,
                )
            )
    return out


def _strand_bucket(
    rng: np.random.Generator,
    roots: np.ndarray,
    angle0: np.ndarray,
    length: np.ndarray,
    width: np.ndarray,
    colour: np.ndarray,
    tip_colour: np.ndarray,
    gravity: float,
    curl: float,
    wander: float,
    sway: float,
    combine: str,
    lanes: int,
    tag: str,
    taper: float,
) -> Strands:
    n = len(roots)
    length = np.maximum(length, 1.0)
    k = max(2, int(np.ceil(float(length.max(initial=1.0)) / STEP_PX)))
    down = np.pi / 2
    rel = np.angle(np.exp(1j * (down - angle0)))  # signed turn toward "down"
    # curvature random walk (integrated twice): smooth bends whose total is about `wander` rad
    walk = rng.normal(0, wander * np.sqrt(3.0) / k**1.5, (n, k)).astype(np.float32)
    return Strands(
        roots=roots.astype(np.float32),
        angle0=angle0.astype(np.float32),
        bend=(rel * gravity * rng.uniform(0.5, 1.0, n)).astype(np.float32),
        bend_len=(length * rng.uniform(0.3, 1.0, n) + 1.0).astype(np.float32),
        curl_amp=(curl * rng.uniform(0.3, 1.0, n)).astype(np.float32),
        curl_freq=(rng.uniform(0.03, 0.25, n)).astype(np.float32),
        curl_phase=rng.uniform(0, 2 * np.pi, n).astype(np.float32),
        walk=walk,
        length=length.astype(np.float32),
        width=width.astype(np.float32),
        taper=taper,
        colour=colour.astype(np.float32),
        tip_colour=tip_colour.astype(np.float32),
        sway_amp=(sway * rng.uniform(0.3, 1.0, n)).astype(np.float32),
        sway_phase=rng.uniform(0, 2 * np.pi, n).astype(np.float32),
        combine=combine,
        lanes=lanes,
        tag=tag,
    )


def _hair_colours(
    rng: np.random.Generator, n: int, base: np.ndarray, hdr: bool
) -> tuple[np.ndarray, np.ndarray]:
    var = rng.uniform(0.6, 1.5, (n, 1)) * rng.uniform(0.9, 1.1, (n, 3))
    col = base[None, :] * var
    tip = col * rng.uniform(0.8, 1.6, (n, 1))
    if rng.random() < 0.4:  # back-lit hair: bright tips
        tip = tip + rng.uniform(0.1, 0.5) * rng.uniform(0, 1, (n, 1))
    if hdr:
        glint = rng.random(n) < 0.1
        tip[glint] += rng.uniform(1.0, 4.0)
    return col.astype(np.float32), tip.astype(np.float32)


def _within_budget(rng: np.random.Generator, length: np.ndarray, budget: float) -> np.ndarray:
    """A random subset of strands whose samples fit the budget (all of them when they fit)."""
    total = float(length.sum()) / STEP_PX
    if total <= budget:
        return np.ones(len(length), bool)
    return rng.random(len(length)) < budget / total


def _head_hair(
    rng: np.random.Generator,
    hx: float,
    hy: float,
    ra: float,
    rb: float,
    scale: float,
    hdr: bool,
    budget: float,
) -> tuple[list[Layer], list[Layer]]:
    """Hair behind the head, a cap over its top, then strands: combed ones that follow the
    outline and fall with gravity, and flyaways that escape it. Returns (behind, in front)."""
    base = HAIR[rng.integers(len(HAIR))] * np.float32(rng.uniform(0.7, 1.3))
    long_hair = rng.random() < 0.4
    face = rng.random() < 0.75  # otherwise we see the back of the head
    tex = random_texture(
        rng,
        tint=base,
        saturation=0.0,
        contrast=float(rng.uniform(0.3, 0.8)),
        source=("grass", "gravel", "brick")[int(rng.integers(3))],
        aspect=float(rng.uniform(0.08, 0.25)),  # streaks running down the head
        angle=float(rng.normal(0, 0.3)),
    )
    tex = dataclasses.replace(tex, scale=tex.scale * 2.0)
    soft = float(rng.uniform(1.0, 3.0))
    ex, ey = ra * rng.uniform(1.08, 1.25), rb * rng.uniform(1.0, 1.1)
    cy = hy - 0.05 * rb
    back = [Prim("ellipse", hx, cy, ex, ey)]
    drop = rb * rng.uniform(1.3, 2.6)
    if long_hair:
        back.append(Prim("box", hx, hy + 0.35 * drop, ex * rng.uniform(0.9, 1.1), drop * 0.6, r=ra * 0.8))
    if face:
        cap = Prim("ellipse", hx, hy - 0.45 * rb, ra * rng.uniform(1.0, 1.08), rb * rng.uniform(0.6, 0.72))
    else:
        cap = Prim("ellipse", hx, hy - 0.08 * rb, ra * 1.04, rb * 1.03)
    behind: list[Layer] = [Solid(back, [tex] * len(back), softness=soft, blend=ra * 0.3, tag="hair")]
    front: list[Layer] = [Solid([cap], [tex], softness=soft, tag="hair")]

    n = int(rng.uniform(150, 500) * scale * (1.5 if long_hair else 1.0))
    n = min(n, 3000)
    th = rng.uniform(-np.pi - 0.4, 0.4, n)
    mr = rng.uniform(0.85, 1.0, n)
    roots = np.stack([hx + ex * mr * np.cos(th), cy + ey * mr * np.sin(th)], axis=1)
    side = np.where(np.sin(th + np.pi / 2) > np.sin(th - np.pi / 2), 1.0, -1.0)  # tangent pointing down
    combed = rng.random(n) < rng.uniform(0.5, 0.9)
    tilt = rng.uniform(0.05, 0.5, n)
    angle0 = np.where(combed, th + side * (np.pi / 2 - tilt), th + rng.normal(0, 0.5, n))
    reach = rb * (rng.uniform(0.4, 1.0) + (1.5 if long_hair else 0.0))
    length = np.where(combed, rng.uniform(0.2, 1.0, n) * reach, rng.uniform(0.1, 0.6, n) ** 1.5 * rb) + 3
    width = np.exp(rng.uniform(np.log(0.12), np.log(0.7))) * rng.uniform(0.6, 1.4, n)
    col, tip = _hair_colours(rng, n, base, hdr)
    curl = float(rng.uniform(0.0, 1.0) ** 2)
    keep = _within_budget(rng, length, budget)
    combed &= keep
    for sel, gravity, wander in (
        (combed, rng.uniform(0.6, 1.0), 0.2),
        (keep & ~combed, rng.uniform(0.0, 0.6), 0.6),
    ):
        if sel.any():
            front.extend(
                _strands(
                    rng,
                    roots[sel],
                    angle0[sel],
                    length[sel],
                    width[sel],
                    col[sel],
                    tip[sel],
                    gravity=float(gravity),
                    curl=curl,
                    wander=float(rng.uniform(0.5, 1.5) * wander),
                    sway=float(rng.uniform(0.05, 0.3)),
                )
            )
    return behind, front


def _loose_hair(
    rng: np.random.Generator, h: int, w: int, scale: float, hdr: bool, green: bool
) -> list[Strands]:
    """Hair without a visible head: a lock from above frame, a ponytail, or flyaways."""
    base = HAIR[rng.integers(len(HAIR))] * np.float32(rng.uniform(0.7, 1.3))
    if green:  # dyed hair, or green-tinted fibres: hard to tell from the screen
        base = _green_tint(rng) * np.float32(rng.uniform(0.1, 0.4))
    style = ["lock", "ponytail", "flyaway"][int(rng.integers(3))]
    if style == "flyaway":
        n = int(rng.uniform(15, 80) * scale)
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        roots = np.stack([cx + rng.normal(0, 0.2 * w, n), cy + rng.normal(0, 0.2 * h, n)], axis=1)
        angle0 = rng.uniform(0, 2 * np.pi, n)
        length = rng.uniform(0.1, 0.5, n) * min(h, w)
        gravity, curl = 0.2, float(rng.uniform(0.1, 0.8))
    else:
        n = int(rng.uniform(100, 350) * scale)
        cx = rng.uniform(0.2, 0.8) * w
        spread = rng.uniform(5, 40) * scale if style == "lock" else rng.uniform(2, 8) * scale
        roots = np.stack(
            [cx + rng.normal(0, spread, n), rng.uniform(-0.1, 0.25) * h + rng.normal(0, 3, n)], axis=1
        )
        angle0 = np.pi / 2 + rng.normal(0, 0.25 if style == "lock" else 0.6, n)
        length = rng.uniform(0.4, 1.0, n) * rng.uniform(0.4, 0.9) * h
        gravity, curl = 0.6, float(rng.uniform(0.0, 0.8))
    width = np.exp(rng.uniform(np.log(0.12), np.log(0.7))) * rng.uniform(0.6, 1.4, n)
    col, tip = _hair_colours(rng, n, base, hdr)
    return _strands(
        rng,
        roots,
        angle0,
        length,
        width,
        col,
        tip,
        gravity,
        curl,
        float(rng.uniform(0.2, 0.9)),
        0.2,
        budget=POINTS_PER_PX * h * w,
    )


def _person(
    rng: np.random.Generator, h: int, w: int, scale: float, large: bool, green: bool, hdr: bool, hair: bool
) -> tuple[list[Layer], tuple[float, float]]:
    """Head and shoulders entering from the bottom of frame."""
    zoom = rng.uniform(1.8, 3.2) if large else rng.uniform(0.8, 1.8)
    ra = 28 * scale * zoom * rng.uniform(0.85, 1.15)
    rb = ra * rng.uniform(1.15, 1.4)
    hx = rng.uniform(0.25, 0.75) * w
    hy = h - rng.uniform(1.6, 3.2) * rb if not large else h * rng.uniform(0.3, 0.55)
    shoulder_y = hy + rb * rng.uniform(1.3, 1.7)
    torso = Prim(
        "box",
        hx + rng.normal(0, 0.2 * ra),
        shoulder_y + 2.5 * rb,
        ra * rng.uniform(2.0, 3.2),
        2.5 * rb,
        angle=float(rng.normal(0, 0.05)),
        r=ra * rng.uniform(0.5, 1.2),
    )
    neck = Prim("box", hx, hy + rb, ra * rng.uniform(0.45, 0.65), rb * 0.6, r=ra * 0.2)
    head = Prim("ellipse", hx, hy, ra, rb, angle=float(rng.normal(0, 0.12)))
    skin = SKIN[rng.integers(len(SKIN))] * np.float32(rng.uniform(0.8, 1.2))
    pore = ("moon", "gravel", "grass")[int(rng.integers(3))]  # fine, even detail (no photo objects)
    skin_tex = random_texture(
        rng, tint=skin, saturation=0.0, contrast=float(rng.uniform(0.1, 0.3)), source=pore
    )
    cloth_tint = _green_tint(rng) if green else _random_tint(rng)
    cloth_tex = random_texture(rng, tint=cloth_tint, saturation=0.3 if green else None)
    light, rim, hl = _solid_extras(rng, hx, hy, ra, hdr)
    body = Solid(
        [torso, neck, head],
        [cloth_tex, skin_tex, skin_tex],
        softness=float(rng.choice([1.0, 1.0, 1.0, rng.uniform(1.5, 4.0)])),
        blend=float(ra * 0.25),
        light_dir=light,
        rim=rim,
        highlight=hl,
    )
    layers: list[Layer] = [body]
    if hair:
        behind, front = _head_hair(rng, hx, hy, ra, rb, scale * zoom, hdr, POINTS_PER_PX * h * w)
        layers = behind + layers + front
    return layers, (hx, hy)


def _props(
    rng: np.random.Generator, h: int, w: int, scale: float, large: bool, green: bool, hdr: bool
) -> tuple[list[Layer], tuple[float, float]]:
    """Hard- and soft-edged textured objects: boxes, rounded shapes, blobs, a pole."""
    layers: list[Layer] = []
    n = 1 if large else int(rng.integers(1, 4))
    cxs = []
    for i in range(n):
        size = (rng.uniform(0.35, 0.6) if large else rng.uniform(0.08, 0.3)) * min(h, w)
        cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
        if large:
            cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6)
        cxs.append((cx, cy))
        shape = int(rng.integers(4))
        if shape == 0:
            prim = Prim(
                "box",
                cx,
                cy,
                size,
                size * rng.uniform(0.3, 1.2),
                angle=float(rng.uniform(0, np.pi)),
                r=float(size * rng.choice([0.0, 0.05, 0.3])),
            )
        elif shape == 1:
            prim = Prim(
                "ellipse", cx, cy, size, size * rng.uniform(0.4, 1.0), angle=float(rng.uniform(0, np.pi))
            )
        elif shape == 2:
            prim = random_blob(rng, cx, cy, size, float(rng.uniform(0.2, 0.8)))
        else:  # a pole/stand entering from an edge
            prim = Prim(
                "box", cx, h * 0.75, size * rng.uniform(0.05, 0.15), h * 0.5, angle=float(rng.normal(0, 0.2))
            )
        tint = _green_tint(rng) if (green and i == 0) else _random_tint(rng)
        tex = random_texture(rng, tint=tint, saturation=0.3 if (green and i == 0) else None)
        light, rim, hl = _solid_extras(rng, cx, cy, size, hdr and i == 0)
        soft = 1.0 if rng.random() < 0.7 else float(rng.uniform(1.5, 10.0) * scale)
        layers.append(Solid([prim], [tex], softness=soft, light_dir=light, rim=rim, highlight=hl))
    return layers, (float(np.mean([c[0] for c in cxs])), float(np.mean([c[1] for c in cxs])))


def _furry(rng: np.random.Generator, h: int, w: int, scale: float, large: bool, green: bool) -> list[Layer]:
    """A furry blob (toy, collar, animal) with short strands along its outline."""
    size = (rng.uniform(0.3, 0.5) if large else rng.uniform(0.1, 0.28)) * min(h, w)
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.25, 0.85) * h
    host = random_blob(rng, cx, cy, size, float(rng.uniform(0.1, 0.5)))
    tint = _green_tint(rng) if green else _random_tint(rng)
    tex = random_texture(rng, tint=tint, saturation=float(rng.uniform(0.0, 0.6)))
    light, rim, _ = _solid_extras(rng, cx, cy, size, False)
    layers: list[Layer] = [
        Solid([host], [tex], softness=float(rng.uniform(1.0, 2.5)), light_dir=light, rim=rim, tag="fur")
    ]
    perim = 2 * np.pi * size
    n = int(perim * rng.uniform(1.5, 4.0))
    th = rng.uniform(0, 2 * np.pi, n)
    assert host.harmonics is not None
    k, a, ph = host.harmonics[:, 0:1], host.harmonics[:, 1:2], host.harmonics[:, 2:3]
    r = size * (1 + (a * np.cos(k * th[None] + ph)).sum(axis=0)) * rng.uniform(0.85, 0.98, n)
    roots = np.stack([cx + r * np.cos(th), cy + r * np.sin(th)], axis=1)
    base = render_texture(tex, roots[:, 0].astype(np.float32), roots[:, 1].astype(np.float32))
    col = base * rng.uniform(0.7, 1.2, (n, 1))
    tip = col * rng.uniform(0.8, 1.5, (n, 1))
    length = rng.uniform(2, 10) * scale * rng.uniform(0.5, 1.5, n)
    width = np.exp(rng.uniform(np.log(0.15), np.log(0.8))) * rng.uniform(0.6, 1.4, n)
    layers.extend(
        _strands(
            rng,
            roots,
            th + rng.normal(0, 0.5, n),
            length,
            width,
            col,
            tip,
            gravity=float(rng.uniform(0.0, 0.4)),
            curl=float(rng.uniform(0.0, 0.5)),
            wander=0.3,
            sway=0.1,
            tag="fur",
            budget=0.5 * POINTS_PER_PX * h * w,
        )
    )
    return layers


def _semi(rng: np.random.Generator, h: int, w: int, scale: float, green: bool, hdr: bool) -> Layer:
    """Cloth veil, glass or smoke."""
    style = ["cloth", "glass", "smoke"][int(rng.integers(3))]
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    size = rng.uniform(0.12, 0.4) * min(h, w)
    if style == "smoke":
        noise = fractal_noise(rng, 96, 96, 3, 4)
        col = np.full(3, rng.uniform(0.2, 0.9), np.float32) * rng.uniform(0.9, 1.1, 3).astype(np.float32)
        if green:
            col = col * _green_tint(rng)
        ry = size * rng.uniform(0.5, 1.5)
        freq = min(float(rng.uniform(0.1, 0.4) / scale), 30.0 / (1.5 * max(size, ry)))
        return Smoke(cx, cy, size, ry, noise, freq, float(rng.uniform(0.5, 3.0)), col)
    if style == "cloth":
        prim = Prim(
            "box",
            cx,
            cy,
            size * rng.uniform(0.5, 1.2),
            size * rng.uniform(0.5, 1.5),
            angle=float(rng.normal(0, 0.3)),
            r=float(size * rng.uniform(0, 0.3)),
        )
        tint = _green_tint(rng) if green else _random_tint(rng) * np.float32(1.3)
        tex = (
            random_texture(rng, tint=tint, contrast=float(rng.uniform(0.1, 0.6)))
            if rng.random() < 0.5
            else None
        )
        return Veil(
            prim,
            tint,
            float(rng.uniform(0.1, 0.75)),
            "cloth",
            float(rng.uniform(0.03, 0.25) / scale),
            float(rng.uniform(0, 6.3)),
            float(rng.uniform(0.0, 0.3)),
            texture=tex,
        )
    prim = (
        random_blob(rng, cx, cy, size * 0.7, float(rng.uniform(0.0, 0.3)))
        if rng.random() < 0.5
        else Prim(
            "box",
            cx,
            cy,
            size * 0.4,
            size * rng.uniform(0.6, 1.2),
            angle=float(rng.normal(0, 0.2)),
            r=size * 0.2,
        )
    )
    tint = (_green_tint(rng) * 0.6 if green else rng.uniform(0.5, 1.0, 3) * rng.uniform(0.3, 0.9)).astype(
        np.float32
    )
    hl = None
    if hdr or rng.random() < 0.4:
        hl = (
            cx + rng.normal(0, 0.2 * size),
            cy + rng.normal(0, 0.3 * size),
            float(rng.uniform(1.0, 5.0) * scale),
            float(rng.uniform(1.5, 8.0) if hdr else rng.uniform(0.3, 0.9)),
        )
    return Veil(
        prim,
        tint,
        float(rng.uniform(0.03, 0.3)),
        "glass",
        rim_width=float(rng.uniform(1.0, 6.0) * scale),
        highlight=hl,
    )


def _wire(rng: np.random.Generator, h: int, w: int, scale: float, green: bool) -> Strands:
    """A wire, string or rod crossing the frame, sometimes sagging; 0.3-3 px wide."""
    side = int(rng.integers(3))
    if side == 0:  # hangs from the top
        root = np.array([[rng.uniform(0.1, 0.9) * w, -2.0]])
        ang = np.pi / 2 + rng.normal(0, 0.3)
        length = rng.uniform(0.5, 1.2) * h
    else:  # crosses from the left or right edge
        left = side == 1
        root = np.array([[-2.0 if left else w + 2.0, rng.uniform(0.1, 0.9) * h]])
        ang = (0.0 if left else np.pi) + rng.normal(0, 0.4)
        length = rng.uniform(0.6, 1.4) * w
    width = float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))) * max(1.0, 0.7 * scale))
    palette = [[0.01, 0.01, 0.01], [0.3, 0.3, 0.3], [0.7, 0.7, 0.65], [0.5, 0.1, 0.05], [0.05, 0.1, 0.4]]
    col = np.array([_green_tint(rng) * 0.5 if green else palette[rng.integers(len(palette))]], np.float32)
    tip = col * np.float32(rng.uniform(0.8, 1.2))
    lanes = max(1, int(np.ceil(width / 0.45)))
    return _strands(
        rng,
        root,
        np.array([ang]),
        np.array([length]),
        np.array([width]),
        col,
        tip,
        gravity=float(rng.uniform(0.0, 0.3)),
        curl=0.0,
        wander=float(rng.uniform(0.0, 0.3)),
        sway=0.05,
        combine="clip",
        lanes=lanes,
        tag="thin",
        taper=0.0,
    )[0]


def _random_motion(rng: np.random.Generator, scale: float) -> np.ndarray:
    return np.array(
        [
            rng.normal(0, 1.5) * scale,
            rng.normal(0, 0.5) * scale,
            rng.uniform(0, 10) * scale,
            rng.uniform(0, 4) * scale,
            rng.uniform(0.2, 0.6),
            rng.uniform(0, 2 * np.pi),
            rng.normal(0, 0.03),
        ],
        np.float32,
    )


def sample_groups(
    rng: np.random.Generator, height: int, width: int, elements: tuple[str, ...], modifiers: tuple[str, ...]
) -> tuple[list[Group], tuple[str, ...]]:
    """Build the subject (back to front) for the requested element kinds and modifiers.

    Returns the groups and the tags of what was actually drawn.
    """
    h, w = height, width
    scale = min(h, w) / 256.0
    large = "large" in modifiers
    green = "greenish_fg" in modifiers
    hdr = "hdr" in modifiers
    tags: list[str] = []
    groups: list[Group] = []

    main: list[Layer] = []
    pivot = (w / 2, h / 2)
    person = ("hair" in elements and rng.random() < 0.75) or ("solid" in elements and rng.random() < 0.5)
    if person and ("solid" in elements or "hair" in elements):
        layers, pivot = _person(rng, h, w, scale, large, green, hdr, "hair" in elements)
        main += layers
        tags += ["solid", "person"] + (["hair"] if "hair" in elements else [])
        green = hdr = False  # used up by the person
    else:
        if "solid" in elements:
            layers, pivot = _props(rng, h, w, scale, large, green, hdr)
            main += layers
            tags.append("solid")
            green = hdr = False
        if "hair" in elements:
            main.extend(_loose_hair(rng, h, w, scale, hdr, green))
            tags.append("hair")
            hdr = green = False
    if main:
        groups.append(Group(main, pivot, motion=_random_motion(rng, scale)))
    if "fur" in elements:
        groups.append(
            Group(_furry(rng, h, w, scale, large, green), (w / 2, h / 2), motion=_random_motion(rng, scale))
        )
        tags += ["fur", "solid"]
        green = False
    if "semi_transparent" in elements:
        layer = _semi(rng, h, w, scale, green, hdr)
        groups.append(Group([layer], (w / 2, h / 2), motion=_random_motion(rng, scale)))
        tags.append("semi_transparent")
        green = False
        hdr = hdr and not (isinstance(layer, Veil) and layer.highlight is not None)
    if "thin" in elements:
        wires = [_wire(rng, h, w, scale, green) for _ in range(int(rng.integers(1, 4)))]
        groups.append(Group(list(wires), (w / 2, h / 2), motion=_random_motion(rng, scale) * np.float32(0.3)))
        tags.append("thin")
        green = False
    if "open" in elements:
        motion = _random_motion(rng, scale) * np.float32(0.5)
        groups.append(Group(sample_open(rng, h, w, scale, green), (w / 2, h / 2), motion=motion))
        tags.append("open")
        green = False
    if "greenish_fg" in modifiers and not green:
        tags.append("greenish_fg")
    if "hdr" in modifiers and not hdr and "hdr" not in tags:
        tags.append("hdr")
    if large and groups:
        tags.append("large")
    if groups and "motion_blur" in modifiers:
        targets = groups if rng.random() < 0.4 else [groups[int(rng.integers(len(groups)))]]
        for g in targets:
            length = rng.uniform(3, 30) * scale
            ang = rng.uniform(0, np.pi)
            g.motion_blur = (float(length * np.cos(ang)), float(length * np.sin(ang)))
        tags.append("motion_blur")
    if groups and "defocus" in modifiers:
        targets = groups if rng.random() < 0.5 else [groups[int(rng.integers(len(groups)))]]
        for g in targets:
            g.defocus = float(rng.uniform(0.8, 5.0) * scale)
        tags.append("defocus")
    return groups, tuple(dict.fromkeys(tags))
