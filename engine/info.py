"""`gsrender info FILE`: what the engine sees, the first thing a TD runs on a bad frame."""

from __future__ import annotations

import argparse

import numpy as np

from . import colour
from .errors import GsRenderError
from .io import probe, read_frame
from .preflight import check_frame, utf8_path


def describe(path: str) -> list[str]:
    utf8_path(path)
    info = probe(path)
    lines = [
        f"file:         {info.path}",
        f"format:       {info.file_format}{' (tiled)' if info.tiled else ''}, {info.subimages} subimage(s)",
        f"size:         {info.width}x{info.height}, {info.nchannels} channels {','.join(info.channel_names)}",
        f"pixel type:   {info.pixel_type} ({info.bits} bits)",
        f"data window:  origin ({info.x},{info.y}) size {info.width}x{info.height}",
        f"display win:  origin ({info.full_x},{info.full_y}) size {info.full_width}x{info.full_height}",
        f"colour space: {colour.default_colorspace(info)} (engine default; --colorspace overrides)",
    ]
    try:
        check_frame(path)  # a header declaring a gigantic image is reported, not decoded
        frame = read_frame(path)
        rgb = frame.rgb
        lines.append(
            f"RGB range:    min {float(rgb.min()):.4g} max {float(rgb.max()):.4g} "
            f"mean {', '.join(f'{v:.4g}' for v in rgb.reshape(-1, 3).mean(axis=0))}"
        )
        over = int(np.count_nonzero(rgb.max(axis=2) > 1.0))
        lines.append(f"above 1.0:    {over} pixel(s)")
        lines.append("readable:     yes (the engine can key this frame)")
    except GsRenderError as exc:
        lines.append(f"readable:     NO - {exc.problem}")
    if info.attributes:
        lines.append("metadata:")
        for key in sorted(info.attributes):
            lines.append(f"  {key} = {info.attributes[key]}")
    return lines


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gsrender info", description="Print what the engine sees in an image.")
    p.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    for i, path in enumerate(args.files):
        if i:
            print()
        print("\n".join(describe(path)))
    return 0
