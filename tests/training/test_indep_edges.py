"""The independent set's edges selection (strands, fur, leaves; motion blur, defocus) and the
degraded copy, without changing the studio set's scenes."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

from gsrender.cli.indep_val import main as build_main
from gsrender.training.indep_val import dataset as D
from gsrender.training.indep_val.build_set import scene_for
from gsrender.training.indep_val.degrade import degrade_plate
from gsrender.training.indep_val.edge_scenes import EDGE_KINDS, STRAND_COLOURS, edge_scene_for

# sha256 of the studio set's 24 scenes for seeds 7000-7023 at 480x360, as first published
STUDIO_7000_DIGEST = "5eeae7ca6268f7436d9097c4a2dbbfd54bd8923d8be616710df6ddfea7e1b041"


ADDED_LATER = {"motion": (0.0, 0.0, 0.0), "screen_reflects": True}  # fields added with the edges set


def _spec_digest(specs) -> str:
    """Every number of the scenes (fields added later with their neutral default are left out)."""
    h = hashlib.sha256()

    def walk(x) -> None:
        if dataclasses.is_dataclass(x):
            for f in dataclasses.fields(x):
                if f.name in ADDED_LATER:  # checked separately
                    continue
                h.update(f.name.encode())
                walk(getattr(x, f.name))
        elif isinstance(x, (list, tuple)):
            h.update(b"[")
            for v in x:
                walk(v)
            h.update(b"]")
        elif isinstance(x, np.ndarray):
            h.update(np.ascontiguousarray(x, np.float64).tobytes())
        elif isinstance(x, float):
            h.update(np.float64(x).tobytes())
        else:
            h.update(repr(x).encode())

    for s in specs:
        walk(s)
    return h.hexdigest()


def test_studio_scenes_of_seed_7000_are_unchanged() -> None:
    specs = [scene_for(7000 + i, 480, 360) for i in range(24)]
    assert all(getattr(s, k) == v for s in specs for k, v in ADDED_LATER.items())
    assert _spec_digest(specs) == STUDIO_7000_DIGEST


def _subject_depth(spec) -> float:
    """Mean distance of the subject's spheres and curve points from the camera."""
    zs = [s.center[2] for s in spec.subject if s.kind == "sphere"]
    zs += [float(c[:, 2].mean()) for s in spec.subject if s.kind in ("curves", "lines") for c in s.curves]
    return -float(np.mean(zs))


def _strand_diameters_px(spec) -> np.ndarray:
    """Every strand's diameter at its first point, in pixels at the subject's distance."""
    px = 2 * _subject_depth(spec) * np.tan(np.deg2rad(spec.fov_deg) / 2) / spec.height
    radii = np.concatenate([c[0:1, 3] for s in spec.subject if s.kind == "lines" for c in s.curves])
    return 2 * radii / px


def test_edge_scenes_cover_every_kind_screen_and_strand_colour() -> None:
    specs = [edge_scene_for(9000 + i) for i in range(2 * len(EDGE_KINDS))]
    assert {(s.kind, s.screen) for s in specs} == {(k, c) for k in EDGE_KINDS for c in ("green", "blue")}
    assert _spec_digest([edge_scene_for(9004)]) == _spec_digest([edge_scene_for(9004)])  # repeatable
    colours: set[tuple[float, float, float]] = set()
    for s in specs:
        if s.kind.startswith("strands"):
            (hair,) = [sh for sh in s.subject if sh.kind == "lines" and sh.material.kind == "diffuse"]
            colours.add(hair.material.rgb)
            assert len(hair.curves) > 1000  # many strands
            roots = _strand_diameters_px(s)  # each strand's first point, near its root
            assert 0.6 < np.median(roots) < 3.0
    nearest = {
        min(STRAND_COLOURS, key=lambda n: np.abs(np.subtract(STRAND_COLOURS[n], c)).sum()) for c in colours
    }
    assert len(nearest) >= 3  # one colour per plate (brown, blond, black, grey), several across the set


def test_motion_and_defocus_kinds_set_the_camera() -> None:
    for i in range(len(EDGE_KINDS)):
        s = edge_scene_for(9000 + i)
        moving, defocused = s.kind.endswith("_motion"), s.kind.endswith("_defocus")
        assert any(s.motion) == moving
        assert (s.aperture > 0) == defocused
        if defocused:
            assert s.aperture >= 0.03 and s.focus < 0.85 * _subject_depth(s)


def test_edge_screens_are_clean_plates_lit_only_by_themselves() -> None:
    for i in range(len(EDGE_KINDS)):
        s = edge_scene_for(9000 + i)
        centre_z = -_subject_depth(s)
        assert not s.screen_reflects and s.screen_emission > 0
        assert s.screen_depth > -centre_z + 1.0  # well behind the subject
        assert all(li.target[2] > -s.screen_depth + 0.5 for li in s.lights)  # no lamp aimed at the screen


