import errno
import os
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

import gsrender.engine.image_write as giw
from gsrender.engine.errors import InputError, OutputError, UsageError
from gsrender.engine.image_io import probe, read_frame
from gsrender.engine.image_write import write_frame

H, W = 16, 24


def _rand(channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 1.0, (H, W, channels)).astype(np.float32)


def _oiio_write(
    path: Path, pixels: np.ndarray, fmt: str, names=None, tile: int = 0, attrs=None, **win
) -> Path:
    """Write a test image with OIIO directly, independent of the code under test."""
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, fmt)
    if names:
        spec.channelnames = tuple(names)
    if tile:
        spec.tile_width = spec.tile_height = tile
    for key, value in win.items():
        setattr(spec, key, value)
    for name, value in (attrs or {}).items():
        if isinstance(value, tuple) and isinstance(value[0], oiio.TypeDesc):
            spec.attribute(name, value[0], value[1])
        else:
            spec.attribute(name, value)
    spec.attribute("oiio:UnassociatedAlpha", 1)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(pixels), out.geterror()
    out.close()
    return path


def _oiio_read(path: Path, straight: bool = True) -> tuple[oiio.ImageSpec, np.ndarray]:
    config = oiio.ImageSpec()
    if straight:
        config.attribute("oiio:UnassociatedAlpha", 1)
    inp = oiio.ImageInput.open(str(path), config)
    assert inp is not None, oiio.geterror()
    spec = inp.spec()
    pixels = inp.read_image(0, 0, 0, spec.nchannels, "float")
    inp.close()
    return spec, pixels


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize("fmt, tol", [("uint8", 0.5 / 255 + 1e-6), ("uint16", 0.5 / 65535 + 1e-7)])
@pytest.mark.parametrize("channels", [3, 4])
def test_read_png(tmp_path, fmt, tol, channels):
    src = _rand(channels)
    src[..., :3] = np.round(src[..., :3], 3)
    path = _oiio_write(tmp_path / "p.png", src, fmt)
    frame = read_frame(path)
    assert frame.rgb.shape == (H, W, 3) and frame.rgb.dtype == np.float32 and frame.rgb.flags["C_CONTIGUOUS"]
    # RGB comes back as stored even with a (straight) alpha channel: no premultiplication.
    np.testing.assert_allclose(frame.rgb, src[..., :3], atol=tol)
    assert frame.info.file_format == "png" and frame.info.pixel_type == fmt
    assert frame.info.bits == (8 if fmt == "uint8" else 16)
    assert frame.info.nchannels == channels


@pytest.mark.parametrize("fmt", ["half", "float"])
@pytest.mark.parametrize("tile", [0, 8])
def test_read_exr(tmp_path, fmt, tile):
    src = _rand(4) * 8.0  # HDR values well above 1
    path = _oiio_write(tmp_path / "p.exr", src, fmt, tile=tile)
    frame = read_frame(path)
    tol = 8.0 / 1024 if fmt == "half" else 0.0
    np.testing.assert_allclose(frame.rgb, src[..., :3], atol=tol)
    assert frame.rgb.max() > 1.0
    assert frame.info.tiled == bool(tile)
    assert frame.info.pixel_type == fmt and frame.info.bits == (16 if fmt == "half" else 32)


def test_read_keeps_data_window(tmp_path):
    path = _oiio_write(
        tmp_path / "w.exr", _rand(), "half", x=5, y=7, full_x=0, full_y=0, full_width=40, full_height=30
    )
    frame = read_frame(path)
    assert frame.rgb.shape == (H, W, 3)
    assert frame.info.data_window == (5, 7, W, H)
    assert frame.info.display_window == (0, 0, 40, 30)


def test_read_picks_rgb_by_name(tmp_path):
    names = ["R", "G", "B", "A", "Z", "fg.R"]
    src = np.empty((H, W, len(names)), np.float32)
    for i in range(len(names)):
        src[..., i] = i + 1
    frame = read_frame(_oiio_write(tmp_path / "aov.exr", src, "float", names=names))
    assert frame.rgb.shape == (H, W, 3)
    np.testing.assert_array_equal(frame.rgb[0, 0], [1.0, 2.0, 3.0])


