"""Subject samplers, one kind each: a person, props, a furry object, a veil/glass/smoke, a wire.

Each draws its parameters from the scene's RNG in a fixed order (the data set depends on it)
and returns layers in object coordinates; foreground.sample_groups puts them into groups.
"""

from __future__ import annotations

import numpy as np

from .geometry import Prim, random_blob
from .hair import sample_head_hair
from .layers import Layer, Smoke, Solid, Veil
from .palette import SKIN, green_tint, random_tint
from .raster import fractal_noise
from .strands import POINTS_PER_PX, StrandParams, Strands, StrandSet, sample_strands
from .textures import LUMA, TextureSpec, random_texture, render_texture


def solid_extras(
    rng: np.random.Generator, cx: float, cy: float, size: float, hdr: bool
) -> tuple[tuple[float, float], tuple[float, float, float, float], tuple[float, float, float, float] | None]:
    """A solid's lighting (Solid.light_dir, .rim, .highlight): shading, sometimes a back-light rim,
    and an HDR highlight when asked for."""
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


def light_check_cloth(rng: np.random.Generator, screen_colour: np.ndarray) -> TextureSpec:
    """Light checked shirting that has taken the screen's bounce: near-white ground, thin lines,
    2-15% of its colour toward the screen's hue. The ground truth keeps it opaque; a keyer reading
    the tint as screen showing through punches holes between the lines."""
    hue = screen_colour / max(float(screen_colour @ LUMA), 1e-6)
    bounce = rng.uniform(0.02, 0.15)
    tint = rng.uniform(0.35, 0.8) * ((1.0 - bounce) + bounce * hue)
    return random_texture(
        rng,
        tint=tint.astype(np.float32),
        saturation=float(rng.uniform(0.2, 0.8)),
        contrast=float(rng.uniform(0.5, 1.0)),
        source="check",
    )


def sample_person(
    rng: np.random.Generator,
    h: int,
    w: int,
    scale: float,
    large: bool,
    green: bool,
    hdr: bool,
    hair: bool,
    light_check: float = 0.0,
    screen_colour: np.ndarray | None = None,
) -> tuple[list[Layer], tuple[float, float]]:
    """Head and shoulders entering from the bottom of frame; a light_check share of them wear
    light_check_cloth (no draw when 0, so the default data set is unchanged)."""
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
    if light_check > 0.0 and screen_colour is not None and rng.random() < light_check:
        cloth_tex = light_check_cloth(rng, screen_colour)
    else:
        cloth_tint = green_tint(rng) if green else random_tint(rng)
        cloth_tex = random_texture(rng, tint=cloth_tint, saturation=0.3 if green else None)
    light, rim, hl = solid_extras(rng, hx, hy, ra, hdr)
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
        behind, front = sample_head_hair(rng, hx, hy, ra, rb, scale * zoom, hdr, POINTS_PER_PX * h * w)
        layers = behind + layers + front
    return layers, (hx, hy)


def sample_props(
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
        tint = green_tint(rng) if (green and i == 0) else random_tint(rng)
        tex = random_texture(rng, tint=tint, saturation=0.3 if (green and i == 0) else None)
        light, rim, hl = solid_extras(rng, cx, cy, size, hdr and i == 0)
        soft = 1.0 if rng.random() < 0.7 else float(rng.uniform(1.5, 10.0) * scale)
        layers.append(Solid([prim], [tex], softness=soft, light_dir=light, rim=rim, highlight=hl))
    return layers, (float(np.mean([c[0] for c in cxs])), float(np.mean([c[1] for c in cxs])))


def sample_furry(
    rng: np.random.Generator, h: int, w: int, scale: float, large: bool, green: bool
) -> list[Layer]:
    """A furry blob (toy, collar, animal) with short strands along its outline."""
    size = (rng.uniform(0.3, 0.5) if large else rng.uniform(0.1, 0.28)) * min(h, w)
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.25, 0.85) * h
    host = random_blob(rng, cx, cy, size, float(rng.uniform(0.1, 0.5)))
    tint = green_tint(rng) if green else random_tint(rng)
    tex = random_texture(rng, tint=tint, saturation=float(rng.uniform(0.0, 0.6)))
    light, rim, _ = solid_extras(rng, cx, cy, size, False)
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
    strands = StrandSet(roots, th + rng.normal(0, 0.5, n), length, width, col, tip)
    params = StrandParams(
        gravity=float(rng.uniform(0.0, 0.4)),
        curl=float(rng.uniform(0.0, 0.5)),
        wander=0.3,
        sway=0.1,
        tag="fur",
    )
    layers.extend(sample_strands(rng, strands, params, budget=0.5 * POINTS_PER_PX * h * w))
    return layers


def sample_semi(rng: np.random.Generator, h: int, w: int, scale: float, green: bool, hdr: bool) -> Layer:
    """Cloth veil, glass or smoke."""
    style = ["cloth", "glass", "smoke"][int(rng.integers(3))]
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    size = rng.uniform(0.12, 0.4) * min(h, w)
    if style == "smoke":
        noise = fractal_noise(rng, 96, 96, 3, 4)
        col = np.full(3, rng.uniform(0.2, 0.9), np.float32) * rng.uniform(0.9, 1.1, 3).astype(np.float32)
        if green:
            col = col * green_tint(rng)
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
        tint = green_tint(rng) if green else random_tint(rng) * np.float32(1.3)
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
    tint = (green_tint(rng) * 0.6 if green else rng.uniform(0.5, 1.0, 3) * rng.uniform(0.3, 0.9)).astype(
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


def sample_wire(rng: np.random.Generator, h: int, w: int, scale: float, green: bool) -> Strands:
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
    col = np.array([green_tint(rng) * 0.5 if green else palette[rng.integers(len(palette))]], np.float32)
    tip = col * np.float32(rng.uniform(0.8, 1.2))
    lanes = max(1, int(np.ceil(width / 0.45)))
    strands = StrandSet(root, np.array([ang]), np.array([length]), np.array([width]), col, tip)
    params = StrandParams(
        gravity=float(rng.uniform(0.0, 0.3)),
        curl=0.0,
        wander=float(rng.uniform(0.0, 0.3)),
        sway=0.05,
        combine="clip",
        lanes=lanes,
        tag="thin",
        taper=0.0,
    )
    return sample_strands(rng, strands, params)[0]
