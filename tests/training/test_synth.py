"""Procedural plates: reproducible, in range, and with ground truth that is exact."""

from __future__ import annotations

import numpy as np
import pytest

from gsrender.engine.encoding import srgb_oetf
from gsrender.training.synth.generator import (
    Plate,
    generate_clean,
    generate_plate,
    render_clean,
    sample_scene,
)
from gsrender.training.synth.screen import make_screen
from gsrender.training.synth.sequence import generate_sequence

S = 64  # small plates keep the suite fast


def _same(a: Plate, b: Plate) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("plate", "alpha", "fg", "screen")) and (
        a.kinds == b.kinds
    )


def test_same_seed_is_bit_identical_and_seeds_differ() -> None:
    a, b = generate_plate(11, S, S), generate_plate(11, S, S)
    assert _same(a, b)
    c = generate_plate(12, S, S)
    assert not np.array_equal(a.plate, c.plate)


@pytest.mark.parametrize("seed", range(6))
def test_shapes_dtypes_and_ranges(seed: int) -> None:
    p = generate_plate(seed, 40, 56)
    for name, arr, shape in (
        ("plate", p.plate, (40, 56, 3)),
        ("alpha", p.alpha, (40, 56)),
        ("fg", p.fg, (40, 56, 3)),
        ("screen", p.screen, (40, 56, 3)),
    ):
        assert arr.dtype == np.float32, name
        assert arr.shape == shape, name
        assert np.isfinite(arr).all(), name
    assert p.alpha.min() >= 0.0 and p.alpha.max() <= 1.0
    assert p.fg.min() >= 0.0 and p.screen.min() >= 0.0
    assert np.all(p.fg[p.alpha == 0] == 0.0)  # fg is defined only under coverage
    assert isinstance(p.kinds, tuple) and all(isinstance(k, str) for k in p.kinds)


@pytest.mark.parametrize(
    "kinds",
    [
        ("solid", "hair"),
        ("solid", "motion_blur", "greenish_fg"),
        ("semi_transparent", "defocus"),
        ("thin", "fur"),
        ("hair", "large", "hdr"),
    ],
)
def test_composite_is_exact_before_the_camera(kinds: tuple[str, ...]) -> None:
    seed = 3
    clean = generate_clean(seed, S, S, kinds)
    a = clean.alpha[..., None]
    expected = a * clean.fg_spill + (1.0 - a) * clean.screen
    np.testing.assert_allclose(clean.image, expected, rtol=0, atol=1e-6)
    # the plate's ground truth is the clean composite's, the camera only touches the plate
    p = generate_plate(seed, S, S, kinds)
    assert np.array_equal(p.alpha, clean.alpha)
    assert np.array_equal(p.fg, clean.fg)
    assert np.array_equal(p.screen, clean.screen)
    assert 0 < np.abs(p.plate - clean.image).mean() < 0.05


def test_spill_is_in_the_plate_but_not_in_the_ground_truth() -> None:
    clean = generate_clean(5, S, S, ("hair", "solid", "spill"))
    assert "spill" in generate_plate(5, S, S, ("hair", "solid", "spill")).kinds
    cov = clean.alpha > 0
    extra = (clean.fg_spill - clean.fg)[cov]
    assert extra.min() >= 0.0 and extra[:, 1].max() > 0.01  # green light added under coverage
    no = generate_clean(5, S, S, ("hair", "solid", "no_spill"))
    assert np.array_equal(no.fg_spill, no.fg)


def test_hair_has_fractional_coverage() -> None:
    for seed in range(3):
        p = generate_plate(seed, S, S, ("hair",))
        partial = (p.alpha > 0.01) & (p.alpha < 0.99)
        assert partial.mean() > 0.01, seed
        assert "hair" in p.kinds


def test_semi_transparent_and_motion_blur_make_partial_alpha() -> None:
    p = generate_plate(2, S, S, ("semi_transparent",))
    inner = p.alpha[(p.alpha > 0.02)]
    assert inner.size and np.median(inner) < 0.98
    q = generate_plate(4, S, S, ("solid", "motion_blur"))
    assert "motion_blur" in q.kinds
    assert ((q.alpha > 0.05) & (q.alpha < 0.95)).sum() > 20


def test_markers_belong_to_the_screen() -> None:
    with_m = make_screen(np.random.default_rng(8), S, S, markers=True)
    without = make_screen(np.random.default_rng(8), S, S, markers=False)
    assert with_m.marker_cover is not None and without.marker_cover is None
    drawn = with_m.marker_cover > 0.5
    assert drawn.any()
    assert np.array_equal(with_m.image[with_m.marker_cover == 0], without.image[with_m.marker_cover == 0])
    assert np.abs(with_m.image[drawn] - without.image[drawn]).max() > 0.01
    # in a plate they are background: alpha 0, and visible in the clean screen
    scene = sample_scene(np.random.default_rng(9), S, S, ("empty", "markers"))
    clean = render_clean(scene)
    assert "markers" in scene.tags and not clean.alpha.any()
    assert np.array_equal(clean.image, clean.screen)


