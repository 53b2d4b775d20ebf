"""Photo textures for foreground surfaces, from scikit-image's bundled sample images.

Real subjects have detail (fabric, skin, print) right up to their edges, which is what
makes keying hard; flat colours would teach the network that edges are simple. The
images ship with scikit-image (no download), are decoded once per process and kept in
linear light. A TextureSpec is plain numbers so a scene can be re-rendered at another
pose (sequences) and always samples the same surface.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from gsrender.engine.encoding import srgb_eotf

# name, is_colour. Greyscale sources get tinted by the colour matrix.
SOURCES: tuple[tuple[str, bool], ...] = (
    ("astronaut", True),
    ("coffee", True),
    ("chelsea", True),
    ("rocket", True),
    ("immunohistochemistry", True),
    ("retina", True),
    ("colorwheel", True),
    ("brick", False),
    ("grass", False),
    ("gravel", False),
    ("camera", False),
    ("coins", False),
    ("moon", False),
)
# Procedural cloths, drawn only by name (random_texture(source=...)): never in the random pool,
# so the photo textures' draws stay as they were.
PATTERNS: tuple[str, ...] = ("check",)
MAX_SIDE = 512
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def woven_check(size: int = 512, seed: int = 5) -> np.ndarray:
    """A shirting check, sRGB-encoded 0-255: a light ground crossed by thin dark and coloured
    lines, warp over weft in a 2/2 twill.

    Light checked shirts are where a key punches holes: between the lines the cloth is nearly
    white and takes the screen's bounce, so it reads as screen showing through. The sett repeats
    every 128 px so the mirrored lookup tiles it seamlessly.
    """
    rng = np.random.default_rng(seed)
    period = 128

    def sett() -> np.ndarray:
        """Per-thread colours along one direction: ground with groups of 1-3 lines."""
        threads = np.full((period, 3), 235.0, np.float32)
        x = int(rng.integers(4, 12))
        while x < period - 4:
            colour = rng.choice([40.0, 70.0, 110.0, 160.0]) * rng.uniform(0.6, 1.4, 3)
            for _ in range(int(rng.integers(1, 4))):
                width = int(rng.integers(1, 4))
                threads[x : x + width] = np.clip(colour, 0, 255)
                x += width + int(rng.integers(2, 5))
            x += int(rng.integers(10, 30))
        return threads

    warp, weft = sett(), sett()
    y, x = np.mgrid[0:size, 0:size]
    over = ((x + y) // 2) % 2 == 0  # 2/2 twill: which thread shows at each crossing
    img = np.where(over[..., None], warp[x % period], weft[y % period])
    return img.astype(np.float32)


@cache
def load_texture(index: int) -> np.ndarray:
    """Linear float32 HxWx3 version of source `index`, at most MAX_SIDE px (cached)."""
    if index >= len(SOURCES):  # the procedural cloths (PATTERNS: the check alone)
        img = woven_check()
    else:
        import skimage.data  # lazy: only needed by the generator

        img = np.asarray(getattr(skimage.data, SOURCES[index][0])())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    step = max(1, int(np.ceil(max(img.shape[:2]) / MAX_SIDE)))
    if step > 1:  # box-downsample big sources (retina) to keep sampling cache-friendly
        h, w = (img.shape[0] // step) * step, (img.shape[1] // step) * step
        img = img[:h, :w].reshape(h // step, step, w // step, step, 3).mean(axis=(1, 3))
    lin = srgb_eotf(img.astype(np.float32) / 255.0)
    # a relative albedo pattern: mean luminance 1, so a tint sets the surface's mean colour
    lum = float((lin @ LUMA).mean())
    lin = np.minimum(lin / max(lum, 1e-3), 3.0).astype(np.float32)
    lin.setflags(write=False)
    return lin


@cache
def _texture_mean(index: int) -> np.ndarray:
    return load_texture(index).mean(axis=(0, 1), dtype=np.float32)


def sample_bilinear(img: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear lookup at pixel coordinates (u across, v down) with mirrored repeat."""
    h, w = img.shape[:2]

    def mirror(c: np.ndarray, n: int) -> np.ndarray:
        c = np.mod(c, 2 * n - 2)
        return np.where(c > n - 1, 2 * n - 2 - c, c)

    u = mirror(u - 0.5, w)
    v = mirror(v - 0.5, h)
    x0 = np.minimum(u.astype(np.int32), w - 2)
    y0 = np.minimum(v.astype(np.int32), h - 2)
    fx = (u - x0).astype(np.float32)
    fy = (v - y0).astype(np.float32)
    flat = img.reshape(h * w, *img.shape[2:])
    i00 = y0 * w + x0
    extra = (...,) if img.ndim == 2 else (..., None)
    fx_, fy_ = fx[extra], fy[extra]
    top = flat[i00] * (1 - fx_) + flat[i00 + 1] * fx_
    bot = flat[i00 + w] * (1 - fx_) + flat[i00 + w + 1] * fx_
    out = top * (1 - fy_) + bot * fy_
    return out.reshape(u.shape + img.shape[2:]).astype(np.float32, copy=False)


