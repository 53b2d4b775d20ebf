"""Independent validation set: path-traced plates whose ground truth matches the plate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mitsuba", reason="the renderer is the optional 'validate' extra (pip install mitsuba)")

from gsrender.cli import evaluate as evaluate_cli  # noqa: E402
from gsrender.cli.indep_val import main as build_main  # noqa: E402
from gsrender.training.indep_val import IndepValError, load_indep_val  # noqa: E402
from gsrender.training.indep_val import render as R  # noqa: E402
from gsrender.training.indep_val.build_set import render_set  # noqa: E402
from gsrender.training.indep_val.scene import Light, Material, Shape, build_scene, quad_matrix  # noqa: E402

W, H = 64, 48


def _calibration_scene(**changes):
    """A black subject (curves, a sphere, a lace quad) in front of a backlit green screen and no
    lamps: the subject reflects nothing (no spill) and casts no shadow on the screen, so
    plate = alpha * fg + (1 - alpha) * clean screen must hold at every pixel (fg = 0 here)."""
    black = Material("diffuse", (0.0, 0.0, 0.0))
    rng = np.random.default_rng(3)
    hairs = []
    for x in np.linspace(-0.55, -0.1, 14):
        t = np.linspace(0, 1, 5)[:, None]
        pts = np.column_stack(
            [x + 0.08 * np.sin(3 * t[:, 0] + x * 9), 0.45 - 0.9 * t[:, 0], -2.4 + 0 * t[:, 0]]
        )
        hairs.append(np.column_stack([pts, np.full(5, 0.004 + rng.uniform(0, 0.004))]).astype(np.float32))
    subject = [
        Shape("sphere", black, center=(0.35, 0.1, -2.5), radius=0.28),
        Shape("curves", black, curves=hairs),
        Shape(
            "quad",
            Material("diffuse", (0.0, 0.0, 0.0), opacity="lace", pattern_seed=5),
            matrix=quad_matrix(
                np.array([0.1, -0.4, -2.3]), np.array([0.0, 0.0, 1.0]), np.array([0, 1.0, 0]), 0.35, 0.2
            ),
        ),
    ]
    spec = build_scene(11, "hair", "green", W, H)
    spec = dataclasses.replace(
        spec,
        subject=subject,
        aperture=0.0,
        wrinkle_amp=0.02,
        noise_gain=0.0,
        noise_read=0.0,
        lights=[],
        screen_emission=1.0,
    )
    return dataclasses.replace(spec, **changes)


@pytest.fixture(scope="module")
def calib():
    spec = _calibration_scene()
    return spec, R.finish(spec, R.render_passes(spec, spp=16))


def test_same_seed_renders_identical_pixels(calib) -> None:
    spec, first = calib
    again = R.finish(spec, R.render_passes(spec, spp=16))
    for k in ("plate", "alpha", "fg", "screen"):
        assert np.array_equal(getattr(first, k), getattr(again, k)), k
    other = R.render_passes(dataclasses.replace(spec, seed=spec.seed + 1), spp=16)
    assert not np.array_equal(other["plate"], R.render_passes(spec, spp=16)["plate"])


def test_alpha_exact_on_screen_and_opaque_interior(calib) -> None:
    spec, r = calib
    a = r.alpha
    assert a.dtype == np.float32 and a.shape == (H, W)
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert np.all(a[:, -4:] == 0.0) and np.all(a[-3:, :] == 0.0)  # pure screen: right edge, bottom rows
    # the sphere's interior (pinhole camera at the origin looking down -z, fov_y from the spec)
    f = (H / 2) / np.tan(np.deg2rad(spec.fov_deg) / 2)
    cx, cy = W / 2 + f * 0.35 / 2.5, H / 2 - f * 0.1 / 2.5
    rad = f * 0.28 / 2.5
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 < (0.6 * rad) ** 2
    assert inside.sum() > 5 and np.all(a[inside] == 1.0)
    frac = a[(a > 0.02) & (a < 0.98)]
    assert frac.size > 20  # hair strands and lace give real partial coverage


def test_plate_is_alpha_composite_where_there_is_no_spill(calib) -> None:
    _, r = calib
    assert np.abs(r.fg_premult).max() < 1e-6  # the black subject contributes no light of its own
    model = r.alpha[..., None] * r.fg + (1.0 - r.alpha[..., None]) * r.screen
    err = np.abs(r.plate_clean - model)
    scale = float(r.screen.max())
    assert err.mean() < 1e-4 * scale and err.max() < 1e-2 * scale  # exact up to float rounding
    # and it is not true for an alpha that ignores partial coverage
    hard = (r.alpha > 0.5).astype(np.float32)[..., None]
    assert np.abs(r.plate_clean - (1 - hard) * r.screen).mean() > 3 * err.mean()


def test_thin_glass_alpha_is_its_fresnel_reflectance() -> None:
    pane = Shape(
        "quad",
        Material("thin_glass"),
        matrix=quad_matrix(
            np.array([0.0, 0.0, -2.5]), np.array([0, 0, 1.0]), np.array([0, 1.0, 0]), 0.5, 0.5
        ),
    )
    spec = _calibration_scene(subject=[pane])
    a = R.finish(spec, R.render_passes(spec, spp=64)).alpha
    centre = float(a[H // 2 - 3 : H // 2 + 3, W // 2 - 3 : W // 2 + 3].mean())
    reflect = 0.04 * 2 / 1.04  # glass n = 1.5 at normal incidence, both faces with interreflection
    assert abs(centre - reflect) < 0.02


def test_lit_screen_spills_its_colour_onto_the_subject() -> None:
    white = Material("diffuse", (0.8, 0.8, 0.8))
    spec = _calibration_scene(
        subject=[Shape("sphere", white, center=(0.0, 0.0, -2.0), radius=0.35)],
        screen_depth=2.5,
        screen_emission=0.0,
        lights=[Light("area", (1.5, 1.5, 0.0), (0, 0, -2.5), (30, 30, 30), size=1.0)],
    )
    r = R.finish(spec, R.render_passes(spec, spp=16))
    inside = r.alpha == 1.0
    spill = (r.plate_clean - r.fg_premult)[inside].mean(axis=0)
    assert spill[1] > 0 and spill[1] > 2 * spill[0] and spill[1] > 2 * spill[2]  # green light from the screen


def test_set_on_disk_loads_and_evaluates(tmp_path: Path, capsys) -> None:
    out = tmp_path / "iv"
    manifest = render_set(out, count=2, seed=7001, spp=16, width=W, height=H, log=lambda _: None)
    assert manifest["renderer"].startswith("mitsuba") and [p["kind"] for p in manifest["plates"]] == [
        "foliage",
        "person",
    ]
    plates = load_indep_val(out)
    assert [p[0] for p in plates] == [p["name"] for p in manifest["plates"]]
    for _, plate, alpha, fg in plates:
        assert plate.shape == (H, W, 3) and alpha.shape == (H, W) and fg.shape == (H, W, 3)
        assert plate.dtype == alpha.dtype == fg.dtype == np.float32
    assert evaluate_cli.main(["--model", "classic", "--data", f"indep:{out}", "--markdown"]) == 0
    text = capsys.readouterr().out
    assert "| plate | SAD classic |" in text and plates[1][0] in text and "| mean |" in text


def test_plate_files_round_trip(tmp_path: Path) -> None:
    from gsrender.training.indep_val import dataset as D

    rng = np.random.default_rng(0)
    imgs = {
        "plate": rng.random((5, 7, 3)),
        "alpha": rng.random((5, 7)),
        "fg": rng.random((5, 7, 3)),
        "screen": rng.random((5, 7, 3)),
    }
    files = D.write_plate(tmp_path, "p0", imgs)
    D.write_manifest(tmp_path, {"plates": [{"name": "p0", "files": files}]})
    [(name, plate, alpha, fg)] = load_indep_val(tmp_path)
    assert name == "p0"
    assert np.array_equal(alpha, imgs["alpha"].astype(np.float32)) and np.array_equal(
        fg, imgs["fg"].astype(np.float32)
    )
    assert np.allclose(plate, imgs["plate"], rtol=1e-3, atol=1e-3)  # half float, like a camera EXR


def test_missing_set_is_one_line_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(IndepValError, match="manifest.json"):
        load_indep_val(tmp_path)
    assert evaluate_cli.main(["--model", "classic", "--data", f"indep:{tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "manifest.json" in err


@pytest.mark.parametrize("bad", [["--count", "0"], ["--spp", "32"]])
def test_bad_options_exit_2(tmp_path: Path, bad: list[str]) -> None:
    assert build_main(["--out", str(tmp_path), *bad]) == 2
