import threading
from pathlib import Path

import numpy as np
import pytest

from gsrender.engine.colour import (
    SRGB_SPACE,
    WORKING_SPACE,
    convert,
    default_colorspace,
    is_scene_linear,
    resolve_colorspace,
)
from gsrender.engine.errors import UsageError
from gsrender.engine.image_io import ImageInfo


def _info(file_format: str, pixel_type: str, **attributes) -> ImageInfo:
    return ImageInfo(
        path=Path("x"),
        file_format=file_format,
        width=4,
        height=2,
        nchannels=3,
        channel_names=["R", "G", "B"],
        pixel_type=pixel_type,
        bits=16,
        attributes=attributes,
    )


@pytest.mark.parametrize(
    "name, canonical",
    [
        ("lin_rec709", WORKING_SPACE),
        ("Linear Rec.709 (sRGB)", WORKING_SPACE),
        ("LINEAR", WORKING_SPACE),
        ("srgb_tx", SRGB_SPACE),
        ("sRGB - Texture", SRGB_SPACE),
        ("sRGB", SRGB_SPACE),
        ("acescg", "ACEScg"),
        ("ACES2065-1", "ACES2065-1"),
        ("aces", "ACES2065-1"),
        (" raw ", "Raw"),
    ],
)
def test_resolve(name, canonical):
    assert resolve_colorspace(name) == canonical


@pytest.mark.parametrize("name", ["nope", "", "Rec.709 gamma"])
def test_resolve_unknown(name):
    with pytest.raises(UsageError) as err:
        resolve_colorspace(name)
    assert f"unknown colour space '{name}'" in err.value.message
    assert "ACEScg" in err.value.message and "lin_rec709" in err.value.message


def test_is_scene_linear():
    assert is_scene_linear(WORKING_SPACE)
    assert is_scene_linear("ACEScg")
    assert not is_scene_linear("srgb_tx")
    assert not is_scene_linear("ACEScct")
    assert not is_scene_linear("Raw")


def test_srgb_to_linear_known_values():
    rgb = np.array([[[0.0, 0.5, 1.0], [0.04045, 0.2, 0.8]]], dtype=np.float32)
    lin = convert(rgb, "srgb_tx", "lin_rec709")
    expected = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(lin, expected, atol=1e-4)
    assert abs(lin[0, 0, 1] - 0.214) < 1e-3
    back = convert(lin, "lin_rec709", "srgb_tx")
    np.testing.assert_allclose(back, rgb, atol=1e-4)


def test_convert_returns_new_array_and_keeps_input():
    rgb = np.full((2, 3, 3), 0.5, dtype=np.float32)
    out = convert(rgb, "srgb_tx", "lin_rec709")
    assert out is not rgb and out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    assert np.all(rgb == 0.5)
    same = convert(rgb, "lin_rec709", WORKING_SPACE)  # identity fast path still copies
    assert same is not rgb and np.array_equal(same, rgb)


def test_linear_acescg_round_trip_keeps_hdr():
    rng = np.random.default_rng(1)
    rgb = rng.uniform(0.0, 1.0, (6, 8, 3)).astype(np.float32)
    rgb[0, 0] = [40.0, 12.5, 3.0]  # an HDR highlight
    rgb[0, 1] = [1.0, 0.0, 0.0]  # pure Rec.709 red
    ap1 = convert(rgb, WORKING_SPACE, "ACEScg")
    assert not np.allclose(ap1, rgb, atol=1e-3)  # it really converted
    # Rec.709 red in AP1, with the D65 -> ACES white adaptation: ~ (0.613, 0.070, 0.021)
    np.testing.assert_allclose(ap1[0, 1], [0.613, 0.070, 0.021], atol=0.01)
    back = convert(ap1, "ACEScg", WORKING_SPACE)
    np.testing.assert_allclose(back, rgb, rtol=1e-4, atol=1e-5)
    assert back[0, 0, 0] > 39.9


def test_convert_threads_share_processor():
    rgb = np.full((4, 4, 3), 0.5, dtype=np.float32)
    results = [None] * 4

    def work(i):
        results[i] = convert(rgb, "srgb_tx", "ACEScg")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_convert_rejects_bad_shape():
    with pytest.raises(ValueError):
        convert(np.zeros((2, 2, 4), np.float32), "srgb_tx", "lin_rec709")


