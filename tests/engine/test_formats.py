"""Output formats and alpha modes are resolved once into types that carry their rules."""

from __future__ import annotations

import json

import pytest

from gsrender.engine.errors import UsageError
from gsrender.engine.formats import AlphaMode, OutputFormat
from gsrender.engine.output import OutputSettings, is_premultiplied, writer_dtype
from gsrender.engine.render import FrameStatus


@pytest.mark.parametrize(
    "path, fmt",
    [("k.0001.EXR", OutputFormat.EXR), ("a/b.png", OutputFormat.PNG), ("x.tiff", OutputFormat.TIFF),
     ("x.jpeg", OutputFormat.JPEG), ("x.dpx", OutputFormat.DPX)],
)  # fmt: skip
def test_the_format_is_read_from_the_extension_once(path: str, fmt: OutputFormat) -> None:
    assert OutputFormat.of(path) is fmt and OutputFormat.of(fmt) is fmt
    assert fmt.scene_linear == (fmt is OutputFormat.EXR)
    assert fmt == fmt.value  # the OpenImageIO name, wherever a string is wanted


def test_an_unknown_extension_is_one_usage_error() -> None:
    with pytest.raises(UsageError, match=r"unsupported output format '\.gif'"):
        OutputFormat.of("k.gif")
    assert OutputFormat.named_by("k.gif") is None


def test_alpha_mode_and_sample_type_follow_the_format_not_a_file_name() -> None:
    auto, straight = OutputSettings(), OutputSettings(alpha_mode=AlphaMode.STRAIGHT)
    assert is_premultiplied(OutputFormat.EXR, auto) and not is_premultiplied(OutputFormat.PNG, auto)
    assert not is_premultiplied(OutputFormat.EXR, straight)
    assert writer_dtype(OutputFormat.EXR, auto) == "half"
    assert writer_dtype(OutputFormat.PNG, OutputSettings(png_bits=16)) == "uint16"


def test_frame_states_are_one_type_that_reports_as_text() -> None:
    assert [s.value for s in FrameStatus] == ["rendered", "skipped", "failed"]
    assert json.dumps({"status": FrameStatus.SKIPPED}) == '{"status": "skipped"}'


def test_input_alpha_is_a_type_the_render_options_offer_in_full() -> None:
    from gsrender.engine.formats import InputAlpha
    from gsrender.engine.layers import INPUT_ALPHA_MODES, PlateSelection

    assert INPUT_ALPHA_MODES == ("ignore", "straight", "premultiplied")
    assert PlateSelection().input_alpha is InputAlpha.IGNORE
    assert InputAlpha("premultiplied") is InputAlpha.PREMULTIPLIED