def test_an_edge_plates_screen_is_even_and_without_shadow() -> None:
    pytest.importorskip("mitsuba", reason="the renderer is the optional 'validate' extra")
    from gsrender.training.indep_val import render as R

    spec = edge_scene_for(9001, 48, 36)  # fur, lit by its key, fill and rim lights
    r = R.finish(spec, R.render_passes(spec, spp=16))
    level = r.screen.max(axis=2)
    assert float(level.std()) < 1e-3 * float(level.mean())
    behind = (r.alpha == 0) & (r.plate_clean.max(axis=2) > 0)
    assert np.allclose(r.plate_clean[behind], r.screen[behind], rtol=1e-4, atol=1e-6)  # no cast shadow


def test_a_moving_subject_is_blurred_and_its_plate_is_still_the_alpha_composite() -> None:
    pytest.importorskip("mitsuba", reason="the renderer is the optional 'validate' extra")
    from gsrender.training.indep_val import render as R
    from gsrender.training.indep_val.scene import Material, Shape

    w, h = 64, 48
    base = edge_scene_for(9000, w, h)
    black = Material("diffuse", (0.0, 0.0, 0.0))
    depth = 2.5
    px = 2 * depth * np.tan(np.deg2rad(base.fov_deg) / 2) / h
    still = dataclasses.replace(
        base,
        subject=[Shape("sphere", black, center=(0.0, 0.0, -depth), radius=12 * px)],
        lights=[],
        screen_emission=1.0,
        wrinkle_amp=0.0,
        noise_gain=0.0,
        noise_read=0.0,
        aperture=0.0,
    )
    moving = dataclasses.replace(still, motion=(10 * px, 0.0, 0.0))
    mixed = []
    for spec in (still, moving):
        r = R.finish(spec, R.render_passes(spec, spp=16))
        row = r.alpha[h // 2]
        mixed.append(int(((row > 0.02) & (row < 0.98)).sum()))
        comp = (1 - r.alpha[..., None]) * r.screen  # fg is black: no spill, no shadow
        assert np.allclose(r.plate_clean, comp, atol=2e-3)
    assert mixed[0] <= 4 and mixed[1] >= 12  # two sharp edge pixels vs two ~10 px ramps


def _tiny_set(folder: Path) -> None:
    rng = np.random.default_rng(1)
    alpha = np.zeros((24, 32), np.float32)
    alpha[6:18, 8:24] = 1.0
    screen = np.broadcast_to(np.array([0.06, 0.42, 0.09], np.float32), (24, 32, 3))
    fg = np.where(alpha[..., None] > 0, rng.uniform(0.1, 0.6, (24, 32, 3)), 0).astype(np.float32)
    plate = alpha[..., None] * fg + (1 - alpha[..., None]) * screen
    files = D.write_plate(
        folder, "ie000_x_green", {"plate": plate, "alpha": alpha, "fg": fg, "screen": screen}
    )
    D.write_manifest(
        folder, {"set": "edges", "plates": [{"name": "ie000_x_green", "seed": 5, "files": files}]}
    )


def test_degraded_copy_keeps_alpha_and_lights_fg_with_the_plate(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "deg"
    src.mkdir()
    _tiny_set(src)
    assert build_main(["--degrade", str(src), "--out", str(out)]) == 0
    [(_, p0, a0, f0)] = D.load_indep_val(src)
    [(_, p1, a1, f1)] = D.load_indep_val(out)
    assert np.array_equal(a0, a1)
    gain = f1[a0 > 0] / np.maximum(f0[a0 > 0], 1e-6)
    assert 0.5 < gain.min() and gain.max() < 1.35 and gain.std() > 0  # the same uneven light
    assert 0.003 < float(np.abs(p1 - p0).mean()) < 0.2  # visibly degraded, still the same shot
    again = degrade_plate(p0, f0, p0, 5)[0]
    assert np.allclose(again, p1, atol=1e-3)  # repeatable (half-float plate file)
    assert D.read_manifest(out)["plates"][0]["degraded"]["jpeg_quality"] in range(70, 86)


def test_degrade_of_a_missing_set_is_one_line_exit_3(tmp_path: Path, capsys) -> None:
    assert build_main(["--degrade", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "manifest.json" in err


_CRASH_PROBE = """
import dataclasses, tempfile
from pathlib import Path
import numpy as np
from gsrender.training.indep_val import render as R
from gsrender.training.indep_val.edge_scenes import edge_scene_for
spec = edge_scene_for(9003)  # strands_motion: sub-frame 6, sampler seed 72030 crashed B-splines
off = np.asarray(spec.motion) * ((6 + 0.5) / R.MOTION_SUBFRAMES - 0.5)
sub = dataclasses.replace(spec, subject=[R.shifted(s, off) for s in spec.subject], motion=(0.0, 0.0, 0.0))
mi = R.mitsuba()
with tempfile.TemporaryDirectory() as tmp:
    mi.render(mi.load_dict(R._Dicts(sub, Path(tmp)).scene("plate", 4)), seed=72030, spp=4)
print("rendered")
"""


def test_strands_render_where_the_renderers_b_splines_crashed() -> None:
    pytest.importorskip("mitsuba", reason="the renderer is the optional 'validate' extra")
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", _CRASH_PROBE], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "rendered" in res.stdout, res.stderr[-500:]