def test_read_other_names_take_first_three(tmp_path):
    names = ["X", "Y", "Z", "W"]
    src = np.stack([np.full((H, W), v, np.float32) for v in (1, 2, 3, 4)], axis=2)
    frame = read_frame(_oiio_write(tmp_path / "xyz.exr", src, "float", names=names))
    # OpenEXR stores channels sorted by name, so "first three" is in the order the file reports.
    value = {n: i + 1.0 for i, n in enumerate(names)}
    expected = [value[n] for n in frame.info.channel_names[:3]]
    np.testing.assert_array_equal(frame.rgb[0, 0], expected)


@pytest.mark.parametrize("name, fmt", [("t.tif", "uint16"), ("t8.tif", "uint8"), ("j.jpg", "uint8")])
def test_read_tiff_jpeg(tmp_path, name, fmt):
    src = np.full((H, W, 3), 0.25, np.float32)
    frame = read_frame(_oiio_write(tmp_path / name, src, fmt))
    np.testing.assert_allclose(frame.rgb, src, atol=0.02)
    assert frame.info.subimages == 1


def test_read_dpx_10bit(tmp_path):
    out = tmp_path / "d.dpx"
    src = _rand()
    write_frame(out, src, ["R", "G", "B"], dtype="uint10")
    frame = read_frame(out)
    assert frame.info.file_format == "dpx" and frame.info.bits == 10
    # Every sample lands on the nearest 10-bit level (OIIO's 10->16 bit expansion adds < 0.02 LSB).
    np.testing.assert_array_equal(np.rint(frame.rgb * 1023), np.rint(src * 1023))


# ---------------------------------------------------------------- bad inputs


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as err:
        read_frame(tmp_path / "nope.exr")
    assert err.value.message == f"{tmp_path / 'nope.exr'}: file not found"
    with pytest.raises(InputError, match="file not found"):
        probe(tmp_path / "nope.exr")


@pytest.mark.parametrize(
    "name, fmt, tile",
    [
        ("t.png", "uint8", 0),
        ("t16.png", "uint16", 0),
        ("t.exr", "half", 0),
        ("tt.exr", "half", 8),
        ("t.jpg", "uint8", 0),
    ],
)
def test_truncated(tmp_path, name, fmt, tile):
    # A JPEG cut after its header still returns (grey-filled) pixels: only OIIO's error flag tells.
    jpeg = name.endswith(".jpg")
    path = _truncate(
        _oiio_write(tmp_path / name, _rand(3 if jpeg else 4), fmt, tile=tile), 0.75 if jpeg else 0.5
    )
    with pytest.raises(InputError) as err:
        read_frame(path)
    assert "\n" not in err.value.problem and err.value.problem


def test_empty_and_garbage_files(tmp_path):
    empty = tmp_path / "e.exr"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_frame(empty)
    junk = tmp_path / "j.png"
    junk.write_bytes(b"this is not an image at all" * 4)
    with pytest.raises(InputError) as err:
        read_frame(junk)
    assert "\n" not in err.value.problem


def test_zero_size_image(tmp_path):
    path = tmp_path / "z.ppm"
    path.write_bytes(b"P6\n0 0\n255\n")
    with pytest.raises(InputError, match="1x1"):
        read_frame(path)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(InputError, match="folder"):
        read_frame(tmp_path)


@pytest.mark.parametrize("channels, word", [(1, "grayscale \\(1 channel\\)"), (2, "2 channel")])
def test_grayscale_refused(tmp_path, channels, word):
    path = _oiio_write(tmp_path / "g.png", _rand(channels), "uint8")
    with pytest.raises(InputError, match=word):
        read_frame(path)
    assert probe(path).nchannels == channels  # probing still works


def test_nan_inf_refused(tmp_path):
    src = _rand()
    src[1, 2, 0] = np.nan
    src[3, 4, 1] = np.inf
    src[3, 4, 2] = -np.inf  # same pixel: counted once
    src[5, 6, 2] = np.nan
    path = _oiio_write(tmp_path / "n.exr", src, "half", x=10, y=20)
    with pytest.raises(InputError) as err:
        read_frame(path)
    assert err.value.problem.startswith("3 pixels are NaN or Inf")
    assert "x=12, y=21" in err.value.problem


