"""Which layer of a multi-part or layered EXR gets keyed (issue 15, item 1)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from gsrender.engine import info
from gsrender.engine.cli import main
from gsrender.engine.errors import InputError
from gsrender.engine.image_io import read_frame
from gsrender.engine.layers import PlateSelection
from tests.conftest import assert_one_line, make_plate

ALBEDO = 0.18


def write_parts(
    path: Path, parts: list[tuple[str, np.ndarray, list[str]]], attrs: dict | None = None
) -> Path:
    """A multi-part EXR, one part per entry, written with OIIO directly; attrs: {part: {name: value}}."""
    specs = []
    for k, (name, px, names) in enumerate(parts):
        spec = oiio.ImageSpec(px.shape[1], px.shape[0], px.shape[2], "half")
        spec.channelnames = tuple(names)
        spec.attribute("name", name)
        for key, value in (attrs or {}).get(k, {}).items():
            spec.attribute(key, value)
        specs.append(spec)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), specs), out.geterror()
    for i, (spec, (_, px, _)) in enumerate(zip(specs, parts, strict=True)):
        if i:
            assert out.open(str(path), spec, "AppendSubimage"), out.geterror()
        assert out.write_image(np.ascontiguousarray(px, np.float32)), out.geterror()
    out.close()
    return path


def write_single(path: Path, px: np.ndarray, names: list[str]) -> Path:
    spec = oiio.ImageSpec(px.shape[1], px.shape[0], px.shape[2], "half")
    spec.channelnames = tuple(names)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(np.ascontiguousarray(px, np.float32)), out.geterror()
    out.close()
    return path


def _half(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float16).astype(np.float32)


def _alpha(path: Path) -> np.ndarray:
    buf = oiio.ImageBuf(str(path))
    return buf.get_pixels(oiio.FLOAT)[..., 3]


@pytest.fixture
def plate() -> np.ndarray:
    return make_plate()


def test_multipart_with_the_beauty_second_keys_the_beauty(tmp_path, plate):
    albedo = np.full_like(plate, ALBEDO)
    src = write_parts(
        tmp_path / "mp.exr", [("albedo", albedo, ["R", "G", "B"]), ("beauty", plate, ["R", "G", "B"])]
    )
    frame = read_frame(src)
    np.testing.assert_array_equal(frame.rgb, _half(plate))
    assert (frame.info.plate.part, frame.info.plate.part_name) == (1, "beauty")
    # the keyed alpha is the beauty's own key, not the flat AOV's (which keys to 0 everywhere)
    beauty_only = write_single(tmp_path / "beauty.exr", plate, ["R", "G", "B"])
    assert main([str(beauty_only), "-o", str(tmp_path / "ref.exr"), "-q"]) == 0
    assert main([str(src), "-o", str(tmp_path / "k.exr"), "-q"]) == 0
    want = _alpha(tmp_path / "ref.exr")
    assert want.mean() > 0.1
    np.testing.assert_array_equal(_alpha(tmp_path / "k.exr"), want)


def test_layer_only_names_pick_the_beauty_and_layer_picks_another(tmp_path, plate):
    albedo = np.full_like(plate, ALBEDO)
    names = ["albedo.R", "albedo.G", "albedo.B", "beauty.R", "beauty.G", "beauty.B"]
    src = write_single(tmp_path / "lay.exr", np.concatenate([albedo, plate], axis=2), names)
    np.testing.assert_array_equal(read_frame(src).rgb, _half(plate))
    picked = read_frame(src, PlateSelection(layer="albedo"))
    np.testing.assert_array_equal(picked.rgb, _half(albedo))
    assert picked.info.plate.layer == "albedo"


def test_rgba_layer_wins_over_beauty_and_long_channel_names_count(tmp_path, plate):
    names = ["beauty.R", "beauty.G", "beauty.B", "rgba.red", "rgba.green", "rgba.blue", "rgba.alpha"]
    px = np.concatenate([np.full_like(plate, 0.5), plate, np.ones_like(plate[..., :1])], axis=2)
    frame = read_frame(write_single(tmp_path / "long.exr", px, names))
    np.testing.assert_array_equal(frame.rgb, _half(plate))
    assert frame.info.plate.layer == "rgba"


def test_equal_candidates_are_refused_in_one_line_and_part_chooses(tmp_path, plate, capsys):
    other = np.full_like(plate, 0.3)
    src = write_parts(
        tmp_path / "st.exr", [("left", other, ["R", "G", "B"]), ("right", plate, ["R", "G", "B"])]
    )
    with pytest.raises(InputError, match=r"no rgba or beauty layer among part 0 'left'.*part 1 'right'"):
        read_frame(src)
    assert main([str(src), "-o", str(tmp_path / "k.exr")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gsrender: error: ") and "--layer or --part" in err[0]
    np.testing.assert_array_equal(read_frame(src, PlateSelection(part="right")).rgb, _half(plate))
    np.testing.assert_array_equal(read_frame(src, PlateSelection(part="1")).rgb, _half(plate))
    np.testing.assert_array_equal(read_frame(src, PlateSelection(layer="left")).rgb, _half(other))


def test_two_plates_of_the_same_rank_are_ambiguous(tmp_path, plate):
    src = write_parts(
        tmp_path / "two.exr", [("rgba", plate, ["R", "G", "B"]), ("beauty", plate, ["R", "G", "B"])]
    )
    assert read_frame(src).info.plate.part == 0  # rgba outranks beauty
    both = write_parts(
        tmp_path / "both.exr",
        [("a", plate, ["R", "G", "B"]), ("b", plate, ["beauty.R", "beauty.G", "beauty.B"])],
    )
    assert read_frame(both).info.plate.part == 1  # part a's bare RGB is named "a": an AOV, not a plate


def test_unknown_layer_and_part_name_the_choices(tmp_path, plate):
    src = write_parts(
        tmp_path / "mp.exr", [("albedo", plate, ["R", "G", "B"]), ("beauty", plate, ["R", "G", "B"])]
    )
    with pytest.raises(InputError, match=r"no RGB layer 'spec' \(layers: part 0 'albedo'"):
        read_frame(src, PlateSelection(layer="spec"))
    with pytest.raises(InputError, match=r"no part 'left' \(parts: 0 'albedo', 1 'beauty'\)"):
        read_frame(src, PlateSelection(part="left"))


def test_cli_layer_option_and_info_say_what_is_keyed(tmp_path, plate, capsys, caplog):
    albedo = np.full_like(plate, ALBEDO)
    src = write_parts(
        tmp_path / "mp.exr", [("albedo", albedo, ["R", "G", "B"]), ("beauty", plate, ["R", "G", "B"])]
    )
    assert info.main([str(src)]) == 0
    text = capsys.readouterr().out
    assert "keys:         part 1 'beauty', layer 'rgba', channels R,G,B" in text
    assert "part 0:       'albedo' channels R,G,B" in text
    assert info.main(["--layer", "albedo", str(src)]) == 0
    assert "keys:         part 0 'albedo'" in capsys.readouterr().out
    caplog.set_level(logging.INFO, logger="gsrender")
    assert main([str(src), "-o", str(tmp_path / "k.exr"), "--layer", "albedo"]) == 0
    assert "keying part 0 'albedo'" in caplog.text
    assert main([str(src), "-o", str(tmp_path / "b.exr")]) == 0  # the beauty, chosen by default
    keyed_aov, keyed_beauty = _alpha(tmp_path / "k.exr"), _alpha(tmp_path / "b.exr")
    assert np.abs(keyed_aov - keyed_beauty).max() > 0.5  # the flat AOV was keyed, as asked


def test_the_keyed_part_s_own_header_decides_its_colour_space(tmp_path, plate, caplog):
    parts = [("albedo", plate, ["R", "G", "B"]), ("beauty", plate, ["R", "G", "B"])]
    src = write_parts(tmp_path / "mp.exr", parts, attrs={1: {"oiio:ColorSpace": "ACEScg"}})
    from gsrender.engine import colour

    assert colour.input_colorspace(read_frame(src).info)[0] == "ACEScg"
    caplog.set_level(logging.INFO, logger="gsrender")
    assert main([str(src), "-o", str(tmp_path / "k.exr"), "--dry-run"]) == 0
    assert main([str(src), "-o", str(tmp_path / "k.exr"), "-q"]) == 0
    assert "part 1 'beauty', layer 'rgba', channels R,G,B as ACEScg" in caplog.text


def test_a_many_part_file_is_refused_in_one_short_line(tmp_path, capsys):
    """The refusal lists a few parts and counts the rest (it listed all 1000: 49,889 characters).
    600 parts: a 1000-part file holds more attributes than a header may (test_header_limits)."""
    small = make_plate(4, 4)
    path = write_parts(tmp_path / "many.exr", [(f"aov{k:04d}", small, ["R", "G", "B"]) for k in range(600)])
    rc = main([str(path), "-o", str(tmp_path / "k.exr"), "-q"])
    err = capsys.readouterr().err
    assert rc == 3
    line = assert_one_line(err, "no rgba or beauty layer", "aov0000", "and 592 more")
    assert len(line) < 600, len(line)
    rc = main([str(path), "-o", str(tmp_path / "k.exr"), "-q", "--part", "nope"])
    line = assert_one_line(capsys.readouterr().err, "no part 'nope'", "and 592 more")
    assert rc == 3 and len(line) < 600, len(line)


def test_any_error_line_is_capped():
    from gsrender.engine.errors import MAX_PROBLEM

    message = InputError("plate.exr", "x" * 50_000).message
    assert message.startswith("plate.exr: xxx") and message.endswith("(49000 more characters)")
    assert len(message) < MAX_PROBLEM + 100
