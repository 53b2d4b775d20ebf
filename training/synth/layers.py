"""The foreground layers with a shape (solids, veils, smoke) and the group that composites layers.

A layer returns straight colour and coverage; groups composite layers with the over operator
in premultiplied form and blur premultiplied colour and alpha together (motion blur, defocus),
which keeps the foreground colour F = P / alpha and the alpha exact for the compositing equation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import Ctx, Pose, Prim, prims_bounds
from .open_structures import Branches, Mesh
from .raster import Window, blur, coverage, motion_blur, pixel_centres, smooth_min
from .strands import Strands
from .textures import TextureSpec, render_texture, sample_bilinear


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
        cx, cy, rad = prims_bounds(self.parts)
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


Layer = Solid | Veil | Smoke | Strands | Branches | Mesh  # what a Group composites


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