def test_empty_plate_and_hdr_and_quantisation() -> None:
    e = generate_plate(1, S, S, ("empty",))
    assert not e.alpha.any() and "empty" in e.kinds
    h = generate_plate(6, S, S, ("solid", "hdr", "float"))
    assert h.fg.max() > 1.0 and h.plate.max() > 1.0 and "hdr" in h.kinds
    q = generate_plate(6, S, S, ("solid", "8bit_420"))
    codes = srgb_oetf(q.plate) * 255.0
    assert np.abs(codes - np.rint(codes)).max() < 1e-2  # 8-bit sRGB code values
    assert q.plate.max() <= 1.0


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown plate kinds"):
        generate_plate(0, S, S, ("sparkles",))


def test_sequence_is_smooth_and_reproducible() -> None:
    seq = generate_sequence(4, 3, 48, 64, ("solid", "hair"))
    again = generate_sequence(4, 3, 48, 64, ("solid", "hair"))
    assert len(seq) == 3 and all(_same(a, b) for a, b in zip(seq, again, strict=True))
    assert len({p.kinds for p in seq}) == 1
    steps = [np.abs(a.alpha - b.alpha).mean() for a, b in zip(seq, seq[1:], strict=False)]
    assert all(0 < s < 0.1 for s in steps)  # it moves, but not a new subject each frame
    assert not np.array_equal(seq[0].plate, seq[1].plate)


def test_open_subjects_show_the_screen_through_their_gaps() -> None:
    """Plants, nets and lace: screen inside the subject's outline, sub-pixel twigs, exact GT."""
    holes, fractional = [], []
    for seed in range(4):
        clean = generate_clean(seed, S, S, ("open",))
        a = clean.alpha
        np.testing.assert_allclose(
            clean.image, a[..., None] * clean.fg_spill + (1 - a[..., None]) * clean.screen, atol=1e-6
        )
        ys, xs = np.nonzero(a > 0)
        box = a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        holes.append(float((box == 0).mean()))
        fractional.append(float(((a > 0.02) & (a < 0.98)).sum() / max(1, (a > 0.02).sum())))
    assert min(holes) > 0.2  # at least a fifth of the subject's box is screen
    assert max(fractional) > 0.1  # thin parts give partial coverage


def test_some_screens_are_blue() -> None:
    from gsrender.training.synth.screen import sample_screen_colour

    rng = np.random.default_rng(0)
    colours = [sample_screen_colour(rng)[0] for _ in range(200)]
    blue = sum(int(np.argmax(c)) == 2 for c in colours)
    green = sum(int(np.argmax(c)) == 1 for c in colours)
    assert 25 < blue < 80 and blue + green == 200


def test_lighting_mix_sets_how_often_and_how_dark_subject_shadows_are() -> None:
    from gsrender.training.synth.generator import DEFAULT_LIGHTING, LightingMix

    # the default draws exactly what plates drew before the knobs existed
    assert DEFAULT_LIGHTING == LightingMix(0.15, (0.15, 0.5), (0.0, 0.06))
    default = generate_plate(5, S, S, lighting=LightingMix()).plate
    assert np.array_equal(generate_plate(5, S, S).plate, default)
    many = LightingMix(0.9, (0.7, 0.8))
    with_shadow = sum("shadow" in generate_plate(s, 64, 64, lighting=many).kinds for s in range(20))
    assert with_shadow >= 12  # 90% of the plates with a subject
    import dataclasses

    from gsrender.training.synth.generator import render_clean, sample_scene

    scene = sample_scene(np.random.default_rng(7), S, S, ("solid",), LightingMix(1.0, (0.8, 0.8)))
    assert scene.shadow is not None and scene.shadow.strength == np.float64(0.8)
    lit = render_clean(dataclasses.replace(scene, shadow=None)).screen
    darkest = (render_clean(scene).screen / np.maximum(lit, 1e-6)).min()
    assert darkest < 0.5  # the shadow takes away most of the light somewhere


def test_lighting_mix_casts_shadows_farther_and_sharper_with_reach_and_blur() -> None:
    """The same draws: reach scales the offset, blur the softness; the default keeps old plates."""
    from gsrender.training.synth.generator import LightingMix, sample_scene

    def shadow(lighting: LightingMix):
        scene = sample_scene(np.random.default_rng(11), 256, 256, ("solid",), lighting)
        assert scene.shadow is not None
        return scene.shadow

    near = shadow(LightingMix(1.0, (0.5, 0.5)))
    far = shadow(LightingMix(1.0, (0.5, 0.5), shadow_reach=0.4, shadow_blur=(1.0, 1.0)))
    assert far.dx == pytest.approx(near.dx * 4.0) and far.dy == pytest.approx(near.dy * 4.0)
    assert abs(near.dx) <= 0.1 * 256 and 0.0 <= near.dy <= 0.1 * 256
    assert far.sigma == pytest.approx(1.0) and 3.0 <= near.sigma <= 20.0


