"""Foreground subjects with exact coverage: solids, hair and fur, veils, smoke, wires.

Each layer is stored as plain parameters in object coordinates and rendered for a Pose,
so a sequence can move the same subject smoothly. This module picks what a plate shows and
puts it into groups; the pieces live next to it: geometry (poses, primitives), layers
(solids, veils, smoke, the Group that composites them), strands (hair, fur and wire layers),
hair (hairdos), subjects (one sampler per subject kind) and palette (shared colours).
"""

from __future__ import annotations

import numpy as np

from .hair import sample_loose_hair
from .layers import Group, Layer, Veil
from .open_structures import sample_open
from .subjects import sample_furry, sample_person, sample_props, sample_semi, sample_wire

ELEMENT_KINDS = ("solid", "hair", "fur", "semi_transparent", "thin", "open")
MODIFIER_KINDS = ("motion_blur", "defocus", "greenish_fg", "hdr", "large")


def _random_motion(rng: np.random.Generator, scale: float) -> np.ndarray:
    """A group's Group.motion: drift, wobble and sway for sequences."""
    return np.array(
        [
            rng.normal(0, 1.5) * scale,
            rng.normal(0, 0.5) * scale,
            rng.uniform(0, 10) * scale,
            rng.uniform(0, 4) * scale,
            rng.uniform(0.2, 0.6),
            rng.uniform(0, 2 * np.pi),
            rng.normal(0, 0.03),
        ],
        np.float32,
    )


def sample_groups(
    rng: np.random.Generator,
    height: int,
    width: int,
    elements: tuple[str, ...],
    modifiers: tuple[str, ...],
    light_check: float = 0.0,
    screen_colour: np.ndarray | None = None,
) -> tuple[list[Group], tuple[str, ...]]:
    """Build the subject (back to front) for the requested element kinds and modifiers
    (light_check: the share of people in screen-tinted light checked shirting).

    Returns the groups and the tags of what was actually drawn.
    """
    h, w = height, width
    scale = min(h, w) / 256.0
    large = "large" in modifiers
    green = "greenish_fg" in modifiers
    hdr = "hdr" in modifiers
    tags: list[str] = []
    groups: list[Group] = []

    main: list[Layer] = []
    pivot = (w / 2, h / 2)
    person = ("hair" in elements and rng.random() < 0.75) or ("solid" in elements and rng.random() < 0.5)
    if person and ("solid" in elements or "hair" in elements):
        layers, pivot = sample_person(
            rng, h, w, scale, large, green, hdr, "hair" in elements, light_check, screen_colour
        )
        main += layers
        tags += ["solid", "person"] + (["hair"] if "hair" in elements else [])
        green = hdr = False  # used up by the person
    else:
        if "solid" in elements:
            layers, pivot = sample_props(rng, h, w, scale, large, green, hdr)
            main += layers
            tags.append("solid")
            green = hdr = False
        if "hair" in elements:
            main.extend(sample_loose_hair(rng, h, w, scale, hdr, green))
            tags.append("hair")
            hdr = green = False
    if main:
        groups.append(Group(main, pivot, motion=_random_motion(rng, scale)))
    if "fur" in elements:
        groups.append(
            Group(
                sample_furry(rng, h, w, scale, large, green),
                (w / 2, h / 2),
                motion=_random_motion(rng, scale),
            )
        )
        tags += ["fur", "solid"]
        green = False
    if "semi_transparent" in elements:
        layer = sample_semi(rng, h, w, scale, green, hdr)
        groups.append(Group([layer], (w / 2, h / 2), motion=_random_motion(rng, scale)))
        tags.append("semi_transparent")
        green = False
        hdr = hdr and not (isinstance(layer, Veil) and layer.highlight is not None)
    if "thin" in elements:
        wires = [sample_wire(rng, h, w, scale, green) for _ in range(int(rng.integers(1, 4)))]
        groups.append(Group(list(wires), (w / 2, h / 2), motion=_random_motion(rng, scale) * np.float32(0.3)))
        tags.append("thin")
        green = False
    if "open" in elements:
        motion = _random_motion(rng, scale) * np.float32(0.5)
        groups.append(Group(sample_open(rng, h, w, scale, green), (w / 2, h / 2), motion=motion))
        tags.append("open")
        green = False
    if "greenish_fg" in modifiers and not green:
        tags.append("greenish_fg")
    if "hdr" in modifiers and not hdr and "hdr" not in tags:
        tags.append("hdr")
    if large and groups:
        tags.append("large")
    if groups and "motion_blur" in modifiers:
        targets = groups if rng.random() < 0.4 else [groups[int(rng.integers(len(groups)))]]
        for g in targets:
            length = rng.uniform(3, 30) * scale
            ang = rng.uniform(0, np.pi)
            g.motion_blur = (float(length * np.cos(ang)), float(length * np.sin(ang)))
        tags.append("motion_blur")
    if groups and "defocus" in modifiers:
        targets = groups if rng.random() < 0.5 else [groups[int(rng.integers(len(groups)))]]
        for g in targets:
            g.defocus = float(rng.uniform(0.8, 5.0) * scale)
        tags.append("defocus")
    return groups, tuple(dict.fromkeys(tags))
