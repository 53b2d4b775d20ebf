"""Seeded studio scenes for the independent validation set, as plain data (no renderer).

A scene is a screen (a wrinkled, unevenly lit green or blue cloth), lights and a subject
made of shapes: thin curves (hair, fur, twigs), spheres and capsules (heads, bodies,
fingers), textured quads with opacity masks (leaves, nets, lace veils) and thin glass.
Everything is numbers, so the same seed always gives the same scene and render.py can
turn it into different render passes. The geometry family (3D shapes, path-traced light)
shares nothing with the 2D generator in gsrender.training.synth that makes training plates.

Units are metres. The camera sits at the origin looking down -z with +y up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scene_spec import Light, Material, SceneSpec, Shape, _unit, _v, quad_matrix

KINDS = ("hair", "foliage", "person", "lattice", "veil", "glass", "fur", "branches")
SCREENS = {
    # linear diffuse reflectance of chroma-key paint/cloth (a range is drawn around these)
    "green": (0.06, 0.42, 0.09),
    "blue": (0.035, 0.10, 0.45),
}
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "colorwheel")
GREY_PHOTOS = ("grass", "brick", "gravel", "camera", "coins")


class _Builder:
    """Draws the shapes of one subject from one random stream."""

    def __init__(self, rng: np.random.Generator, centre: np.ndarray, scale: float, screen: str) -> None:
        self.rng = rng
        self.c = centre  # subject centre in world space
        self.s = scale  # roughly the subject's half height
        self.screen = screen
        self.shapes: list[Shape] = []

    # ----------------------------------------------------------------- materials
    def cloth(self) -> Material:
        r = self.rng
        if r.random() < 0.7:
            photo = str(r.choice(PHOTOS)) if r.random() < 0.75 else str(r.choice(GREY_PHOTOS))
            tint = r.uniform(0.5, 1.0, 3) if photo in GREY_PHOTOS else np.full(3, r.uniform(0.7, 1.0))
            return Material("diffuse", _v(tint), photo=photo)
        return Material("plastic", _v(r.uniform(0.03, 0.8, 3)), roughness=float(r.uniform(0.1, 0.5)))

    def skin(self) -> Material:
        tone = np.array([0.62, 0.42, 0.32]) * self.rng.uniform(0.25, 1.0)
        return Material("diffuse", _v(tone))

    def hair_material(self) -> Material:
        r = self.rng
        u = r.random()
        if u < 0.15:  # dyed: greenish or bluish hair, a non-screen subject close to the screen hue
            sig = (2.5, 0.35, 1.8) if r.random() < 0.6 else (2.5, 1.2, 0.3)
            return Material("hair", hair_sigma_a=sig)
        if u < 0.35:
            return Material(
                "hair", melanin=(float(r.uniform(0.05, 0.3)), float(r.uniform(0.1, 0.6)))
            )  # blond
        return Material("hair", melanin=(float(r.uniform(0.4, 3.0)), float(r.uniform(0.0, 0.6))))

    # ----------------------------------------------------------------- parts
    def sphere(self, c: np.ndarray, radius: float, mat: Material) -> None:
        self.shapes.append(Shape("sphere", mat, center=_v(c), radius=float(radius)))

    def capsule(self, a: np.ndarray, b: np.ndarray, radius: float, mat: Material) -> None:
        self.shapes.append(Shape("cylinder", mat, p0=_v(a), p1=_v(b), radius=float(radius)))
        self.sphere(a, radius, mat)
        self.sphere(b, radius, mat)

    def strands(
        self,
        roots: np.ndarray,
        normals: np.ndarray,
        length: float,
        radius: float,
        mat: Material,
        curl: float,
        droop: float = 0.8,
    ) -> None:
        """Hair-like b-splines in clumps: a guide path per root, strands around it that converge
        towards the tip (so clumps have gaps between them), bending down; a few flyaways."""
        r = self.rng
        curves = []
        n_pts = 7
        for root, nrm in zip(roots, normals, strict=True):
            fly = r.random() < 0.05
            ln = length * r.uniform(0.6, 1.3) * (1.6 if fly else 1.0)
            d = _unit(nrm * (1.0 if fly else 0.6) + np.array([0.0, -droop * 0.5, 0.0]) + r.normal(0, 0.15, 3))
            guide = [root - nrm * 0.005]
            p = root.copy()
            for k in range(n_pts - 1):
                pull = np.array([0.0, -droop, 0.0]) * (0.3 if fly else 1.0) * (k + 1) / n_pts
                d = _unit(d + pull + r.normal(0, curl, 3))
                p = p + d * ln / (n_pts - 1)
                guide.append(p.copy())
            g = np.array(guide)
            spread = length * r.uniform(0.02, 0.06)
            m = 1 if fly else int(r.integers(3, 9))
            t = np.linspace(0.0, 1.0, n_pts)[:, None]
            for _ in range(m):
                off = r.normal(0, spread, 3) * (1.0 - 0.75 * t) + r.normal(0, spread * 0.15, (n_pts, 3)) * t
                rad = radius * r.uniform(0.6, 1.3)
                taper = rad * np.linspace(1.0, 0.4, n_pts)
                curves.append(np.column_stack([g + off, taper]).astype(np.float32))
        self.shapes.append(Shape("curves", mat, curves=curves))

    def head_with_hair(self, c: np.ndarray, radius: float, density: int) -> None:
        r = self.rng
        self.sphere(c, radius, self.skin() if r.random() < 0.6 else self.cloth())
        theta = np.arccos(r.uniform(-0.25, 1.0, density))  # polar angle from +y: scalp and sides
        phi = r.uniform(0, 2 * np.pi, density)
        normals = np.column_stack([np.sin(theta) * np.cos(phi), np.cos(theta), np.sin(theta) * np.sin(phi)])
        keep = normals[:, 2] < 0.75  # leave the face mostly free
        normals = normals[keep]
        roots = c + normals * radius
        length = radius * r.uniform(0.6, 2.8)
        self.strands(roots, normals, length, radius * r.uniform(0.006, 0.014), self.hair_material(), 0.12)

    def branch(
        self,
        root: np.ndarray,
        direction: np.ndarray,
        length: float,
        radius: float,
        depth: int,
        out: list[np.ndarray],
        leaves: list[tuple[np.ndarray, np.ndarray]],
    ) -> None:
        r = self.rng
        pts, p, d = [root], root.copy(), _unit(direction)
        for _ in range(4):
            d = _unit(d + r.normal(0, 0.18, 3))
            p = p + d * length / 4
            pts.append(p.copy())
        taper = np.linspace(radius, radius * 0.6, len(pts))
        out.append(np.column_stack([np.array(pts), taper]).astype(np.float32))
        if depth <= 1:
            for q in pts[1:]:
                leaves.append((q, d))
        if depth == 0:
            return
        for _ in range(int(r.integers(2, 4))):
            start = pts[int(r.integers(1, len(pts)))]
            nd = d + r.normal(0, 0.8, 3)
            self.branch(start, nd, length * r.uniform(0.45, 0.75), radius * 0.6, depth - 1, out, leaves)

    def tree(self, with_leaves: bool, green: bool | None = None) -> None:
        """green None: the leaves' colour family drawn from the stream; True/False forces it."""
        r = self.rng
        base = self.c + np.array([r.uniform(-0.2, 0.2) * self.s, -self.s * 1.1, 0.0])
        sticks: list[np.ndarray] = []
        leaves: list[tuple[np.ndarray, np.ndarray]] = []
        self.branch(base, np.array([0.0, 1.0, 0.0]), self.s * 1.3, self.s * 0.03, 3, sticks, leaves)
        bark = Material(
            "diffuse",
            _v(np.array([0.25, 0.17, 0.1]) * r.uniform(0.3, 1.2)),
            photo="brick" if r.random() < 0.5 else None,
        )
        self.shapes.append(Shape("lines", bark, curves=sticks))
        if not with_leaves:
            return
        hue = r.random()
        if green is not None:
            hue = 0.0 if green else 1.0
        for i, (q, d) in enumerate(leaves):
            if r.random() < 0.35:
                continue
            if hue < 0.5:  # green leaves: a non-screen green, the hard case
                rgb = np.array([0.07, 0.22, 0.04]) * r.uniform(0.5, 1.6) + r.uniform(0, 0.04, 3)
            else:  # autumn / flowers
                rgb = r.uniform(0.05, 0.7, 3)
            mat = Material(
                "diffuse",
                _v(rgb),
                photo="grass" if r.random() < 0.4 else None,
                opacity="leaf",
                pattern_seed=int(r.integers(1 << 30)) + i,
            )
            size = self.s * r.uniform(0.09, 0.18)
            normal = _unit(np.array([0.0, 0.0, 1.0]) + r.normal(0, 0.6, 3))
            self.shapes.append(
                Shape("quad", mat, matrix=quad_matrix(q + d * size * 0.8, normal, d, size * 0.55, size))
            )

    def person(self, hair: bool) -> None:
        r = self.rng
        s, c = self.s, self.c
        torso_top = c + np.array([0.0, 0.15 * s, 0.0])
        torso_bot = c + np.array([0.0, -1.3 * s, 0.0])
        shirt = self.cloth()
        self.capsule(torso_top + [-0.12 * s, 0, 0], torso_bot + [-0.12 * s, 0, 0], 0.28 * s, shirt)
        self.capsule(torso_top + [0.12 * s, 0, 0], torso_bot + [0.12 * s, 0, 0], 0.28 * s, shirt)
        head_c = torso_top + np.array([0.0, 0.62 * s, 0.05 * s])
        if hair:
            self.head_with_hair(head_c, 0.26 * s, int(r.integers(150, 300)))
        else:
            self.sphere(head_c, 0.26 * s, self.skin())
        self.capsule(torso_top + [0, 0.3 * s, 0], torso_top + [0, 0.45 * s, 0], 0.09 * s, self.skin())
        skin = self.skin()
        for side in (-1, 1):  # arms, one raised with open fingers (gaps between them)
            sh = torso_top + np.array([side * 0.42 * s, 0.0, 0.0])
            raised = side == 1 and r.random() < 0.7
            el = sh + np.array([side * 0.25 * s, (0.1 if raised else -0.5) * s, 0.15 * s])
            wr = el + np.array([side * 0.1 * s, (0.45 if raised else -0.4) * s, 0.1 * s])
            self.capsule(sh, el, 0.09 * s, shirt)
            self.capsule(el, wr, 0.07 * s, skin)
            if raised:
                for k in range(5):
                    ang = np.deg2rad(-40 + 20 * k + r.normal(0, 4))
                    tip = wr + np.array([np.sin(ang), np.cos(ang), 0.1]) * s * (0.22 if k else 0.15)
                    self.capsule(wr + [0, 0.04 * s, 0], tip, 0.018 * s, skin)

    def lattice(self) -> None:
        r = self.rng
        s, c = self.s, self.c
        tilt = r.normal(0, 0.25, 3)
        normal = _unit(np.array([0.0, 0.0, 1.0]) + tilt * [1, 1, 0])
        if r.random() < 0.5:  # a net or mesh fabric: a quad with a periodic opacity mask
            mat = Material(
                "diffuse", _v(r.uniform(0.05, 0.9, 3)), opacity="net", pattern_seed=int(r.integers(1 << 30))
            )
            self.shapes.append(Shape("quad", mat, matrix=quad_matrix(c, normal, [0, 1, 0], s * 0.9, s * 0.9)))
        else:  # a wooden/metal trellis of thin bars
            mat = Material("plastic", _v(r.uniform(0.03, 0.6, 3)), roughness=float(r.uniform(0.1, 0.6)))
            n = int(r.integers(5, 11))
            bars = []
            rad = s * r.uniform(0.008, 0.025)
            for i in range(n):
                t = -0.9 + 1.8 * i / (n - 1)
                for a, b in (([t, -0.9], [t, 0.9]), ([-0.9, t], [0.9, t])):
                    p0 = c + s * np.array([a[0], a[1], 0.0]) + s * tilt * a[0] * 0.3
                    p1 = c + s * np.array([b[0], b[1], 0.0]) + s * tilt * b[0] * 0.3
                    bars.append(np.array([[*p0, rad], [*p1, rad]], np.float32))
            self.shapes.append(Shape("lines", mat, curves=bars))
        self.sphere(
            c + np.array([s * r.uniform(-0.6, 0.6), s * r.uniform(-0.6, 0.6), -s * 0.5]),
            s * 0.3,
            self.cloth(),
        )

    def veil(self) -> None:
        r = self.rng
        s, c = self.s, self.c
        self.head_with_hair(c + np.array([0.0, 0.1 * s, -0.2 * s]), 0.35 * s, int(r.integers(150, 300)))
        self.capsule(c + [0, -0.5 * s, -0.2 * s], c + [0, -1.4 * s, -0.2 * s], 0.4 * s, self.cloth())
        white = np.full(3, r.uniform(0.5, 0.9)) * (1 if r.random() < 0.7 else r.uniform(0.3, 1.0, 3))
        mat = Material("diffuse", _v(white), opacity="lace", pattern_seed=int(r.integers(1 << 30)))
        normal = _unit(np.array([r.normal(0, 0.2), r.normal(0, 0.1), 1.0]))
        self.shapes.append(
            Shape(
                "quad",
                mat,
                matrix=quad_matrix(c + [0, -0.2 * s, 0.25 * s], normal, [0, 1, 0], s * 0.6, s * 1.0),
            )
        )

    def glass(self) -> None:
        r = self.rng
        s, c = self.s, self.c
        self.person(hair=r.random() < 0.5)
        pane = Material("thin_glass")
        normal = _unit(np.array([r.normal(0, 0.4), r.normal(0, 0.2), 1.0]))
        self.shapes.append(
            Shape(
                "quad",
                pane,
                matrix=quad_matrix(
                    c + [s * r.uniform(-0.5, 0.5), 0, 0.45 * s], normal, [0, 1, 0], s * 0.45, s * 0.6
                ),
            )
        )
        for _ in range(int(r.integers(1, 4))):  # bubbles / lamp globes
            self.sphere(
                c + s * np.array([r.uniform(-0.9, 0.9), r.uniform(-0.9, 0.9), r.uniform(0.3, 0.8)]),
                s * r.uniform(0.08, 0.22),
                Material("thin_glass"),
            )

    def fur(self) -> None:
        r = self.rng
        s, c = self.s, self.c
        body = self.cloth() if r.random() < 0.5 else Material("diffuse", (0.9, 0.9, 0.9), photo="chelsea")
        rad = s * r.uniform(0.45, 0.65)
        self.sphere(c, rad, body)
        self.sphere(c + [rad * 0.7, rad * 0.7, rad * 0.2], rad * 0.5, body)
        n = int(r.integers(400, 800))
        dirs = r.normal(0, 1, (n, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        dirs = dirs[dirs[:, 2] > -0.3]
        mat = self.hair_material() if r.random() < 0.6 else Material("diffuse", _v(r.uniform(0.05, 0.8, 3)))
        self.strands(
            c + dirs * rad, dirs, rad * r.uniform(0.2, 0.5), s * r.uniform(0.003, 0.007), mat, 0.3, droop=0.3
        )


def build_scene(
    seed: int, kind: str | None = None, screen: str | None = None, width: int = 480, height: int = 360
) -> SceneSpec:
    """The scene for `seed`. kind/screen None: drawn from the seed (kinds and screens cycle)."""
    r = np.random.default_rng([seed, 0x1DE7])
    kind = kind or KINDS[seed % len(KINDS)]
    screen = screen or ("green" if (seed // len(KINDS)) % 2 == 0 else "blue")
    if kind not in KINDS or screen not in SCREENS:
        raise ValueError(f"unknown scene kind {kind!r} or screen {screen!r}")
    lay = _Layout.draw(r)
    centre, scale = lay.centre, lay.scale
    b = _Builder(r, centre, scale, screen)
    if kind == "hair":
        b.head_with_hair(centre + [0, 0.1 * scale, 0], 0.45 * scale, int(r.integers(250, 450)))
        b.capsule(
            centre + [0, -0.55 * scale, -0.1 * scale],
            centre + [0, -1.6 * scale, -0.1 * scale],
            0.5 * scale,
            b.cloth(),
        )
    elif kind == "foliage":
        b.tree(with_leaves=True)
    elif kind == "branches":
        b.tree(with_leaves=r.random() < 0.3)
    elif kind == "person":
        b.person(hair=r.random() < 0.6)
    elif kind == "lattice":
        b.lattice()
    elif kind == "veil":
        b.veil()
    elif kind == "glass":
        b.glass()
    else:
        b.fur()
    return _studio(r, seed, kind, screen, lay, b.shapes, width, height)


@dataclass
class _Layout:
    """Camera and subject placement of a scene, drawn first from its random stream."""

    fov: float
    subj_z: float
    screen_depth: float
    half_h: float  # half the frame height at the subject's depth (metres)
    scale: float
    centre: np.ndarray

    @classmethod
    def draw(cls, r: np.random.Generator) -> _Layout:
        fov = float(r.uniform(32, 48))
        subj_z = -float(r.uniform(2.2, 3.2))
        screen_depth = -subj_z + float(r.uniform(0.5, 1.6))  # close screens give strong spill
        half_h = -subj_z * np.tan(np.deg2rad(fov) / 2)
        scale = half_h * float(r.uniform(0.55, 0.8))
        centre = np.array([r.uniform(-0.2, 0.2) * half_h, r.uniform(-0.15, 0.1) * half_h, subj_z])
        return cls(fov, subj_z, screen_depth, float(half_h), scale, centre)


def _studio(
    r: np.random.Generator,
    seed: int,
    kind: str,
    screen: str,
    lay: _Layout,
    shapes: list[Shape],
    width: int,
    height: int,
) -> SceneSpec:
    """Screen, lights, lens, exposure and camera noise around a built subject (drawn after it)."""
    base = np.array(SCREENS[screen]) * r.uniform(0.8, 1.2, 3)
    lights = _lights(r, lay.centre, lay.scale, lay.screen_depth)
    return SceneSpec(
        seed=seed,
        kind=kind,
        screen=screen,
        screen_rgb=_v(base),
        screen_depth=float(lay.screen_depth),
        wrinkle_seed=int(r.integers(1 << 30)),
        wrinkle_amp=float(r.uniform(0.0, 0.04)),
        fov_deg=lay.fov,
        width=width,
        height=height,
        aperture=float(r.choice([0.0, r.uniform(0.004, 0.012)])),
        focus=float(-lay.subj_z),
        lights=lights,
        subject=shapes,
        exposure=float(r.uniform(0.15, 0.45)),
        noise_gain=float(r.uniform(2e-4, 2e-3)),
        noise_read=float(r.uniform(5e-4, 4e-3)),
    )


def _lights(r: np.random.Generator, centre: np.ndarray, scale: float, screen_depth: float) -> list[Light]:
    """Key and fill beside the camera (outside the frame), a rim light and uneven screen lights."""
    side = float(r.choice([-1.0, 1.0]))
    warm = np.array([1.0, r.uniform(0.85, 1.0), r.uniform(0.7, 1.0)])
    key_pos = np.array([side * r.uniform(1.2, 2.5), r.uniform(0.5, 2.0), r.uniform(-0.3, 0.3)])
    lights = [
        Light("area", _v(key_pos), _v(centre), _v(warm * r.uniform(6, 14)), size=float(r.uniform(0.4, 1.2))),
        Light(
            "area",
            _v([-side * r.uniform(1.5, 3.0), r.uniform(-0.5, 1.0), 0.0]),
            _v(centre),
            _v(np.full(3, r.uniform(0.5, 3.0))),
            size=1.5,
        ),
    ]
    if r.random() < 0.7:  # rim light from behind and above
        pos = centre + np.array(
            [r.uniform(-1, 1), scale * 2.5, -r.uniform(0.3, 0.6) * (screen_depth + centre[2])]
        )
        lights.append(Light("spot", _v(pos), _v(centre), _v(np.full(3, r.uniform(2, 12))), cutoff_deg=40))
    for _ in range(int(r.integers(2, 4))):  # screen lights, deliberately uneven
        pos = np.array([r.uniform(-2.5, 2.5), r.uniform(1.0, 2.5), r.uniform(-1.0, 0.0)])
        tgt = np.array([r.uniform(-1.5, 1.5), r.uniform(-1.2, 1.2), -screen_depth])
        lights.append(
            Light(
                "spot",
                _v(pos),
                _v(tgt),
                _v(np.full(3, r.uniform(5, 25))),
                cutoff_deg=float(r.uniform(20, 45)),
            )
        )
    return lights