@pytest.mark.parametrize(
    "file_format, pixel_type, expected",
    [
        ("openexr", "half", WORKING_SPACE),
        ("openexr", "float", WORKING_SPACE),
        ("dpx", "uint16", WORKING_SPACE),
        ("hdr", "float", WORKING_SPACE),
        ("tiff", "float", WORKING_SPACE),
        ("tiff", "uint16", SRGB_SPACE),
        ("tiff", "uint8", SRGB_SPACE),
        ("png", "uint8", SRGB_SPACE),
        ("png", "uint16", SRGB_SPACE),
        ("jpeg", "uint8", SRGB_SPACE),
    ],
)
def test_default_colorspace_by_format(file_format, pixel_type, expected):
    assert default_colorspace(_info(file_format, pixel_type)) == expected


def test_default_colorspace_uses_known_tag():
    assert default_colorspace(_info("openexr", "half", **{"oiio:ColorSpace": "lin_ap1_scene"})) == "ACEScg"
    # Unknown or data tags fall back to the format rule.
    assert default_colorspace(_info("openexr", "half", **{"oiio:ColorSpace": "weird"})) == WORKING_SPACE
    assert default_colorspace(_info("png", "uint8", **{"oiio:ColorSpace": "Raw"})) == SRGB_SPACE


def test_roles_keep_config_meaning():
    assert resolve_colorspace("scene_linear") == "ACEScg"
    assert resolve_colorspace("data") == "Raw"


# ---------------------------------------------------------------- which colour space a file is read in

AP1 = (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)


@pytest.mark.parametrize(
    "fmt, ptype, attrs, space, reason",
    [
        ("openexr", "half", {"chromaticities": AP1}, "ACEScg", "chromaticities (ap1)"),
        ("png", "uint8", {"chromaticities": AP1}, "sRGB Encoded AP1", "chromaticities (ap1)"),
        (
            "openexr",
            "half",
            {"oiio:ColorSpace": "lin_rec2020", "chromaticities": AP1},
            "Linear Rec.2020",
            "tag",
        ),
        ("openexr", "half", {"chromaticities": (0.1,) * 8}, WORKING_SPACE, "not a known set of primaries"),
        ("dpx", "uint16", {"dpx:Transfer": "Printing density"}, "Cineon", "dpx:Transfer"),
        ("dpx", "uint16", {"oiio:ColorSpace": "KodakLog"}, "Cineon", "KodakLog"),
        ("dpx", "uint16", {"dpx:Transfer": "Linear"}, WORKING_SPACE, "dpx:Transfer"),
        ("dpx", "uint16", {"dpx:Transfer": "Undefined"}, WORKING_SPACE, "no colour tag"),
    ],
)
def test_input_colorspace_rules(fmt, ptype, attrs, space, reason):
    from gsrender.engine.colour import input_colorspace

    got, why = input_colorspace(_info(fmt, ptype, **attrs))
    assert got == space and reason in why


def test_chromaticities_for_output_spaces():
    from gsrender.engine.colour import PRIMARIES, chromaticities_for

    assert chromaticities_for("ACEScg") == PRIMARIES["ap1"]
    assert chromaticities_for("acescct") == PRIMARIES["ap1"]
    assert chromaticities_for("srgb") == PRIMARIES["rec709"]
    assert chromaticities_for("ACES2065-1") == PRIMARIES["ap0"]
    assert chromaticities_for("Linear AdobeRGB") is None  # not in the table: written without


def test_log_inputs_go_to_srgb_in_png_and_linear_in_exr():
    from gsrender.engine.output import OutputSettings, output_colorspace

    settings = OutputSettings()
    assert output_colorspace(Path("k.png"), "Cineon", settings) == SRGB_SPACE
    assert output_colorspace(Path("k.exr"), "Cineon", settings) == WORKING_SPACE
    assert output_colorspace(Path("k.png"), "sRGB Encoded AP1", settings) == SRGB_SPACE  # PNG cannot say AP1
    assert output_colorspace(Path("k.exr"), "ACEScg", settings) == "ACEScg"
