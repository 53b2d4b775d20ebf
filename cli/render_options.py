"""The render options of `gsrender`, as an argument group any parser can take.

The render command (cli/render.py) and `gsrender job` (cli/job/options.py), which passes
render options through to every farm task and so must check them exactly as the render would,
build their parsers from `add_render_arguments`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import NoReturn

from gsrender.engine.classic_keyer import FORMS as CLASSIC_FORMS
from gsrender.engine.compositor_inputs import CompositorInputs
from gsrender.engine.despot import DEFAULT_SIZE as DESPOT_DEFAULT
from gsrender.engine.despot import checked_size as checked_despot
from gsrender.engine.formats import AlphaMode
from gsrender.engine.image_write import WINDOW_MODES
from gsrender.engine.layers import INPUT_ALPHA_MODES
from gsrender.engine.preflight import DEFAULT_MAX_PIXELS
from gsrender.engine.tile_profile import AUTO_TILE, AUTO_WHOLE_FRAME

MAX_THREADS = 1024  # inference threads; more is a typo, and ONNX Runtime fails obscurely on it
MAX_IO_THREADS = 64  # frames read and written at once, each


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one `gsrender: error:` line (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"gsrender: error: {message} (see '{self.prog} --help')\n")


def _count(text: str, most: int = 1 << 20) -> int:
    """argparse type for sizes and thread counts: a whole number, 0 meaning auto."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (auto) or more, got {value}")
    if value > most:
        raise argparse.ArgumentTypeError(f"must be at most {most}, got {value}")
    return value


def _threads(text: str) -> int:
    return _count(text, MAX_THREADS)


def _io_threads(text: str) -> int:
    return _count(text, MAX_IO_THREADS)


def _positive(text: str) -> int:
    """argparse type for limits: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _unit(text: str) -> float:
    """argparse type for strengths: a finite number from 0 to 1 (NaN would reach every pixel)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a number from 0 to 1, got '{text}'") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got '{text}'")
    return value


def despot_size(text: str) -> int:
    """argparse type for --despot: a whole number of pixels, 0 meaning off."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a whole number of pixels, got '{text}'") from None
    try:
        return checked_despot(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_render_arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Add every render option (input, -o, -F and the option groups) to `parser`; returns the
    actions added, so that a parser with options of its own can tell which are render options."""
    first = len(parser._actions)  # argparse has no public list of a parser's actions
    parser.add_argument(
        "input",
        help="input image or sequence: plate.####.exr (one digit per #), plate.%%04d.png, "
        "plate.@@@@.exr, or a single file",
    )
    parser.add_argument(
        "-o",
        "--output",
        help="output file or pattern; format from the extension (.exr, .png, "
        ".tif). Default: a 'keyed' folder beside the input, EXR",
    )
    parser.add_argument(
        "-F",
        "--frames",
        help="frame range: 1-100, 1-100x2, 1-10,20-30, -3-2 (default: every frame on disk)",
    )
    _add_input_options(parser)
    _add_keying_options(parser)
    _add_colour_options(parser)
    _add_output_options(parser)
    add_compositor_arguments(parser)
    _add_farm_options(parser)
    return parser._actions[first:]


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    """--layer, --part, --input-alpha: which pixels of the file are the plate."""
    i = parser.add_argument_group("input")
    i.add_argument(
        "--layer",
        help="RGB layer to key in a layered or multi-part EXR (beauty, rgba, or a part's name); "
        "default: the rgba/beauty plate, refusing to guess between equals",
    )
    i.add_argument("--part", help="EXR part (subimage) to key, by index or name (default: any)")
    i.add_argument(
        "--input-alpha",
        choices=INPUT_ALPHA_MODES,
        default="ignore",
        help="the plate's own alpha: ignore (default: the key alone decides), straight or "
        "premultiplied (the output alpha is the key times it; premultiplied RGB is divided first)",
    )


