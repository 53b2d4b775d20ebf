"""Hair, fur and wires: the Strands layer and how bundles of strands are sampled.

A bundle is drawn from per-strand data (StrandSet: roots, start angles, sizes, colours) and
the parameters the whole bundle shares (StrandParams: gravity, curl, wander, sway, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import Ctx
from .raster import Window, splat

STEP_PX = 0.6  # max spacing of strand samples: the tent splat ripples < ~6% at this spacing
POINTS_PER_PX = 0.6  # strand sample budget per frame pixel, keeps big hairdos within the time budget


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


# --------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class StrandParams:
    """What every strand of a bundle shares; the per-strand values are drawn around these."""

    gravity: float  # share of the turn toward "down" the strands bend by
    curl: float  # curl amplitude (rad)
    wander: float  # rough total of the random bends along a strand (rad)
    sway: float  # tip sway amplitude in sequences (rad)
    combine: str = "exp"  # "exp" for hair (random occluders), "clip" for one opaque wire
    lanes: int = 1  # parallel lanes that fill a wide wire
    tag: str = "hair"
    taper: float = 0.7  # fraction of the width lost at the tip


@dataclass(frozen=True)
class StrandSet:
    """Per-strand roots (n, 2), start angles, lengths, widths (n,) and colours (n, 3)."""

    roots: np.ndarray
    angle0: np.ndarray
    length: np.ndarray
    width: np.ndarray
    colour: np.ndarray
    tip_colour: np.ndarray

    def take(self, idx: np.ndarray) -> StrandSet:
        """The strands picked by a boolean mask or an index array, in that order."""
        return StrandSet(
            self.roots[idx],
            self.angle0[idx],
            self.length[idx],
            self.width[idx],
            self.colour[idx],
            self.tip_colour[idx],
        )


def sample_strands(
    rng: np.random.Generator, strands: StrandSet, params: StrandParams, budget: float | None = None
) -> list[Strands]:
    """Random curve parameters; strands are bucketed by length so short ones stay cheap.

    Splitting hair into buckets composites as 1 - exp(-(d1 + d2)), the same coverage as
    one layer, so it changes cost, not the ground truth model. With a budget (samples),
    a random subset that fits it is kept.
    """
    if budget is not None:
        strands = strands.take(within_budget(rng, strands.length, budget))
    order = np.argsort(strands.length, kind="stable")
    n_all = len(strands.roots)
    buckets = [order] if n_all < 64 else np.array_split(order, 3)
    return [_strand_bucket(rng, strands.take(idx), params) for idx in buckets if len(idx)]


def _strand_bucket(rng: np.random.Generator, strands: StrandSet, params: StrandParams) -> Strands:
    """One Strands layer: per-strand bend, curl, random walk and sway drawn around `params`."""
    n = len(strands.roots)
    length = np.maximum(strands.length, 1.0)
    k = max(2, int(np.ceil(float(length.max(initial=1.0)) / STEP_PX)))
    down = np.pi / 2
    rel = np.angle(np.exp(1j * (down - strands.angle0)))  # signed turn toward "down"
    # curvature random walk (integrated twice): smooth bends whose total is about `wander` rad
    walk = rng.normal(0, params.wander * np.sqrt(3.0) / k**1.5, (n, k)).astype(np.float32)
    return Strands(
        roots=strands.roots.astype(np.float32),
        angle0=strands.angle0.astype(np.float32),
        bend=(rel * params.gravity * rng.uniform(0.5, 1.0, n)).astype(np.float32),
        bend_len=(length * rng.uniform(0.3, 1.0, n) + 1.0).astype(np.float32),
        curl_amp=(params.curl * rng.uniform(0.3, 1.0, n)).astype(np.float32),
        curl_freq=(rng.uniform(0.03, 0.25, n)).astype(np.float32),
        curl_phase=rng.uniform(0, 2 * np.pi, n).astype(np.float32),
        walk=walk,
        length=length.astype(np.float32),
        width=strands.width.astype(np.float32),
        taper=params.taper,
        colour=strands.colour.astype(np.float32),
        tip_colour=strands.tip_colour.astype(np.float32),
        sway_amp=(params.sway * rng.uniform(0.3, 1.0, n)).astype(np.float32),
        sway_phase=rng.uniform(0, 2 * np.pi, n).astype(np.float32),
        combine=params.combine,
        lanes=params.lanes,
        tag=params.tag,
    )


def within_budget(rng: np.random.Generator, length: np.ndarray, budget: float) -> np.ndarray:
    """A random subset of strands whose samples fit the budget (all of them when they fit)."""
    total = float(length.sum()) / STEP_PX
    if total <= budget:
        return np.ones(len(length), bool)
    return rng.random(len(length)) < budget / total
