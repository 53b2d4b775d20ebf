"""Where a foreground layer sits: poses, the pose context layers render in, SDF primitives.

A layer's shape lives in object coordinates; a Pose moves it rigidly about its group's pivot
(plus time for secondary motion), so the same subject can be rendered frame after frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .raster import Window, sd_ellipse, sd_radial, sd_round_box, window_around

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


def prims_bounds(prims: list[Prim]) -> tuple[float, float, float]:
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