def _add_keying_options(parser: argparse.ArgumentParser) -> None:
    """The keyer, its backend and model, tiles, threads, despill, screen colour."""
    g = parser.add_argument_group("keying")
    g.add_argument(
        "--keyer",
        choices=("neural", "classic"),
        default="neural",
        help="neural network (default) or the classic colour-difference keyer",
    )
    g.add_argument(
        "--classic-form",
        choices=CLASSIC_FORMS,
        default="local",
        help="with --keyer classic: local (default; keeps strands, uses the subject's colour nearby), "
        "max (Keylight's G - max(R, B), the earlier default, cheaper) or weighted (IBK's G - (R + B) / 2)",
    )
    g.add_argument("--backend", default="auto", help="auto (default), onnxruntime, cuda, torch, tensorrt")
    g.add_argument(
        "--model", help="ONNX model (default: the bundled models/gskey.onnx); a .pt for --backend torch"
    )
    g.add_argument(
        "--tile",
        type=_count,
        default=0,
        help=f"tile size in pixels (0 = auto: whole frame up to {AUTO_WHOLE_FRAME[0]}x{AUTO_WHOLE_FRAME[1]}, "
        f"else {AUTO_TILE}); "
        "results do not depend on it",
    )
    g.add_argument(
        "--threads", type=_threads, default=0, help=f"inference threads (0 = auto, at most {MAX_THREADS})"
    )
    g.add_argument(
        "--io-threads",
        type=_io_threads,
        default=0,
        help="frames read and written at once, each (0 = auto: 1 when inference runs on the CPU, "
        f"up to 4 beside a GPU; at most {MAX_IO_THREADS})",
    )
    g.add_argument(
        "--precision", choices=("fp16", "fp32"), default="fp16", help="TensorRT precision (fp32 = reference)"
    )
    g.add_argument("--despill", type=_unit, default=1.0, help="despill strength 0..1 (0 = off; default 1)")
    g.add_argument(
        "--despot",
        type=despot_size,
        default=DESPOT_DEFAULT,
        metavar="PIXELS",
        help="key out solid islands up to PIXELS across that clear screen surrounds, such as tracking "
        f"markers (0 = off; default {DESPOT_DEFAULT}); set 0 for shots with small loose objects "
        "(sparks, debris, a distant ball)",
    )
    g.add_argument(
        "--screen-colour",
        "--screen-color",
        dest="screen_colour",
        help="screen colour override as linear Rec.709 R,G,B (default: estimated per frame)",
    )


