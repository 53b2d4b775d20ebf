"""Pipeline conventions end to end (alpha per format, metadata, windows, colour spaces): the real CLI."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from gsrender.cli import info
from gsrender.cli.render import main
from gsrender.engine import colour
from gsrender.engine.image_io import probe, read_frame
from tests.conftest import make_plate

AP1 = (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)
REC709 = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)


def run(*args: object) -> int:
    return main([str(a) for a in args])


def write(path: Path, px: np.ndarray, fmt: str = "float", names=None, attrs=None, **win) -> Path:
    """Write with OIIO directly (independent of the writer under test)."""
    spec = oiio.ImageSpec(px.shape[1], px.shape[0], px.shape[2], fmt)
    if names:
        spec.channelnames = tuple(names)
    for key, value in win.items():
        setattr(spec, key, value)
    for key, value in (attrs or {}).items():
        if isinstance(value, tuple) and isinstance(value[0], str):
            spec.attribute(key, oiio.TypeDesc(value[0]), value[1])
        else:
            spec.attribute(key, value)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(np.ascontiguousarray(px, np.float32)), out.geterror()
    out.close()
    return path


def read(path: Path) -> tuple[np.ndarray, oiio.ImageSpec]:
    cfg = oiio.ImageSpec()
    cfg.attribute("oiio:UnassociatedAlpha", 1)
    buf = oiio.ImageBuf(str(path), 0, 0, cfg)
    return buf.get_pixels(oiio.FLOAT), buf.spec()


def _disc_centre(h: int = 72, w: int = 104) -> tuple[int, int]:
    return int(h * 0.55), int(w * 0.4)


# ---------------------------------------------------------------- 2: opaque pixels are the input


@pytest.mark.parametrize("dtype", ["float", "half"])
def test_acescg_out_of_gamut_colours_are_unchanged_where_alpha_is_1(tmp_path, dtype):
    plate = colour.convert(make_plate(seed=1), colour.WORKING_SPACE, "ACEScg")
    cy, cx = _disc_centre()
    plate[cy - 4 : cy + 4, cx - 4 : cx + 4] = [0.7998, 0.0500, 0.0200]  # outside Rec.709
    plate[cy - 4 : cy + 4, cx + 4 : cx + 8] = [0.5, -0.02, 0.3]  # a negative the input had
    src = write(tmp_path / "acescg.exr", plate, attrs={"oiio:ColorSpace": "ACEScg"})
    out = tmp_path / "k.exr"
    assert run(src, "-o", out, "--despill", "0", "--exr-dtype", dtype) == 0
    px, spec = read(out)
    opaque = px[..., 3] >= 1.0
    assert opaque[cy - 4 : cy + 4, cx - 4 : cx + 8].all()
    want = plate[opaque]
    if dtype == "float":  # a 3x3 matrix there and back: float32 rounding only
        np.testing.assert_allclose(px[..., :3][opaque], want, rtol=2e-6, atol=1e-7)
    else:  # within one half-float step of the input
        np.testing.assert_allclose(px[..., :3][opaque], want, rtol=2.0**-10, atol=2.0**-24)
    assert px[cy, cx + 5, 1] < 0  # the negative green survived


# ---------------------------------------------------------------- 3: nothing under alpha 0 in PNG


def test_png_pixels_with_alpha_0_have_rgb_0(tmp_path):
    src = write(tmp_path / "p.exr", make_plate(seed=2), "half")
    assert run(src, "-o", tmp_path / "k.png", "--png-bits", "8") == 0
    px, _ = read(tmp_path / "k.png")
    assert (px[..., :3][px[..., 3] == 0] == 0).all()
    assert (px[..., 3] == 0).any() and (px[..., 3] == 1).any()


# ---------------------------------------------------------------- 4: windows in formats without one


def test_overscan_and_crop_become_display_window_pngs(tmp_path):
    over = write(
        tmp_path / "ov.exr", make_plate(112, 144), "half", x=-8, y=-8, full_width=128, full_height=96
    )
    crop = write(tmp_path / "cr.exr", make_plate(48, 64), "half", x=40, y=30, full_width=128, full_height=96)
    for src, name in ((over, "ov"), (crop, "cr")):
        assert run(src, "-o", tmp_path / f"k_{name}.png") == 0
        assert run(src, "-o", tmp_path / f"k_{name}.exr") == 0
    png, spec = read(tmp_path / "k_ov.png")
    exr, exr_spec = read(tmp_path / "k_ov.exr")
    assert (spec.width, spec.height) == (128, 96)
    assert (exr_spec.x, exr_spec.y, exr_spec.width) == (-8, -8, 144)  # EXR keeps its data window
    np.testing.assert_allclose(png[..., 3], exr[8:104, 8:136, 3], atol=1 / 255 + 1e-3)  # overscan cropped
    png, spec = read(tmp_path / "k_cr.png")
    exr, _ = read(tmp_path / "k_cr.exr")
    assert (spec.width, spec.height, spec.x, spec.y) == (128, 96, 0, 0)
    np.testing.assert_allclose(png[30:78, 40:104, 3], exr[..., 3], atol=1 / 255 + 1e-3)
    outside = np.ones((96, 128), bool)
    outside[30:78, 40:104] = False
    assert (png[outside] == 0).all()  # padded with nothing: alpha 0, RGB 0
    assert run(crop, "-o", tmp_path / "k_cr.tif", "--png-bits", "16") == 0
    tif, spec = read(tmp_path / "k_cr.tif")
    assert (spec.x, spec.y, spec.width, spec.height) == (0, 0, 128, 96)
    np.testing.assert_allclose(tif[..., 3], png[..., 3], atol=1 / 255 + 1e-3)
    assert run(crop, "-o", tmp_path / "disp.exr", "--output-window", "display") == 0
    disp, spec = read(tmp_path / "disp.exr")
    assert (spec.x, spec.y, spec.width, spec.height) == (0, 0, 128, 96)
    np.testing.assert_allclose(disp[30:78, 40:104], exr, atol=0)
    assert run(crop, "-o", tmp_path / "data.png", "--output-window", "data") == 0
    assert read(tmp_path / "data.png")[1].width == 64  # the old layout, when asked for


# ---------------------------------------------------------------- 5: log DPX


def _cineon_encode(lin: np.ndarray) -> np.ndarray:
    offset = 10 ** ((95 - 685) * 0.002 / 0.6)
    return (685 + 300 * np.log10(lin * (1 - offset) + offset)) / 1023


def test_log_dpx_is_keyed_as_cineon(tmp_path, caplog):
    lin = make_plate(seed=3)
    src = write(
        tmp_path / "log.dpx",
        _cineon_encode(lin),
        "uint16",
        attrs={"oiio:BitsPerSample": 10, "dpx:Transfer": "Logarithmic"},
    )
    assert probe(src).attributes.get("dpx:Transfer") == "Logarithmic"
    space, why = colour.input_colorspace(read_frame(src).info)
    assert space == colour.CINEON_SPACE and ("KodakLog" in why or "Logarithmic" in why)
    caplog.set_level(logging.INFO, logger="gsrender")
    assert run(src, "-o", tmp_path / "k.exr", "--exr-dtype", "float", "--despill", "0") == 0
    assert "as Cineon (file tag" in caplog.text
    px, _ = read(tmp_path / "k.exr")
    opaque = px[..., 3] >= 1.0
    assert opaque.any()
    # the linear light the log file encodes, to 10-bit log precision (0.2% of the value per code)
    np.testing.assert_allclose(px[..., :3][opaque], lin[opaque], rtol=0.01, atol=2e-3)


def test_cineon_reference_values():
    codes = np.array([[[95 / 1023, 685 / 1023, 445 / 1023]]], np.float32)
    lin = colour.convert(codes, "cineon", colour.WORKING_SPACE)
    np.testing.assert_allclose(lin[0, 0], [0.0, 1.0, 0.1493], atol=2e-4)  # black, white, 2.4 stops down
    back = colour.convert(lin, colour.WORKING_SPACE, "Cineon")
    np.testing.assert_allclose(back, codes, atol=1e-4)


# ---------------------------------------------------------------- 6: chromaticities


def test_ap1_chromaticities_choose_acescg_and_outputs_get_their_own(tmp_path, caplog):
    plate = colour.convert(make_plate(seed=4), colour.WORKING_SPACE, "ACEScg")
    src = write(tmp_path / "ap1.exr", plate, attrs={"chromaticities": ("float[8]", AP1)})
    assert colour.input_colorspace(read_frame(src).info)[0] == "ACEScg"
    tagged = write(tmp_path / "tagged.exr", plate, attrs={"oiio:ColorSpace": "ACEScg"})
    caplog.set_level(logging.INFO, logger="gsrender")
    assert run(src, "-o", tmp_path / "a.exr", "--exr-dtype", "float") == 0
    assert "as ACEScg (file chromaticities (ap1)" in caplog.text
    assert run(tagged, "-o", tmp_path / "b.exr", "--exr-dtype", "float") == 0
    np.testing.assert_array_equal(read(tmp_path / "a.exr")[0], read(tmp_path / "b.exr")[0])
    np.testing.assert_allclose(read(tmp_path / "a.exr")[1].getattribute("chromaticities"), AP1, atol=1e-6)
    assert run(src, "-o", tmp_path / "709.exr", "--out-colorspace", "lin_rec709") == 0
    np.testing.assert_allclose(
        read(tmp_path / "709.exr")[1].getattribute("chromaticities"), REC709, atol=1e-6
    )


def test_png_refuses_a_colour_space_it_cannot_tag(tmp_path, capsys):
    src = write(tmp_path / "p.exr", make_plate(), "half")
    assert run(src, "-o", tmp_path / "k.png", "--out-colorspace", "ACEScg") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot say its pixels are ACEScg" in err[0]
    assert run(src, "-o", tmp_path / "lin.png", "--out-colorspace", "lin_rec709") == 0
    tag = read(tmp_path / "lin.png")[1].get_string_attribute("oiio:ColorSpace")
    assert colour.resolve_colorspace(tag) == colour.WORKING_SPACE  # reads back as what it holds


# ---------------------------------------------------------------- 7: lossless mattes


@pytest.mark.parametrize("codec", ["dwaa", "dwab", "b44", "b44a"])
def test_alpha_and_matte_stay_exact_under_lossy_codecs(tmp_path, codec):
    src = write(tmp_path / "p.exr", make_plate(seed=6), "half")
    assert run(src, "-o", tmp_path / "ref.exr", "--layers", "matte", "--exr-dtype", "float") == 0
    assert run(src, "-o", tmp_path / "k.exr", "--layers", "matte", "--compression", codec) == 0
    ref, _ = read(tmp_path / "ref.exr")
    got, spec = read(tmp_path / "k.exr")
    assert list(spec.channelnames) == ["R", "G", "B", "A", "matte.A"]
    for ch in (3, 4):  # exact to half precision (B44 stores them as float: exact)
        np.testing.assert_allclose(got[..., ch], ref[..., ch], atol=0, rtol=2.0**-11)


# ---------------------------------------------------------------- 8: the small ones


def test_negative_frame_range_after_a_space(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for f in range(-3, 3):
        write(folder / (f"p.{f:04d}.exr" if f >= 0 else f"p.-{-f:03d}.exr"), make_plate(24, 32), "half")
    assert run(folder / "p.####.exr", "-o", tmp_path / "o" / "k.####.exr", "-F", "-3-2", "--dry-run") == 0
    assert capsys.readouterr().out.strip().endswith("6 frame(s)")
    assert (
        run(folder / "p.####.exr", "-o", tmp_path / "o" / "k.####.exr", "--frames", "-2--1", "--dry-run") == 0
    )
    assert capsys.readouterr().out.strip().endswith("2 frame(s)")


def test_info_prints_timecode_and_fps_as_people_read_them(tmp_path, capsys):
    attrs = {"smpte:TimeCode": ("timecode", (0x01020304, 0)), "FramesPerSecond": ("rational", (24000, 1001))}
    src = write(tmp_path / "tc.exr", make_plate(24, 32), "half", attrs=attrs)
    assert info.main([str(src)]) == 0
    text = capsys.readouterr().out
    assert "smpte:TimeCode = 01:02:03:04" in text
    assert "FramesPerSecond = 23.976 (24000/1001)" in text


@pytest.mark.parametrize("mode", ["straight", "premultiplied"])
def test_input_alpha_multiplies_the_key(tmp_path, mode):
    plate = make_plate(seed=7)
    ia = np.full(plate.shape[:2] + (1,), 0.5, np.float32)
    ia[:, :30] = 0.0
    rgb = plate * ia if mode == "premultiplied" else plate
    src = write(tmp_path / "rgba.exr", np.concatenate([rgb, ia], axis=2), names=["R", "G", "B", "A"])
    # what the keyer should see: the colours (premultiplied RGB divided, nothing where alpha is 0)
    plain = write(tmp_path / "rgb.exr", plate * (ia > 0) if mode == "premultiplied" else plate)
    assert run(plain, "-o", tmp_path / "ref.exr", "--exr-dtype", "float") == 0
    assert run(src, "-o", tmp_path / "ign.exr", "--exr-dtype", "float") == 0  # default: ignored
    assert run(src, "-o", tmp_path / "k.exr", "--exr-dtype", "float", "--input-alpha", mode) == 0
    ref, got, ignored = (read(tmp_path / n)[0] for n in ("ref.exr", "k.exr", "ign.exr"))
    if mode == "straight":
        np.testing.assert_array_equal(ignored, ref)
    keep = np.s_[:, 30:]
    np.testing.assert_allclose(got[keep][..., 3], 0.5 * ref[keep][..., 3], atol=2e-3)
    np.testing.assert_allclose(got[keep][..., :3], 0.5 * ref[keep][..., :3], atol=2e-3)
    assert (got[:, :30] == 0).all()


def test_attribute_formatting_edge_cases():
    from gsrender.cli.info import format_attribute

    assert format_attribute((0x23595929 | 0x40, 0), "timecode") == "23:59:59;29"  # drop-frame flag
    assert format_attribute((25, 1), "rational2i") == "25"
    assert format_attribute((48, 2), "rational2i") == "24"
    assert format_attribute("x", "string") == "x"
