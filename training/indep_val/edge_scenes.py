"""Scenes whose edges behave like photographed ones: the independent set's ``edges`` selection.

The studio set (scene.KINDS) judges spill, shadows and glass well, but a camera sees hair as
many single-colour strands one to three pixels wide, fur as a dense fringe of finer ones,
leaves (green ones too) as sharp-edged cut-outs, and moving or out-of-focus subjects as soft
edges. These subjects are built here, from their own random stream (so the studio set's
scenes, and their published scores, do not change):

- ``strands``: a head and shoulders with long hair of ONE diffuse colour (brown, blond,
  black or grey: a strand of brown or blond has R > G, which a plain colour-difference key
  over-counts); strand diameter 1-3 px at the subject's distance, clumps and flyaways;
- ``fur``: an animal-like body covered by thousands of short strands 1-2 px wide;
- ``leaves``: a branching plant with leaf cut-outs, green (a non-screen green) or not;
- ``*_motion``: the subject moves 6-16 px during the shutter (rendered as 8 sub-frames);
- ``*_defocus``: a wide aperture focused in front of the subject (blur of a few pixels).

The rest (screen cloth, subject lights, exposure, camera noise) is drawn as for the studio set
(scene._studio), after the subject from the same stream, but the screen is lit as a careful
studio's clean plates show it: evenly lit, without cast shadows (self-luminous, reflecting
nothing), 1.5-3 m behind the subject, so that shadows and uneven light, the studio set's
subject, do not dominate the score (the degraded copy, degrade.py, adds uneven light back).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .scene import SCREENS, _Builder, _Layout, _studio
from .scene_spec import Material, SceneSpec, Shape, _unit, _v

SUBJECTS = ("strands", "fur", "leaves")
EFFECTS = ("", "_motion", "_defocus")
EDGE_KINDS = tuple(s + e for e in EFFECTS for s in SUBJECTS)
STRAND_COLOURS = {
    # linear diffuse albedo of one strand colour
    "brown": (0.20, 0.085, 0.035),
    "blond": (0.60, 0.42, 0.20),
    "black": (0.03, 0.024, 0.02),
    "grey": (0.42, 0.41, 0.40),
}
FUR_COLOURS = {**STRAND_COLOURS, "white": (0.75, 0.74, 0.70), "ginger": (0.55, 0.22, 0.06)}
MOTION_PX = (6.0, 16.0)  # travel during the shutter, at most 2 px per sub-frame
POLYLINE_STEPS = 4  # linear segments per B-spline span of a strand
SCREEN_GLOW = (0.03, 0.06)  # the screen's radiance / its colour: exposed about as the subject is
EDGE_STREAM = 0xED9E5  # the random stream's salt: independent of the studio set's


def edge_scene_for(seed: int, width: int = 480, height: int = 360) -> SceneSpec:
    """The edges-set scene of one plate: kind from the seed, screen alternating per cycle of kinds."""
    kind = EDGE_KINDS[seed % len(EDGE_KINDS)]
    screen = "green" if (seed % len(EDGE_KINDS) + seed // len(EDGE_KINDS)) % 2 == 0 else "blue"
    return build_edge_scene(seed, kind, screen, width, height)


def _colour(table: dict[str, tuple[float, float, float]], index: int) -> tuple[str, np.ndarray]:
    name = list(table)[index % len(table)]
    return name, np.array(table[name])


def build_edge_scene(seed: int, kind: str, screen: str, width: int = 480, height: int = 360) -> SceneSpec:
    """One edges-set scene; `kind` from EDGE_KINDS, `screen` 'green' or 'blue'."""
    if kind not in EDGE_KINDS or screen not in SCREENS:
        raise ValueError(f"unknown edge scene kind {kind!r} or screen {screen!r}")
    r = np.random.default_rng([seed, EDGE_STREAM])
    subject, _, effect = kind.partition("_")
    lay = _Layout.draw(r)
    px = 2.0 * lay.half_h / height  # metres per pixel at the subject's distance
    b = _Builder(r, lay.centre, lay.scale, screen)
    cycle = seed // len(EDGE_KINDS)
    if subject == "strands":
        _, rgb = _colour(STRAND_COLOURS, cycle + seed)
        _long_hair(b, rgb * r.uniform(0.8, 1.2, 3), px)
    elif subject == "fur":
        _, rgb = _colour(FUR_COLOURS, cycle + seed)
        _fur_coat(b, rgb * r.uniform(0.8, 1.2, 3), px)
    else:
        b.tree(with_leaves=True, green=cycle % 2 == 0)
    shapes = [_as_polylines(s) for s in b.shapes]
    spec = _well_lit(_studio(r, seed, kind, screen, lay, shapes, width, height), lay, r)
    if effect == "motion":
        ang = float(r.uniform(-0.6, 0.6) + r.choice([0.0, np.pi]))
        length = float(r.uniform(*MOTION_PX)) * px
        travel = _v([np.cos(ang) * length, np.sin(ang) * length, 0.0])
        return dataclasses.replace(spec, aperture=0.0, motion=travel)
    if effect == "defocus":
        depth = -lay.subj_z
        return dataclasses.replace(
            spec, aperture=float(r.uniform(0.03, 0.06)), focus=float(depth * r.uniform(0.7, 0.8))
        )
    return dataclasses.replace(spec, aperture=0.0)  # sharp: the strands themselves are the test


def _as_polylines(shape: Shape, per_segment: int = POLYLINE_STEPS) -> Shape:
    """B-spline strands as the same curves sampled into fine linear segments.

    Mitsuba 3.9's B-spline curve intersection crashes (SIGSEGV) on some rays through these dense
    strands (reproducibly, for some sampler seeds); its linear curves do not. The uniform cubic
    B-spline of each strand (position and radius) is evaluated at `per_segment` points per span.
    """
    if shape.kind != "curves":
        return shape
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)
    basis = (
        np.stack([(1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3], axis=1)
        / 6.0
    )  # per_segment x 4
    end = np.array([[0.0, 1.0, 4.0, 1.0]]) / 6.0  # t = 1 of the last span
    lines = []
    for c in shape.curves:
        c64 = np.asarray(c, np.float64)
        spans = [basis @ c64[i : i + 4] for i in range(len(c64) - 3)]
        lines.append(np.vstack([*spans, end @ c64[-4:]]).astype(np.float32))
    return dataclasses.replace(shape, kind="lines", curves=lines)


def _well_lit(spec: SceneSpec, lay: _Layout, r: np.random.Generator) -> SceneSpec:
    """The screen as the clean plates of a careful shoot: evenly lit and free of cast shadows (a
    self-luminous screen that reflects nothing, 1.5-3 m behind the subject), so the edges, not
    the screen, decide the score. Its light still spills onto the subject; the subject keeps its
    key, fill and rim lights."""
    on_subject = [li for li in spec.lights if np.allclose(li.target, lay.centre)]
    return dataclasses.replace(
        spec,
        lights=on_subject,
        screen_depth=float(-lay.subj_z + r.uniform(1.5, 3.0)),
        screen_emission=float(r.uniform(*SCREEN_GLOW)),
        screen_reflects=False,
    )


def _long_hair(b: _Builder, rgb: np.ndarray, px: float) -> None:
    """Head and shoulders with long single-colour hair, strands 1-3 px wide."""
    r, s, c = b.rng, b.s, b.c
    head_c = c + np.array([0.0, 0.15 * s, 0.0])
    radius = 0.4 * s
    b.sphere(head_c, radius, b.skin())
    b.capsule(c + [0, -0.5 * s, -0.1 * s], c + [0, -1.6 * s, -0.1 * s], 0.5 * s, b.cloth())
    density = int(r.integers(350, 600))
    theta = np.arccos(r.uniform(-0.3, 1.0, density))
    phi = r.uniform(0, 2 * np.pi, density)
    normals = np.column_stack([np.sin(theta) * np.cos(phi), np.cos(theta), np.sin(theta) * np.sin(phi)])
    normals = normals[normals[:, 2] < 0.7]  # leave the face mostly free
    mat = Material("diffuse", _v(np.clip(rgb, 0.0, 0.9)))
    strand_r = px * float(r.uniform(0.6, 1.1))  # diameter ~1-3 px before the tip's taper
    length = radius * float(r.uniform(1.2, 2.6))
    b.strands(head_c + normals * radius, normals, length, strand_r, mat, float(r.uniform(0.08, 0.2)))


def _fur_coat(b: _Builder, rgb: np.ndarray, px: float) -> None:
    """A body and head densely covered in short strands 1-2 px wide."""
    r, s, c = b.rng, b.s, b.c
    mat = Material("diffuse", _v(np.clip(rgb, 0.0, 0.9)))
    rad = s * float(r.uniform(0.45, 0.6))
    parts = [(c, rad), (c + np.array([rad * 0.75, rad * 0.7, rad * 0.2]), rad * 0.5)]
    for centre, pr in parts:
        b.sphere(centre, pr, Material("diffuse", _v(np.clip(rgb * 0.7, 0.0, 0.9))))
        n = int(r.integers(900, 1500) * (pr / rad))
        dirs = r.normal(0, 1, (n, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        dirs = dirs[dirs[:, 2] > -0.3]
        b.strands(
            centre + dirs * pr,
            np.array([_unit(d) for d in dirs]),
            pr * float(r.uniform(0.2, 0.4)),
            px * float(r.uniform(0.45, 0.75)),
            mat,
            0.3,
            droop=0.3,
        )
