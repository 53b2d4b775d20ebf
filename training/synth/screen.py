"""Clean green screens: colour, uneven lighting, wrinkles, seams, floor and markers.

A real screen is never one colour. The keyer has to tell a wrinkle shadow, a seam or a
tracking marker (all background, alpha 0) from a dark subject edge, and an unevenly lit
screen from green spill. Everything drawn here is part of the clean background B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .raster import Window, coverage, pixel_centres, sd_round_box, window_around

SCREEN_TONES = ("dark_screen", "bright_screen")
BLUE_SCREEN_SHARE = 0.25
FOLD_DEPTH = (0.02, 0.12)  # the wrinkles' amplitude range (a share of the light) unless told


@dataclass
class Screen:
    """The rendered clean screen (HxWx3 linear), its nominal colour and what it contains."""

    image: np.ndarray
    colour: np.ndarray
    tags: tuple[str, ...]
    marker_cover: np.ndarray | None = None  # HxW coverage of tracking markers (for tests/analysis)


def sample_screen_colour(rng: np.random.Generator, tone: str | None = None) -> tuple[np.ndarray, str | None]:
    """A chroma green (a quarter of the time a chroma blue) in linear light; sometimes under- or over-exposed.

    Blue screens are darker and less saturated than green ones in practice (blue light is
    what cameras record worst), hence their lower ranges.
    """
    g = rng.uniform(0.3, 0.7)
    r = rng.uniform(0.01, 0.2)
    b = rng.uniform(0.03, 0.22)
    colour = np.array([r, g, b], np.float32)
    if rng.random() < BLUE_SCREEN_SHARE:
        colour = np.array([r * 0.6, rng.uniform(0.05, 0.3), rng.uniform(0.2, 0.6)], np.float32)
    if tone is None:
        u = rng.random()
        tone = "dark_screen" if u < 0.08 else ("bright_screen" if u < 0.14 else None)
    if tone == "dark_screen":
        colour *= np.float32(rng.uniform(0.08, 0.3))
    elif tone == "bright_screen":
        colour *= np.float32(rng.uniform(1.3, 1.9))
    return colour, tone


def _sinusoid(
    rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray, scale: float, amp: float
) -> np.ndarray:
    """amp * cos(k.p + phi) with a random low frequency, via outer products (cheap)."""
    ang = rng.uniform(0, 2 * np.pi)
    k = 2 * np.pi / (scale * rng.uniform(0.3, 1.5))
    kx, ky, phi = np.float32(k * np.cos(ang)), np.float32(k * np.sin(ang)), rng.uniform(0, 2 * np.pi)
    ax, ay = kx * xs + np.float32(phi), ky * ys
    return np.float32(amp) * (np.cos(ax) * np.cos(ay) - np.sin(ax) * np.sin(ay))


def _lighting(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Multiplicative gain: hotspot falloff, vignetting-like gradient, gentle undulation."""
    xs, ys = pixel_centres(Window(0, height, 0, width))
    size = float(max(height, width))
    hx = rng.uniform(-0.3, 1.3) * width
    hy = rng.uniform(-0.3, 1.0) * height
    radius = rng.uniform(0.6, 2.0) * size
    falloff = rng.uniform(0.0, 0.6)
    d2 = ((xs - np.float32(hx)) ** 2 + (ys - np.float32(hy)) ** 2) * np.float32(1.0 / radius**2)
    gain = np.float32(1.0) - np.float32(falloff) * np.minimum(d2, 1.5)
    gx, gy = rng.normal(0, 0.12, 2) / size
    gain = gain + (np.float32(gx) * (xs - width / 2) + np.float32(gy) * (ys - height / 2))
    for _ in range(int(rng.integers(1, 4))):
        gain = gain + _sinusoid(rng, xs, ys, size, rng.uniform(0.01, 0.06))
    return np.maximum(gain, 0.15).astype(np.float32)