@dataclass(frozen=True)
class TextureSpec:
    """Which source, how it is mapped onto object coordinates, and its colour change."""

    source: int
    scale: float  # texture px per object px
    angle: float
    offset: tuple[float, float]
    matrix: np.ndarray  # 3x3 linear colour transform (hue rotation, tint, saturation, gain)
    contrast: float  # 1 keeps the photo's contrast; < 1 flattens it toward its mean
    aspect: float = 1.0  # < 1 stretches the photo into streaks (hair, brushed metal, wood)


def random_colour_matrix(rng: np.random.Generator, tint: np.ndarray | None, saturation: float) -> np.ndarray:
    """A colour transform: optional hue rotation, saturation change, then a tint."""
    grey = np.outer(np.ones(3, np.float32), LUMA)
    m = saturation * np.eye(3, dtype=np.float32) + (1.0 - saturation) * grey
    if rng.random() < 0.5:  # channel permutation: a cheap large hue change
        m = m[rng.permutation(3)]
    if tint is not None:
        m = np.diag(tint.astype(np.float32)) @ m
    return m.astype(np.float32)


def random_texture(
    rng: np.random.Generator,
    tint: np.ndarray | None = None,
    saturation: float | None = None,
    contrast: float | None = None,
    greyscale_only: bool = False,
    source: str | None = None,
    aspect: float = 1.0,
    angle: float | None = None,
) -> TextureSpec:
    """Draw a random texture mapping (crop, scale, rotation, colour shift).

    tint is the surface's mean linear colour (textures are normalised to mean luminance 1).
    """
    if tint is None:
        tint = np.full(3, rng.uniform(0.1, 0.6), np.float32)
    pool = [i for i, (_, colour) in enumerate(SOURCES) if not (greyscale_only and colour)]
    src = int(pool[rng.integers(len(pool))])
    if source is not None:
        src = [*(name for name, _ in SOURCES), *PATTERNS].index(source)
    sat = float(rng.uniform(0.2, 1.3)) if saturation is None else saturation
    return TextureSpec(
        source=src,
        scale=float(np.exp(rng.uniform(np.log(0.4), np.log(2.5)))),
        angle=float(rng.uniform(0, 2 * np.pi)) if angle is None else angle,
        offset=(float(rng.uniform(0, 4096)), float(rng.uniform(0, 4096))),
        matrix=random_colour_matrix(rng, tint, sat),
        contrast=float(rng.uniform(0.4, 1.2)) if contrast is None else contrast,
        aspect=aspect,
    )


def render_texture(spec: TextureSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample the texture at object coordinates x, y (same shapes) -> ...x3 linear."""
    img = load_texture(spec.source)
    c, s = np.float32(np.cos(spec.angle) * spec.scale), np.float32(np.sin(spec.angle) * spec.scale)
    u = c * x - s * y + np.float32(spec.offset[0])
    v = (s * x + c * y) * np.float32(spec.aspect) + np.float32(spec.offset[1])
    rgb = sample_bilinear(img, u, v)
    if spec.contrast != 1.0:
        mean = _texture_mean(spec.source)
        rgb = mean + np.float32(spec.contrast) * (rgb - mean)
    out = rgb @ spec.matrix.T
    return np.maximum(out, 0.0).astype(np.float32, copy=False)


def preload() -> None:
    """Decode every source now (~0.5 s), e.g. in a DataLoader worker_init, not on first use."""
    for i in range(len(SOURCES) + len(PATTERNS)):
        _texture_mean(i)