# ---------------------------------------------------------------- probe


def test_probe_header(tmp_path):
    path = _oiio_write(
        tmp_path / "p.exr",
        _rand(4),
        "half",
        tile=8,
        attrs={"smpte:TimeCode": (oiio.TypeTimeCode, (0x01020304, 0)), "PixelAspectRatio": 2.0},
    )
    info = probe(path)
    assert info.file_format == "openexr" and info.tiled
    assert (info.width, info.height, info.nchannels) == (W, H, 4)
    assert info.channel_names == ["R", "G", "B", "A"]
    assert info.attributes["PixelAspectRatio"] == 2.0
    assert info.attribute_types["smpte:TimeCode"] == "timecode"
    assert info.subimages == 1


def test_probe_counts_subimages(tmp_path):
    path = tmp_path / "mp.exr"
    specs = [oiio.ImageSpec(W, H, 3, "half"), oiio.ImageSpec(W, H, 3, "half")]
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), specs)
    out.write_image(_rand())
    out.open(str(path), specs[1], "AppendSubimage")
    out.write_image(_rand(seed=1))
    out.close()
    assert probe(path).subimages == 2


# ---------------------------------------------------------------- writing


@pytest.mark.parametrize("dtype, tol", [("half", 1e-3), ("float", 0.0)])
@pytest.mark.parametrize("compression", ["zip", "piz", "dwaa:45", "none"])
def test_write_exr_round_trip(tmp_path, dtype, tol, compression):
    out = tmp_path / "o.exr"
    src = _rand(4)
    write_frame(out, src, ["R", "G", "B", "A"], None, dtype=dtype, compression=compression)
    spec, px = _oiio_read(out)
    assert str(spec.format) == dtype
    assert spec.get_string_attribute("compression") == compression.split(":")[0]
    if not compression.startswith("dwa"):  # lossy
        np.testing.assert_allclose(px, src, atol=tol)
    assert _listing(tmp_path) == ["o.exr"]


def test_write_exr_layers(tmp_path):
    out = tmp_path / "layers.exr"
    names = ["R", "G", "B", "A", "fg.R", "fg.G", "fg.B", "matte.Y"]
    src = np.stack([np.full((H, W), i / 10, np.float32) for i in range(len(names))], axis=2)
    write_frame(out, src, names, None)
    info = probe(out)
    assert sorted(info.channel_names) == sorted(names)
    spec, px = _oiio_read(out)
    for i, name in enumerate(names):
        assert abs(px[0, 0, list(spec.channelnames).index(name)] - i / 10) < 1e-3


def test_write_half_clips_overflow(tmp_path):
    out = tmp_path / "big.exr"
    src = np.full((H, W, 3), 1e6, np.float32)
    write_frame(out, src, ["R", "G", "B"])
    assert np.isfinite(read_frame(out).rgb).all()