def _wrinkles(
    rng: np.random.Generator, gain: np.ndarray, scale: float, depth: tuple[float, float] = FOLD_DEPTH
) -> None:
    """Add folds (a light/dark pair across a line) and creases (a thin dark line) to gain; depth
    is the range of their amplitude (a share of the light)."""
    height, width = gain.shape
    n = int(rng.choice([0, 1, 2, 3, 5, 8, 12], p=[0.15, 0.1, 0.15, 0.2, 0.2, 0.12, 0.08]))
    # wrinkles cluster near where cloth is pulled (corners, the floor join)
    cx0, cy0 = rng.uniform(0, width), rng.uniform(0, height)
    for _ in range(n):
        if rng.random() < 0.6:
            cx, cy = cx0 + rng.normal(0, 0.2 * width), cy0 + rng.normal(0, 0.2 * height)
        else:
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        ang = rng.uniform(0, np.pi)
        half = rng.uniform(10, 80) * scale
        sigma = rng.uniform(1.0, 8.0) * scale if rng.random() < 0.8 else rng.uniform(0.5, 1.2)
        amp = rng.uniform(*depth)
        bend = rng.normal(0, 0.5) / half
        crease = rng.random() < 0.25
        win = window_around(cx, cy, half * 1.2 + 3 * sigma, height, width)
        if win.empty:
            continue
        xs, ys = pixel_centres(win)
        dx, dy = xs - np.float32(cx), ys - np.float32(cy)
        c, s = np.float32(np.cos(ang)), np.float32(np.sin(ang))
        t = dx * c + dy * s
        nrm = -dx * s + dy * c + np.float32(bend) * t * t
        u = nrm * np.float32(1.0 / sigma)
        env = np.exp(-2.0 * (t * np.float32(1.0 / half)) ** 2)
        if crease:
            prof = -np.exp(-0.5 * u * u)
        else:
            prof = u * np.exp(0.5 - 0.5 * u * u)
        gain[win.slices] += np.float32(amp) * prof * env


def _seams(rng: np.random.Generator, rgb: np.ndarray) -> bool:
    """Panel joins: a small colour step between panels plus a thin seam line."""
    if rng.random() > 0.35:
        return False
    height, width = rgb.shape[:2]
    xs, ys = pixel_centres(Window(0, height, 0, width))
    for _ in range(int(rng.integers(1, 3))):
        vertical = rng.random() < 0.7
        tilt = np.float32(rng.normal(0, 0.02))
        if vertical:
            d = (xs - np.float32(rng.uniform(0.1, 0.9) * width)) + tilt * ys
        else:
            d = (ys - np.float32(rng.uniform(0.1, 0.9) * height)) + tilt * xs
        step = coverage(-d)  # 0 on one panel, 1 on the other, anti-aliased
        delta = rng.normal(0, 0.04, 3).astype(np.float32)
        line_w = rng.uniform(0.6, 2.5)
        line = np.clip(np.float32(0.5 * line_w + 0.5) - np.abs(d), 0.0, 1.0)
        depth = np.float32(rng.uniform(-0.1, 0.35))
        rgb *= (1.0 + step[..., None] * delta) * (1.0 - depth * line)[..., None]
    return True


def _floor(rng: np.random.Generator, rgb: np.ndarray, scale: float) -> bool:
    """A cyclorama floor: the bottom of frame lit and tinted differently, soft join."""
    if rng.random() > 0.25:
        return False
    height, width = rgb.shape[:2]
    xs, ys = pixel_centres(Window(0, height, 0, width))
    horizon = rng.uniform(0.55, 0.95) * height
    soft = rng.uniform(4, 40) * scale
    d = ys - np.float32(horizon) + np.float32(rng.normal(0, 0.03)) * (xs - width / 2)
    m = np.clip(d / np.float32(soft) + 0.5, 0.0, 1.0)
    m = m * m * (3 - 2 * m)
    g = rng.uniform(0.6, 1.4)
    grey = rgb.mean(axis=2, keepdims=True)
    desat = np.float32(rng.uniform(0.0, 0.2))
    floor = np.float32(g) * ((1 - desat) * rgb + desat * grey)
    rgb += m[..., None] * (floor - rgb)
    return True


MARKER_COLOURS = (
    ("dark", None),
    ("light", None),
    ("grey", np.array([0.45, 0.45, 0.45], np.float32)),
    ("black", np.array([0.02, 0.02, 0.02], np.float32)),
    ("pink", np.array([0.6, 0.12, 0.3], np.float32)),
    ("yellow", np.array([0.65, 0.5, 0.05], np.float32)),
)


