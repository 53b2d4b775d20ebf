"""The farm command end to end, in-process: sequences, ranges, conventions, resume, errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from gsrender.cli import info
from gsrender.cli.render import main
from gsrender.engine import colour
from gsrender.engine.encoding import srgb_eotf
from gsrender.engine.image_io import read_frame
from gsrender.engine.image_write import write_frame
from tests.conftest import make_plate, write_plate


def read_all(path: Path) -> tuple[np.ndarray, list[str]]:
    """All channels as float, PNG alpha kept straight."""
    buf = oiio.ImageBuf(str(path), 0, 0, _unassoc_config())
    return buf.get_pixels(oiio.FLOAT), list(buf.spec().channelnames)


def _unassoc_config() -> oiio.ImageSpec:
    cfg = oiio.ImageSpec()
    cfg.attribute("oiio:UnassociatedAlpha", 1)
    return cfg


def run(*args: str) -> int:
    return main([str(a) for a in args])


def test_sequence_png_to_exr_premultiplied(plate_seq, tmp_path, capsys):
    src = plate_seq()
    rc = run(src / "plate.####.png", "-o", tmp_path / "out" / "key.####.exr")
    assert rc == 0
    outs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outs] == ["key.1001.exr", "key.1002.exr", "key.1003.exr"]
    px, names = read_all(outs[0])
    assert names == ["R", "G", "B", "A"]
    rgb, a = px[..., :3], px[..., 3]
    assert (rgb[a == 0] == 0).all()  # premultiplied: nothing where alpha is 0
    assert oiio.ImageInput.open(str(outs[0])).spec().format == oiio.HALF
    out = capsys.readouterr().out
    assert "frame 1001 rendered" in out and "backend=onnxruntime-cpu" in out
    assert "rendered=3 skipped=0 failed=0" in out


@pytest.mark.parametrize(
    "token,name",
    [("####", "p.{:04d}.png"), ("%04d", "p.{:04d}.png"), ("@@@@", "p.{:04d}.png"), ("#####", "p.{:05d}.png")],
)
def test_token_styles(plate_seq, tmp_path, token, name):
    src = plate_seq(pattern=name, frames=[7, 8])
    assert run(src / f"p.{token}.png", "-o", tmp_path / "o" / f"k.{token}.exr") == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        f"k.{name.split('.')[1].format(f)}.exr" for f in (7, 8)
    ]


def test_frame_ranges(plate_seq, tmp_path):
    src = plate_seq(frames=range(1, 11))
    assert run(src / "plate.####.png", "-o", tmp_path / "a" / "k.####.exr", "-F", "1-9x4") == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["k.0001.exr", "k.0005.exr", "k.0009.exr"]
    assert run(src / "plate.####.png", "-o", tmp_path / "b" / "k.####.exr", "-F", "2-3,10") == 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["k.0002.exr", "k.0003.exr", "k.0010.exr"]


def test_single_image_and_png_straight_alpha(tmp_path):
    src = write_plate(tmp_path / "one.png", make_plate())
    assert run(src, "-o", tmp_path / "one_key.png") == 0
    assert run(src, "-o", tmp_path / "one_key.exr", "--exr-dtype", "float") == 0
    png, _ = read_all(tmp_path / "one_key.png")
    exr, _ = read_all(tmp_path / "one_key.exr")
    np.testing.assert_allclose(png[..., 3], exr[..., 3], atol=1 / 255 + 1e-6)
    # PNG stores straight sRGB colour: premultiplying it in linear gives the EXR's RGB
    a = exr[..., 3:4]
    premult_from_png = srgb_eotf(png[..., :3]) * a
    solid = a[..., 0] > 0.99
    assert np.abs(premult_from_png[solid] - exr[..., :3][solid]).max() < 0.01
    semi = (a[..., 0] > 0.2) & (a[..., 0] < 0.8)
    if semi.any():  # straight colour is brighter than premultiplied where alpha < 1
        assert srgb_eotf(png[..., :3])[semi].sum() >= exr[..., :3][semi].sum()


@pytest.mark.parametrize("keyer", ["neural", "classic"])
def test_tile_size_does_not_change_the_output(tmp_path, keyer):
    plate = make_plate(150, 230, seed=3)
    src = write_plate(tmp_path / "big.exr", plate)
    outs = []
    for tile in ("0", "64", "96"):
        out = tmp_path / f"t{tile}.exr"
        assert run(src, "-o", out, "--tile", tile, "--exr-dtype", "float", "--keyer", keyer) == 0
        outs.append(read_all(out)[0])
    for other in outs[1:]:
        assert np.abs(other - outs[0]).max() <= 1e-4


def test_layers_and_metadata_pass_through(tmp_path):
    plate = make_plate()
    src = tmp_path / "m.exr"
    write_frame(
        src, plate, ["R", "G", "B"], None, dtype="half",
        extra_attributes={"PixelAspectRatio": 2.0, "cameraMake": "ARRI", "owner": "unit test"},
    )  # fmt: skip
    # add a timecode and move the data/display window with oiiotool-like ImageBuf editing
    buf = oiio.ImageBuf(str(src))
    spec = buf.specmod()
    spec.x, spec.y = 4, 6
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, 120, 90
    spec.attribute("smpte:TimeCode", oiio.TypeTimeCode, [0x01020304, 0])
    buf.write(str(tmp_path / "m2.exr"))
    assert run(tmp_path / "m2.exr", "-o", tmp_path / "k.exr", "--layers", "fg,matte") == 0
    out = oiio.ImageInput.open(str(tmp_path / "k.exr"))
    s = out.spec()
    assert list(s.channelnames) == ["R", "G", "B", "A", "fg.R", "fg.G", "fg.B", "matte.A"]
    assert (s.x, s.y, s.full_width, s.full_height) == (4, 6, 120, 90)
    assert s.get_float_attribute("PixelAspectRatio") == 2.0
    assert s.get_string_attribute("cameraMake") == "ARRI"
    assert s.getattribute("smpte:TimeCode") is not None
    assert s.get_string_attribute("compression") == "zip"
    out.close()


def test_hdr_values_survive(tmp_path):
    src = write_plate(tmp_path / "hdr.exr", make_plate(hdr=True))
    assert run(src, "-o", tmp_path / "k.exr", "--exr-dtype", "float") == 0
    px, _ = read_all(tmp_path / "k.exr")
    assert px[..., :3].max() > 5.0  # the 6.0 highlight is not clipped


def test_colorspace_override_round_trips(tmp_path):
    plate = make_plate(seed=5)
    write_plate(tmp_path / "lin.exr", plate)
    write_plate(tmp_path / "cg.exr", colour.convert(plate, colour.WORKING_SPACE, "ACEScg"))
    assert run(tmp_path / "lin.exr", "-o", tmp_path / "k_lin.exr", "--exr-dtype", "float") == 0
    assert run(tmp_path / "cg.exr", "-o", tmp_path / "k_cg.exr", "--colorspace", "ACEScg",
               "--exr-dtype", "float") == 0  # fmt: skip
    lin, _ = read_all(tmp_path / "k_lin.exr")
    cg, _ = read_all(tmp_path / "k_cg.exr")
    back = colour.convert(np.ascontiguousarray(cg[..., :3]), "ACEScg", colour.WORKING_SPACE)
    # alpha independent of the input space, up to the half-float rounding of the ACEScg file: the
    # local evidence's opaque hold ramps over a 0.04 channel lead, so a pixel on that ramp may move
    # by a few hundredths; all but a handful of pixels agree within 0.005
    d = np.abs(cg[..., 3] - lin[..., 3])
    assert d.max() < 0.05 and np.quantile(d, 0.999) < 0.005
    assert np.abs(back - lin[..., :3]).max() < 0.02  # output stays in the input's space
    assert run(tmp_path / "cg.exr", "-o", tmp_path / "x.exr", "--colorspace", "nonsense") == 2


def test_skip_existing_resumes_without_touching_done_frames(plate_seq, tmp_path, capsys):
    src = plate_seq()
    out = tmp_path / "o"
    assert run(src / "plate.####.png", "-o", out / "k.####.exr", "-F", "1001") == 0
    done = out / "k.1001.exr"
    os.utime(done, (1_000_000, 1_000_000))
    assert run(src / "plate.####.png", "-o", out / "k.####.exr", "--skip-existing") == 0
    assert done.stat().st_mtime == 1_000_000
    assert sorted(p.name for p in out.iterdir()) == ["k.1001.exr", "k.1002.exr", "k.1003.exr"]
    assert "rendered=2 skipped=1" in capsys.readouterr().out


def test_dry_run_writes_nothing(plate_seq, tmp_path, capsys):
    src = plate_seq()
    assert run(src / "plate.####.png", "-o", tmp_path / "o" / "k.####.exr", "--dry-run") == 0
    assert not (tmp_path / "o").exists()
    assert "3 frame(s)" in capsys.readouterr().out


def test_frames_of_different_sizes(tmp_path):
    write_plate(tmp_path / "s.0001.png", make_plate(40, 64))
    write_plate(tmp_path / "s.0002.png", make_plate(57, 91))
    assert run(tmp_path / "s.####.png", "-o", tmp_path / "o" / "k.####.exr") == 0
    assert read_frame(tmp_path / "o" / "k.0002.exr").rgb.shape == (57, 91, 3)


def test_classic_keyer_backend(tmp_path, capsys):
    src = write_plate(tmp_path / "c.png", make_plate())
    assert run(src, "-o", tmp_path / "c.exr", "--keyer", "classic") == 0
    px, _ = read_all(tmp_path / "c.exr")
    assert px[..., 3].min() == 0.0 and px[..., 3].max() == 1.0


def test_classic_form_picks_the_classic_keyers_form_and_needs_the_classic_keyer(tmp_path, capsys):
    src = write_plate(tmp_path / "p.exr", make_plate(48, 64, seed=3))
    alphas = {}
    for form in ("local", "max"):
        assert run(src, "-o", tmp_path / f"{form}.exr", "--keyer", "classic", "--classic-form", form) == 0
        alphas[form] = read_all(tmp_path / f"{form}.exr")[0][..., 3]
    assert np.abs(alphas["local"] - alphas["max"]).max() > 0.01  # the option reaches the keyer
    assert run(src, "-o", tmp_path / "n.exr", "--classic-form", "max") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gsrender: error: --classic-form applies to --keyer classic only"]
    assert not (tmp_path / "n.exr").exists()


def test_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for word in ("--tile", "--skip-existing", "--on-error", "exit codes", "130"):
        assert word in text


def test_info_prints_what_the_engine_sees(tmp_path, capsys):
    src = write_plate(tmp_path / "i.exr", make_plate())
    assert info.main([str(src)]) == 0
    text = capsys.readouterr().out
    for expected in ("104x72", "R,G,B", "Linear Rec.709", "no colour tag", "readable:     yes"):
        assert expected in text


def test_json_report(plate_seq, tmp_path):
    import json

    src = plate_seq()
    (src / "plate.1002.png").unlink()
    rep = tmp_path / "r" / "report.json"
    rc = run(src / "plate.####.png", "-o", tmp_path / "o" / "k.####.exr", "-F", "1001-1003",
             "--on-error", "skip", "--report", rep)  # fmt: skip
    assert rc == 1
    data = json.loads(rep.read_text())
    assert data["counts"] == {"rendered": 2, "skipped": 0, "failed": 1}
    assert data["exit_code"] == 1 and data["backend"] == "onnxruntime-cpu"
    failed = [f for f in data["frames"] if f["status"] == "failed"]
    assert failed[0]["frame"] == 1002 and "file not found" in failed[0]["error"]


def test_a_plate_without_a_screen_is_keyed_with_one_warning(tmp_path, caplog):
    """No green or blue screen: the render still runs, and says so once for the whole run."""
    grey = np.full((40, 56, 3), 0.3, np.float32)
    for f in (1, 2):
        write_plate(tmp_path / f"grey.{f:04d}.exr", grey)
    with caplog.at_level("WARNING", logger="gsrender"):
        rc = run(tmp_path / "grey.####.exr", "-o", tmp_path / "out" / "k.####.exr", "--keyer", "classic")
    assert rc == 0
    warnings = [r.getMessage() for r in caplog.records if "no green or blue screen" in r.getMessage()]
    assert len(warnings) == 1 and "grey.0001.exr" in warnings[0]


def test_a_blue_screen_plate_is_keyed_by_the_default_keyer(tmp_path):
    """The bundled model keys a blue screen (it used to return alpha 1 everywhere)."""
    plate = make_plate()[..., [0, 2, 1]]  # the green test plate as a blue-screen plate
    write_plate(tmp_path / "blue.exr", plate)
    assert run(tmp_path / "blue.exr", "-o", tmp_path / "key.exr", "--exr-dtype", "float") == 0
    alpha = read_all(tmp_path / "key.exr")[0][..., 3]
    green = make_plate()
    write_plate(tmp_path / "green.exr", green)
    assert run(tmp_path / "green.exr", "-o", tmp_path / "gkey.exr", "--exr-dtype", "float") == 0
    green_alpha = read_all(tmp_path / "gkey.exr")[0][..., 3]
    assert alpha[:, :8].max() < 0.05  # the screen on the left is clear
    np.testing.assert_allclose(alpha, green_alpha, atol=1e-4)
