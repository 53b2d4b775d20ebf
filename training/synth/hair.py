"""Hairdos: hair on a head (a textured mass plus combed strands and flyaways) and loose hair."""

from __future__ import annotations

import dataclasses

import numpy as np

from .geometry import Prim
from .layers import Layer, Solid
from .palette import HAIR, green_tint
from .strands import POINTS_PER_PX, StrandParams, Strands, StrandSet, sample_strands, within_budget
from .textures import random_texture


def hair_colours(
    rng: np.random.Generator, n: int, base: np.ndarray, hdr: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Root and tip colours of n strands around a base colour; sometimes back-lit, with HDR glints."""
    var = rng.uniform(0.6, 1.5, (n, 1)) * rng.uniform(0.9, 1.1, (n, 3))
    col = base[None, :] * var
    tip = col * rng.uniform(0.8, 1.6, (n, 1))
    if rng.random() < 0.4:  # back-lit hair: bright tips
        tip = tip + rng.uniform(0.1, 0.5) * rng.uniform(0, 1, (n, 1))
    if hdr:
        glint = rng.random(n) < 0.1
        tip[glint] += rng.uniform(1.0, 4.0)
    return col.astype(np.float32), tip.astype(np.float32)


def sample_head_hair(
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
    col, tip = hair_colours(rng, n, base, hdr)
    curl = float(rng.uniform(0.0, 1.0) ** 2)
    keep = within_budget(rng, length, budget)
    combed &= keep
    strands = StrandSet(roots, angle0, length, width, col, tip)
    for sel, gravity, wander in (
        (combed, rng.uniform(0.6, 1.0), 0.2),
        (keep & ~combed, rng.uniform(0.0, 0.6), 0.6),
    ):
        if sel.any():
            params = StrandParams(
                gravity=float(gravity),
                curl=curl,
                wander=float(rng.uniform(0.5, 1.5) * wander),
                sway=float(rng.uniform(0.05, 0.3)),
            )
            front.extend(sample_strands(rng, strands.take(sel), params))
    return behind, front


def sample_loose_hair(
    rng: np.random.Generator, h: int, w: int, scale: float, hdr: bool, green: bool
) -> list[Strands]:
    """Hair without a visible head: a lock from above frame, a ponytail, or flyaways."""
    base = HAIR[rng.integers(len(HAIR))] * np.float32(rng.uniform(0.7, 1.3))
    if green:  # dyed hair, or green-tinted fibres: hard to tell from the screen
        base = green_tint(rng) * np.float32(rng.uniform(0.1, 0.4))
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
    col, tip = hair_colours(rng, n, base, hdr)
    strands = StrandSet(roots, angle0, length, width, col, tip)
    params = StrandParams(gravity, curl, float(rng.uniform(0.2, 0.9)), 0.2)
    return sample_strands(rng, strands, params, budget=POINTS_PER_PX * h * w)
