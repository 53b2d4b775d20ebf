"""`gsrender info FILE`: what the engine sees, the first thing a TD runs on a bad frame."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from gsrender.engine import colour
from gsrender.engine.command import run_command
from gsrender.engine.errors import GsRenderError
from gsrender.engine.image_io import probe, read_frame
from gsrender.engine.layers import PlateSelection, choose_plate
from gsrender.engine.preflight import check_frame, utf8_path


def _timecode(value: object) -> str | None:
    """SMPTE timecode (two BCD words, as EXR and DPX store it) as HH:MM:SS:FF."""
    try:
        word = int(value[0])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None
    digits = [(word >> shift) & 0xF for shift in range(28, -1, -4)]
    hh, mm, ss, ff = (
        10 * (digits[i] & m1) + digits[i + 1] for i, m1 in ((0, 0x3), (2, 0x7), (4, 0x7), (6, 0x3))
    )
    drop = ";" if word & 0x40 else ":"  # the drop-frame flag
    return f"{hh:02d}:{mm:02d}:{ss:02d}{drop}{ff:02d}"


def _rational(value: object) -> str | None:
    try:
        num, den = (int(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if den == 0:
        return f"{num}/0"
    if den == 1:
        return str(num)
    return f"{num / den:.6g} ({num}/{den})" if num % den else str(num // den)


def format_attribute(value: object, type_name: str) -> str:
    """How a TD reads an attribute: timecodes as 01:02:03:04, rationals as 23.976 (24000/1001)."""
    text = None
    if type_name == "timecode":
        text = _timecode(value)
    elif type_name == "rational2i" or type_name.startswith("rational"):
        text = _rational(value)
    return text if text is not None else str(value)


def describe(path: str, selection: PlateSelection | None = None) -> list[str]:
    utf8_path(path)
    info = probe(path)
    lines = [
        f"file:         {info.path}",
        f"format:       {info.file_format}{' (tiled)' if info.tiled else ''}, {info.subimages} subimage(s)",
        f"size:         {info.width}x{info.height}, {info.nchannels} channels {','.join(info.channel_names)}",
        f"pixel type:   {info.pixel_type} ({info.bits} bits)",
        f"data window:  origin ({info.x},{info.y}) size {info.width}x{info.height}",
        f"display win:  origin ({info.full_x},{info.full_y}) size {info.full_width}x{info.full_height}",
    ]
    if len(info.parts) > 1:
        for k, (name, channels) in enumerate(info.parts):
            lines.append(f"part {k}:       '{name}' channels {','.join(channels)}")
    try:
        plate = choose_plate(info.path, info, selection)
        alpha = "" if plate.alpha is None else " (its alpha is ignored unless --input-alpha says otherwise)"
        lines.append(f"keys:         {plate.describe()}{alpha}")
    except GsRenderError as exc:
        lines.append(f"keys:         NOTHING - {exc.problem}")
    try:
        check_frame(path)  # a header declaring a gigantic image is reported, not decoded
        frame = read_frame(path, selection)
        space, why = colour.input_colorspace(frame.info)
        lines.append(f"colour space: {space} ({why}; --colorspace overrides)")
        rgb = frame.rgb
        lines.append(
            f"RGB range:    min {float(rgb.min()):.4g} max {float(rgb.max()):.4g} "
            f"mean {', '.join(f'{v:.4g}' for v in rgb.reshape(-1, 3).mean(axis=0))}"
        )
        over = int(np.count_nonzero(rgb.max(axis=2) > 1.0))
        lines.append(f"above 1.0:    {over} pixel(s)")
        lines.append("readable:     yes (the engine can key this frame)")
        info = frame.info
    except GsRenderError as exc:
        space, why = colour.input_colorspace(info)
        lines.append(f"colour space: {space} ({why}; --colorspace overrides)")
        lines.append(f"readable:     NO - {exc.problem}")
    if info.attributes:
        lines.append("metadata:")
        for key in sorted(info.attributes):
            text = format_attribute(info.attributes[key], info.attribute_types.get(key, ""))
            lines.append(f"  {key} = {text}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """`gsrender info FILE...`: print what the engine sees in each file."""
    return run_command(_info, argv, "info")


def _info(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gsrender info", description="Print what the engine sees in an image.")
    p.add_argument("files", nargs="+")
    p.add_argument("--layer", help="the layer a render would be told to key (as gsrender --layer)")
    p.add_argument("--part", help="the EXR part a render would be told to key (as gsrender --part)")
    args = p.parse_args(argv)
    selection = PlateSelection(layer=args.layer, part=args.part)
    for i, path in enumerate(args.files):
        if i:
            print()
        print("\n".join(describe(path, selection)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
