"""Headers are handled in linear time and what outputs carry over is capped and counted: an
EXR header with more attributes than any plate has is refused before OpenImageIO parses it
(its reader is quadratic in them); outputs carry at most MAX_CARRIED_ATTRIBUTES attributes of
at most MAX_ATTRIBUTE_BYTES each, and one warning says how many were left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from gsrender.engine import exr_header
from gsrender.engine.cli import main
from gsrender.engine.image_io import MAX_ATTRIBUTE_BYTES, MAX_CARRIED_ATTRIBUTES, probe
from tests.conftest import assert_one_line, make_plate


def run(*args: object) -> int:
    return main([str(a) for a in args])


def _exr(path: Path, attributes: int, big: int = 0, parts: int = 1) -> Path:
    """A 48x32 plate with ``attributes`` user attributes (and one of ``big`` bytes) in each part."""
    specs = []
    for k in range(parts):
        spec = oiio.ImageSpec(48, 32, 3, "half")
        spec.attribute("name", f"part{k}")
        for i in range(attributes):
            spec.attribute(f"user:a{i:05d}", f"value {i}")
        if big:
            spec.attribute("user:big", "x" * big)
        specs.append(spec)
    out = oiio.ImageOutput.create("openexr")
    assert out.open(str(path), specs) if parts > 1 else out.open(str(path), specs[0])
    for k in range(parts):
        if k:
            assert out.open(str(path), specs[k], "AppendSubimage")
        assert out.write_image(make_plate(32, 48))
    assert out.close()
    return path


def test_attributes_are_counted_in_every_part(tmp_path):
    one = _exr(tmp_path / "one.exr", 30)
    base = exr_header.count_attributes(one) - 30  # the attributes every EXR has (channels, windows...)
    assert 5 <= base <= 20
    two = _exr(tmp_path / "two.exr", 30, parts=2)
    assert exr_header.count_attributes(two) >= 2 * 30 + base
    assert exr_header.count_attributes(one, limit=10) == 11  # counting stops past the limit
    png = tmp_path / "p.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert exr_header.count_attributes(png) is None


def test_a_header_with_more_attributes_than_any_plate_is_refused_before_parsing(tmp_path, capsys):
    src = _exr(tmp_path / "many.exr", exr_header.MAX_HEADER_ATTRIBUTES + 10)
    assert run(src, "-o", tmp_path / "k.exr") == 3
    assert_one_line(capsys.readouterr().err, "many.exr", f"more than {exr_header.MAX_HEADER_ATTRIBUTES}")
    assert not (tmp_path / "k.exr").exists()


def test_outputs_carry_a_capped_count_of_attributes_and_say_so(tmp_path, caplog):
    src = _exr(tmp_path / "p.exr", MAX_CARRIED_ATTRIBUTES + 500)
    assert run(src, "-o", tmp_path / "k.exr") == 0
    carried = [k for k in probe(tmp_path / "k.exr").attributes if k.startswith("user:")]
    # the cap counts the few standard attributes carried with them (screenWindowWidth...)
    assert MAX_CARRIED_ATTRIBUTES - 20 <= len(carried) <= MAX_CARRIED_ATTRIBUTES
    warnings = [r.getMessage() for r in caplog.records if "not carried over" in r.getMessage()]
    assert len(warnings) == 1 and "p.exr" in warnings[0]


def test_a_large_attribute_is_neither_kept_nor_copied(tmp_path, caplog):
    src = _exr(tmp_path / "p.exr", 3, big=4 * MAX_ATTRIBUTE_BYTES)
    info = probe(src)
    assert "user:big" not in info.attributes and info.attributes_dropped == 1
    assert "user:a00002" in info.attributes
    assert run(src, "-o", tmp_path / "k.exr") == 0
    out = probe(tmp_path / "k.exr")
    assert "user:big" not in out.attributes and out.attributes["user:a00002"] == "value 2"
    assert (tmp_path / "k.exr").stat().st_size < src.stat().st_size / 4
    assert any("1 header attributes not carried over" in r.getMessage() for r in caplog.records)
    np.testing.assert_equal(out.width, 48)