@pytest.mark.parametrize("dtype, levels", [("uint8", 255), ("uint16", 65535)])
def test_write_png_clamps_and_quantises(tmp_path, dtype, levels):
    out = tmp_path / "o.png"
    src = _rand()
    src[0, 0] = [-1.0, 2.0, np.nan]
    write_frame(out, src, ["R", "G", "B"], dtype=dtype)
    spec, px = _oiio_read(out)
    assert str(spec.format) == dtype
    np.testing.assert_array_equal(px[0, 0], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(px[1:], src[1:], atol=0.5 / levels + 1e-6)


def test_write_png_straight_alpha_not_premultiplied(tmp_path):
    src = np.zeros((H, W, 4), np.float32)
    src[..., 0] = 0.5
    src[..., 3] = 0.25
    straight = tmp_path / "straight.png"
    write_frame(straight, src, ["R", "G", "B", "A"], dtype="uint16", unassociated_alpha=True)
    _, px = _oiio_read(straight)
    assert abs(px[0, 0, 0] - 0.5) < 1e-4 and abs(px[0, 0, 3] - 0.25) < 1e-4
    # Without the flag OIIO treats the pixels as premultiplied and divides by alpha.
    assoc = tmp_path / "assoc.png"
    write_frame(assoc, src, ["R", "G", "B", "A"], dtype="uint16")
    _, px = _oiio_read(assoc)
    assert px[0, 0, 0] > 0.9
    # And the reader gives the straight RGB back.
    assert abs(read_frame(straight).rgb[0, 0, 0] - 0.5) < 1e-4


def _camera_source(tmp_path: Path) -> Path:
    attrs = {
        "smpte:TimeCode": (oiio.TypeTimeCode, (0x01020304, 0)),
        "FramesPerSecond": (oiio.TypeRational, (24000, 1001)),
        "PixelAspectRatio": 2.0,
        "cameraModel": "ALEXA 35",
        "nominalFocalLength": 35.0,
        "worldToCamera": (oiio.TypeMatrix, tuple(float(i) for i in range(16))),
        "oiio:ColorSpace": "ACEScg",
    }
    win = dict(x=5, y=7, full_x=0, full_y=0, full_width=40, full_height=30)
    return _oiio_write(tmp_path / "src.exr", _rand(), "half", attrs=attrs, **win)


def test_metadata_passthrough_exr(tmp_path):
    like = read_frame(_camera_source(tmp_path)).info
    out = tmp_path / "out.exr"
    write_frame(
        out, _rand(4), ["R", "G", "B", "A"], like, compression="piz", extra_attributes={"Software": "t"}
    )
    spec, _ = _oiio_read(out)
    assert spec.getattribute("smpte:TimeCode") == (0x01020304, 0)
    assert spec.get_string_attribute("smpte:TimeCode") == "01:02:03:04"
    assert spec.getattribute("FramesPerSecond") == (24000, 1001)
    assert spec.get_float_attribute("PixelAspectRatio") == 2.0
    assert spec.get_string_attribute("cameraModel") == "ALEXA 35"
    assert spec.get_float_attribute("nominalFocalLength") == 35.0
    assert spec.getattribute("worldToCamera")[5] == 5.0
    assert spec.get_string_attribute("Software") == "t"
    assert spec.get_string_attribute("compression") == "piz"  # ours, not the source's zip
    assert spec.get_string_attribute("oiio:ColorSpace") == ""  # colour tag is not guessed
    assert (spec.x, spec.y, spec.width, spec.height) == (5, 7, W, H)
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, 40, 30)


def test_colour_tag_and_attribute_removal(tmp_path):
    like = read_frame(_camera_source(tmp_path)).info
    out = tmp_path / "tagged.exr"
    extra = {"oiio:ColorSpace": "lin_rec709", "cameraModel": None}
    write_frame(out, _rand(), ["R", "G", "B"], like, extra_attributes=extra)
    info = probe(out)
    assert info.attributes["oiio:ColorSpace"] == "lin_rec709_scene"
    assert "cameraModel" not in info.attributes


def test_windows_not_copied_when_size_differs(tmp_path):
    like = read_frame(_camera_source(tmp_path)).info
    out = tmp_path / "small.exr"
    write_frame(out, np.zeros((4, 6, 3), np.float32), ["R", "G", "B"], like)
    info = probe(out)
    assert info.data_window == (0, 0, 6, 4) and info.display_window == (0, 0, 6, 4)
    assert info.attributes["PixelAspectRatio"] == 2.0  # metadata still copied


def test_exr_metadata_to_png(tmp_path):
    like = read_frame(_camera_source(tmp_path)).info
    out = tmp_path / "o.png"
    write_frame(out, _rand(4), ["R", "G", "B", "A"], like, unassociated_alpha=True)
    info = probe(out)
    assert info.file_format == "png" and info.pixel_type == "uint8"
    assert not any(k.startswith("openexr:") for k in info.attributes)


# ---------------------------------------------------------------- atomic writes and output errors


