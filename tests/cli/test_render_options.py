"""The render options as a reusable argument group (the render command and `gsrender job`)."""

from __future__ import annotations

import pytest

from gsrender.cli.render_options import (
    OneLineParser,
    add_render_arguments,
    default_output,
    negative_frame_ranges,
)


def test_add_render_arguments_returns_exactly_the_render_options():
    parser = OneLineParser(prog="x")
    parser.add_argument("--before")
    actions = add_render_arguments(parser)
    parser.add_argument("--after")
    dests = [a.dest for a in actions]
    assert dests[:3] == ["input", "output", "frames"]
    assert {"tile", "layers", "garbage_matte", "skip_existing", "debug"} <= set(dests)
    assert not {"help", "before", "after"} & set(dests)
    args = parser.parse_args(["p.####.exr", "--screen-color", "0.1,0.5,0.1"])
    assert args.input == "p.####.exr" and args.screen_colour == "0.1,0.5,0.1" and args.tile == 0


def test_default_output_and_negative_frame_ranges():
    assert default_output("shots/plate.####.dpx") == "shots/keyed/plate.####.exr"
    assert negative_frame_ranges(["p.exr", "-F", "-3-2", "-q"]) == ["p.exr", "-F=-3-2", "-q"]
    assert negative_frame_ranges(["-F", "1-3"]) == ["-F", "1-3"]


def test_a_bad_value_is_one_line_exit_2(capsys):
    parser = OneLineParser(prog="gsrender")
    add_render_arguments(parser)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["p.exr", "--tile", "-1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gsrender: error: argument --tile")