def test_lighting_mix_spill_base_tints_the_whole_subject() -> None:
    """Even screen bounce on the subject: same scene otherwise (same draws), more green inside it."""
    from gsrender.training.synth.generator import LightingMix

    kinds = ["solid", "spill", "no_markers"]
    plain = generate_plate(3, S, S, kinds, LightingMix(spill_base=(0.0, 0.0)))
    tinted = generate_plate(3, S, S, kinds, LightingMix(spill_base=(0.2, 0.2)))
    np.testing.assert_array_equal(plain.alpha, tinted.alpha)  # the base is one draw, the scene the same
    inside = plain.alpha > 0.99
    assert inside.sum() > 100
    gain = tinted.plate[inside][:, 1].mean() - plain.plate[inside][:, 1].mean()
    assert gain > 0.02  # the screen channel rises across the subject, not only at its edges


def test_woven_check_is_a_light_ground_crossed_by_thin_lines_that_tiles() -> None:
    """The procedural shirting: mostly near-white, some dark thread lines, a 128 px repeat."""
    from gsrender.training.synth.textures import woven_check

    cloth = woven_check()
    lum = cloth.mean(axis=2)
    assert np.median(lum) > 200 and 0.02 < (lum < 140).mean() < 0.3
    np.testing.assert_array_equal(cloth[:128, :128], cloth[128:256, 256:384])


def test_light_check_dresses_people_in_screen_tinted_shirting_and_only_when_asked() -> None:
    """light_check = 1: every person's torso wears the check, its grey tinted toward the screen's
    hue; the default (0) never draws it, nor does the random texture pool."""
    from gsrender.training.synth.generator import LightingMix
    from gsrender.training.synth.layers import Solid
    from gsrender.training.synth.textures import PATTERNS, SOURCES, random_texture

    check = len(SOURCES) + PATTERNS.index("check")

    def torsos(lighting: LightingMix) -> list[tuple[object, np.ndarray]]:
        found = []
        for seed in range(30):
            scene = sample_scene(np.random.default_rng(seed), S, S, ("solid",), lighting)
            if "person" in scene.tags:
                body = next(la for la in scene.groups[0].layers if isinstance(la, Solid))
                found.append((body.textures[0], scene.screen.colour))
        return found

    dressed = torsos(LightingMix(light_check=1.0))
    assert len(dressed) >= 5
    for tex, screen in dressed:
        assert tex.source == check
        grey = tex.matrix @ np.ones(3, np.float32)  # what a neutral thread becomes
        assert int(np.argmax(grey)) == int(np.argmax(screen)) and grey.min() > 0.25
    assert all(tex.source != check for tex, _ in torsos(LightingMix()))
    rng = np.random.default_rng(0)
    assert all(random_texture(rng).source < len(SOURCES) for _ in range(200))


def test_fold_depth_sets_how_much_light_the_wrinkles_take() -> None:
    """The same wrinkles (same draws) at depth 0, 0.02 and 0.45: the deep ones halve the light
    somewhere, the shallow ones never take more than a few per cent; the hue stays the screen's."""

    def screen(depth: float) -> np.ndarray:
        return make_screen(np.random.default_rng(0), 128, 128, fold_depth=(depth, depth)).image

    flat = screen(0.0)
    shallow, deep = screen(0.02) / flat, screen(0.45) / flat
    assert shallow.min() > 0.95 and deep.min() < 0.6
    np.testing.assert_allclose(deep[..., 0], deep[..., 1], rtol=1e-4)  # light, not colour


@pytest.mark.parametrize(
    "knob, mix_name, default, tags",
    [
        ("camera_mix", "CameraMix", (0.2, 0.15), {"motion_blur", "defocus"}),
        ("subject_mix", "SubjectMix", (0.25, 0.2), {"semi_transparent", "thin"}),
    ],
)
def test_a_mix_sets_how_often_random_plates_are_drawn_with_its_kinds(knob, mix_name, default, tags) -> None:
    """How often plates are blurred or defocused (CameraMix), or hold a semi-transparent slab and
    thin strands (SubjectMix): the default draws exactly the plates drawn before the knob
    existed; all-in puts both kinds in every random plate with a subject, none-in in none."""
    from gsrender.training.synth import generator

    mix = getattr(generator, mix_name)
    assert getattr(generator, f"DEFAULT_{knob.upper()}") == mix(*default)
    assert np.array_equal(generate_plate(5, S, S).plate, generate_plate(5, S, S, **{knob: mix()}).plate)

    def kinds(shares: tuple[float, float]) -> list[set[str]]:
        return [set(generate_plate(s, 64, 64, **{knob: mix(*shares)}).kinds) for s in range(12)]

    assert all(tags <= k for k in kinds((1.0, 1.0)) if "empty" not in k)
    assert not any(tags & k for k in kinds((0.0, 0.0)))