def _add_colour_options(parser: argparse.ArgumentParser) -> None:
    """The input's and the outputs' colour spaces."""
    c = parser.add_argument_group("colour")
    c.add_argument(
        "--colorspace",
        "--colourspace",
        dest="colorspace",
        help="input colour space (OCIO name in the built-in config, e.g. ACEScg, ACES2065-1, "
        "'Linear Rec.709 (sRGB)', 'sRGB - Texture', or Cineon); default: the file's colour tag, "
        "log DPX transfer (Cineon) or EXR chromaticities, else EXR/DPX scene-linear Rec.709, "
        "PNG/JPEG/TIFF sRGB",
    )
    c.add_argument(
        "--out-colorspace",
        "--out-colourspace",
        dest="out_colorspace",
        help="output colour space (default: the input's for EXR from linear input, sRGB for PNG)",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    """Layers, alpha convention, sample types, compression, window."""
    o = parser.add_argument_group("output")
    o.add_argument(
        "--layers", default="", help="extra EXR layers, comma separated: fg (straight foreground), matte"
    )
    o.add_argument(
        "--alpha-mode",
        choices=[mode.value for mode in AlphaMode],
        default="auto",
        help="auto: EXR premultiplied, PNG/TIFF straight",
    )
    o.add_argument("--exr-dtype", choices=("half", "float"), default="half")
    o.add_argument(
        "--compression",
        default="zip",
        help="EXR compression: zip (default), piz, dwaa, none, ...; under the lossy dwaa, dwab, "
        "b44 and b44a, alpha and matte.A stay lossless (b44: stored as 32-bit float)",
    )
    o.add_argument("--png-bits", type=int, choices=(8, 16), default=8)
    o.add_argument(
        "--output-window",
        choices=WINDOW_MODES,
        default="auto",
        help="auto (default): PNG/TIFF at the input's display window (padded with alpha 0, "
        "overscan cropped), EXR keeps the data window; display: always the display window; "
        "data: always the data window",
    )


def _add_farm_options(parser: argparse.ArgumentParser) -> None:
    """Resuming, failure policy, dry runs, reports, logging, memory limits."""
    f = parser.add_argument_group("farm")
    f.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip frames whose output exists and is complete: opens, reads, right size (resume)",
    )
    f.add_argument(
        "--on-error",
        choices=("fail", "skip"),
        default="fail",
        help="bad input frame: fail = stop taking new frames, finish those in flight, exit 1; "
        "skip = log it, render the rest, exit 1 at the end",
    )
    f.add_argument("--dry-run", action="store_true", help="list what would be rendered and exit")
    f.add_argument("--report", help="write a JSON report of this run (per frame status, seconds, errors)")
    f.add_argument("--no-progress", action="store_true", help="plain log lines even on a terminal")
    f.add_argument(
        "--max-pixels",
        type=_positive,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse input frames declaring more pixels than this, before decoding them "
        f"(default {DEFAULT_MAX_PIXELS}: 16384x16384); frames that would not fit in free memory are "
        "refused too",
    )
    f.add_argument("-q", "--quiet", action="store_true", help="only errors and the summary")
    f.add_argument(
        "--debug",
        action="store_true",
        help="log the traceback of an unexpected error (also GSRENDER_DEBUG=1)",
    )


def default_output(pattern: str) -> str:
    """Where frames go without -o: a 'keyed' folder beside the input, EXR."""
    src = Path(pattern)
    return str(src.parent / "keyed" / (src.stem + ".exr"))


def negative_frame_ranges(argv: list[str]) -> list[str]:
    """'-F -3-2' as '-F=-3-2': argparse takes a value starting with '-' for an option."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] in ("-F", "--frames") and arg.startswith("-") and arg[1:2].isdigit():
            out[-1] = f"{argv[i - 1]}={arg}"
        else:
            out.append(arg)
    return out


def add_compositor_arguments(parser: argparse.ArgumentParser) -> None:
    """The CLI options (an argument group of the render command)."""
    g = parser.add_argument_group("compositor inputs")
    g.add_argument(
        "--garbage-matte",
        metavar="SEQ",
        help="garbage matte: where it is 1 the output is transparent (alpha 0, colour 0); a "
        "sequence with the plate's frame token or one still; its alpha channel, else its first",
    )
    g.add_argument(
        "--core-matte",
        metavar="SEQ",
        help="core matte: where it is 1 the output is opaque (the plate's own colour); as --garbage-matte",
    )
    g.add_argument("--invert-garbage", action="store_true", help="the garbage matte is 0 on the screen")
    g.add_argument(
        "--matte-fit", action="store_true", help="scale mattes of another size to the plate's (else refused)"
    )
    g.add_argument(
        "--clean-plate",
        metavar="SEQ",
        help="the screen without the subject (sequence or one still, the plate's size and exposure): "
        "the keyer's screen guide and the unmix's screen colour instead of the estimate",
    )


def compositor_inputs_from_args(args: argparse.Namespace) -> CompositorInputs:
    """The compositor inputs the render options name (none given: none used)."""
    return CompositorInputs(
        garbage=args.garbage_matte or None,
        core=args.core_matte or None,
        clean_plate=args.clean_plate or None,
        invert_garbage=args.invert_garbage,
        matte_fit=args.matte_fit,
    )