def _markers(
    rng: np.random.Generator,
    rgb: np.ndarray,
    light: np.ndarray,
    colour: np.ndarray,
    scale: float,
    force: bool | None,
) -> np.ndarray | None:
    """Tracking markers (crosses, Xs, dots) drawn onto the screen: background, alpha 0."""
    draw = rng.random() < 0.45
    if not (draw if force is None else force):
        return None
    height, width = rgb.shape[:2]
    total = np.zeros((height, width), np.float32)
    kind, fixed = MARKER_COLOURS[int(rng.integers(len(MARKER_COLOURS)))]
    if kind == "dark":
        albedo = colour * np.float32(rng.uniform(0.25, 0.6))
    elif kind == "light":
        albedo = np.float32(0.5) * (colour * np.float32(rng.uniform(1.4, 2.0)) + colour.mean())
    else:
        albedo = fixed * np.float32(rng.uniform(0.6, 1.4))
    shape = ["cross", "x", "dot"][int(rng.integers(3))]
    arm = rng.uniform(3, 12) * scale
    thick = rng.uniform(0.8, 3.0) * max(1.0, 0.6 * scale)
    if rng.random() < 0.5:  # a grid, as taped on set
        step = rng.uniform(40, 110) * scale
        ox, oy = rng.uniform(0, step, 2)
        gx = np.arange(ox, width + step, step)
        gy = np.arange(oy, height + step, step)
        pts = [(x + rng.normal(0, 3 * scale), y + rng.normal(0, 3 * scale)) for y in gy for x in gx]
    else:
        pts = [(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(int(rng.integers(1, 12)))]
    for px, py in pts:
        win = window_around(px, py, arm + thick, height, width)
        if win.empty:
            continue
        xs, ys = pixel_centres(win)
        dx, dy = xs - np.float32(px), ys - np.float32(py)
        if shape == "dot":
            sd = np.sqrt(dx * dx + dy * dy) - np.float32(0.5 * arm)
        else:
            a = rng.normal(0, 0.08) + (np.pi / 4 if shape == "x" else 0.0)
            c, s = np.float32(np.cos(a)), np.float32(np.sin(a))
            u, v = dx * c + dy * s, -dx * s + dy * c
            sd = np.minimum(sd_round_box(u, v, arm, thick / 2, 0.0), sd_round_box(u, v, thick / 2, arm, 0.0))
        cov = coverage(sd)
        sl = win.slices
        rgb[sl] += cov[..., None] * (albedo * light[sl][..., None] - rgb[sl])
        total[sl] = np.maximum(total[sl], cov)
    return total


def make_screen(
    rng: np.random.Generator,
    height: int,
    width: int,
    tone: str | None = None,
    markers: bool | None = None,
    fold_depth: tuple[float, float] = FOLD_DEPTH,
) -> Screen:
    """Draw a random clean screen.

    tone forces "dark_screen"/"bright_screen"; markers forces tracking markers on/off; fold_depth
    is the range of the wrinkles' depth (a share of the light).
    """
    scale = min(height, width) / 256.0
    colour, tone = sample_screen_colour(rng, tone)
    gain = _lighting(rng, height, width)
    _wrinkles(rng, gain, scale, fold_depth)
    np.maximum(gain, 0.05, out=gain)
    # a slight hue drift across the screen: lights are never perfectly matched
    xs, ys = pixel_centres(Window(0, height, 0, width))
    drift = _sinusoid(rng, xs, ys, float(max(height, width)), 1.0)
    tint = rng.normal(0, 0.05, 3).astype(np.float32)
    rgb = gain[..., None] * colour * (1.0 + drift[..., None] * tint)
    tags = ["screen"]
    if tone:
        tags.append(tone)
    if _seams(rng, rgb):
        tags.append("seams")
    if _floor(rng, rgb, scale):
        tags.append("floor")
    cover = _markers(rng, rgb, gain, colour, scale, markers)
    if cover is not None:
        tags.append("markers")
    return Screen(np.maximum(rgb, 0.0).astype(np.float32), colour, tuple(tags), cover)
