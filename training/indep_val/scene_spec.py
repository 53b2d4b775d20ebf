"""A studio scene of the independent validation set as plain data: materials, shapes, lights and
the scene that holds them, in metres (the camera at the origin looking down -z, +y up)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Material:
    """What a subject surface is made of. `kind`: diffuse, plastic, hair, thin_glass, emitter."""

    kind: str
    rgb: tuple[float, float, float] = (0.5, 0.5, 0.5)
    photo: str | None = None  # a skimage.data image as the albedo (multiplied by rgb)
    opacity: str | None = None  # an opacity pattern name (assets.opacity_pattern): leaf, net, lace
    pattern_seed: int = 0
    melanin: tuple[float, float] = (1.3, 0.2)  # hair: eumelanin, pheomelanin
    hair_sigma_a: tuple[float, float, float] | None = None  # hair: dyed absorption instead of melanin
    roughness: float = 0.3


@dataclass
class Shape:
    """One subject primitive. `kind`: sphere, cylinder, quad, curves (b-spline), lines (linear)."""

    kind: str
    material: Material
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 0.1
    p0: tuple[float, float, float] = (0.0, 0.0, 0.0)  # cylinder ends
    p1: tuple[float, float, float] = (0.0, 1.0, 0.0)
    matrix: np.ndarray | None = None  # quad: 4x4 local->world ([-1,1]^2 in the local xy plane)
    curves: list[np.ndarray] = field(default_factory=list)  # each Nx4: x, y, z, radius


@dataclass
class Light:
    """`kind`: area (a rectangle facing `target`), spot."""

    kind: str
    position: tuple[float, float, float]
    target: tuple[float, float, float]
    rgb: tuple[float, float, float]
    size: float = 0.5  # area: side length
    cutoff_deg: float = 30.0  # spot


@dataclass
class SceneSpec:
    seed: int
    kind: str
    screen: str  # "green" or "blue"
    screen_rgb: tuple[float, float, float]
    screen_depth: float  # distance from the camera to the screen plane
    wrinkle_seed: int
    wrinkle_amp: float
    fov_deg: float
    width: int
    height: int
    aperture: float  # thin-lens radius; 0 = pinhole
    focus: float
    lights: list[Light]
    subject: list[Shape]
    exposure: float  # the clean screen's median brightest channel after normalising
    noise_gain: float  # camera noise: variance = gain * value + read^2 (linear)
    noise_read: float
    screen_emission: float = 0.0  # > 0: a backlit (self-luminous) screen, radiance = screen_rgb * this
    motion: tuple[float, float, float] = (0.0, 0.0, 0.0)  # subject travel while the shutter is open
    screen_reflects: bool = True  # False: the screen only emits (no shadow or light from lamps on it)


def _v(x: np.ndarray | tuple) -> tuple[float, float, float]:
    a = np.asarray(x, np.float64)
    return (float(a[0]), float(a[1]), float(a[2]))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def quad_matrix(center: np.ndarray, normal: np.ndarray, up: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """4x4 that maps the [-1,1]^2 quad (normal +z) to a sx-by-sy half-size quad at `center`."""
    n = _unit(np.asarray(normal, np.float64))
    x = _unit(np.cross(np.asarray(up, np.float64), n))
    y = np.cross(n, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x * sx, y * sy, n, center
    return m