def test_successful_write_replaces_and_leaves_no_temp(tmp_path):
    out = tmp_path / "o.exr"
    write_frame(out, np.zeros((H, W, 3), np.float32), ["R", "G", "B"])
    write_frame(out, np.ones((H, W, 3), np.float32), ["R", "G", "B"])
    assert _listing(tmp_path) == ["o.exr"]
    assert read_frame(out).rgb.min() == 1.0


def test_failed_write_keeps_existing_file(tmp_path):
    out = tmp_path / "o.exr"
    write_frame(out, np.zeros((H, W, 3), np.float32), ["R", "G", "B"])
    before = out.read_bytes()
    with pytest.raises(OutputError, match="channel names"):
        write_frame(out, np.ones((H, W, 4), np.float32), ["R", "G", "B"])
    assert out.read_bytes() == before
    assert _listing(tmp_path) == ["o.exr"]


def test_failure_inside_oiio_removes_temp(tmp_path, monkeypatch):
    out = tmp_path / "o.exr"
    write_frame(out, np.zeros((H, W, 3), np.float32), ["R", "G", "B"])
    before = out.read_bytes()
    # A pixel buffer of the wrong size makes OIIO fail after the temp file was created.
    monkeypatch.setattr(giw, "_prepare_pixels", lambda px, dtype: np.zeros((2, 2, 3), np.float32))
    with pytest.raises(OutputError) as err:
        write_frame(out, np.ones((H, W, 3), np.float32), ["R", "G", "B"])
    assert "\n" not in err.value.problem and ".tmp-" not in err.value.problem
    assert out.read_bytes() == before
    assert _listing(tmp_path) == ["o.exr"]
    with pytest.raises(OutputError):
        write_frame(tmp_path / "new.exr", np.ones((H, W, 3), np.float32), ["R", "G", "B"])
    assert _listing(tmp_path) == ["o.exr"]


def test_failed_rename_removes_temp(tmp_path, monkeypatch):
    out = tmp_path / "o.png"

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(giw.os, "replace", full_disk)
    with pytest.raises(OutputError, match="no space left on device"):
        write_frame(out, _rand(), ["R", "G", "B"])
    assert _listing(tmp_path) == []


def test_missing_output_folder(tmp_path):
    out = tmp_path / "nope" / "o.exr"
    with pytest.raises(OutputError) as err:
        write_frame(out, _rand(), ["R", "G", "B"])
    assert err.value.message == f"{out}: output folder does not exist"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_unwritable_output_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            write_frame(folder / "o.exr", _rand(), ["R", "G", "B"])
        assert _listing(folder) == []
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("o.bmp", {}, "unsupported output format"),
        ("o", {}, "unsupported output format"),
        ("o.exr", {"compression": "bogus"}, "unknown EXR compression"),
        ("o.exr", {"compression": "piz:4"}, "unknown EXR compression"),
        ("o.exr", {"dtype": "uint8"}, "cannot store 'uint8'"),
        ("o.png", {"dtype": "half"}, "cannot store 'half'"),
        ("o.tif", {"compression": "piz"}, "unknown TIFF compression"),
    ],
)
def test_bad_output_options(tmp_path, name, kwargs, match):
    with pytest.raises(UsageError, match=match):
        write_frame(tmp_path / name, _rand(), ["R", "G", "B"], **kwargs)
    assert _listing(tmp_path) == []


def test_too_many_channels_for_png(tmp_path):
    with pytest.raises(UsageError, match="cannot store 5 channels"):
        write_frame(tmp_path / "o.png", _rand(5), ["R", "G", "B", "A", "Z"])


def test_typed_extra_attribute_and_string_array_passthrough(tmp_path):
    src = _oiio_write(
        tmp_path / "s.exr", _rand(), "half", attrs={"tags": (oiio.TypeDesc("string[2]"), ("a", "b"))}
    )
    out = tmp_path / "o.exr"
    tc = ("timecode", (0x10000000, 0))
    write_frame(out, _rand(), ["R", "G", "B"], probe(src), extra_attributes={"smpte:TimeCode": tc})
    info = probe(out)
    assert info.attributes["tags"] == ("a", "b")
    assert info.attribute_types["smpte:TimeCode"] == "timecode"
    assert info.attributes["smpte:TimeCode"] == (0x10000000, 0)
