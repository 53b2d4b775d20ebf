"""Compositor inputs: garbage matte, core matte and clean plate (issue 14).

An artist knows things the keyer can only guess: which areas are certainly screen or rigs
(garbage matte), which are certainly subject (core matte), and what the screen looks like
without the subject (clean plate). This module reads them per frame and applies them:

- Mattes are read from any file OpenImageIO reads: the alpha channel when the file has one
  (A, or the last of 2 or 4 channels), else the first channel (a single-channel matte, or
  R of an RGB one). Values are clipped to [0, 1]; no colour conversion (they are data).
- They are applied to the key before the unmix: garbage first, alpha *= 1 - garbage, then
  core, alpha = alpha + core * (1 - alpha), so a fractional matte blends softly and core
  wins where both are 1. The unmix then gives aF = 0 where alpha is 0 and aF = plate where
  alpha is 1, exactly (engine/unmix.py), before despill.
- A clean plate is the unmix's local screen colour B (the true screen behind each pixel,
  instead of the network's guess), and the keyer's screen guide where the keyer takes one
  (ModelInfo.clean_plate_guide): the classic keyer does (CleanPlateScreen: full resolution
  instead of the coarse grid of screen_estimate.estimate_screen); the shipped network was trained
  with the estimate only and keys worse with a clean plate as its guide (SAD 1.98 -> 2.69 on
  16 synthetic green-screen plates), so it keeps its estimate until a model trained with
  clean plates says otherwise in its metadata. The clean plate is converted to the working
  space like the plate and must match the plate's size and, on its screen areas, exposure.
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import colour
from .encoding import encode_for_network
from .errors import InputError, UsageError
from .preflight import DEFAULT_MAX_PIXELS, check_decode, utf8_path
from .screen_estimate import ScreenEstimate, estimate_screen
from .sequence import frame_path, has_frame_token

# A clean plate whose screen is more than this factor brighter or darker than the plate's
# own screen areas is the wrong plate or the wrong exposure: keying with it would be worse
# than the estimate, so it is refused.
MAX_EXPOSURE_RATIO = 2.0
MIN_SCREEN_SHARE = 0.01  # share of the plate that must look like the clean plate's screen
CHROMA_TOLERANCE = 0.08  # r/g and b/g difference that still counts as the same screen
STILL_CACHE = 4  # still mattes and clean plates kept decoded (one shot uses at most three)


@dataclass(frozen=True)
class CompositorInputs:
    """The three optional inputs as patterns (frame token or one still), as given on the command line."""

    garbage: str | None = None
    core: str | None = None
    clean_plate: str | None = None
    invert_garbage: bool = False
    matte_fit: bool = False  # scale mattes of another size to the plate's (else refused)

    @property
    def used(self) -> bool:
        return bool(self.garbage or self.core or self.clean_plate)


@dataclass
class FrameInputs:
    """The decoded inputs for one frame: HxW mattes in [0, 1] and the clean plate, linear, HxWx3."""

    garbage: np.ndarray | None = None
    core: np.ndarray | None = None
    clean_plate: np.ndarray | None = None


@dataclass
class CleanPlateScreen(ScreenEstimate):
    """A ScreenEstimate whose clean screen is the artist's clean plate at full resolution.

    colour and grid come from estimate_screen on the clean plate (it is all screen, so the
    colour estimate is reliable); ``smooth``/``smooth_enc`` are the clean plate itself, so
    the network, the classic keyer and the unmix all see the true screen behind each pixel.
    """

    plate: np.ndarray | None = None  # HxWx3 working-space linear clean plate

    @property
    def smooth(self) -> np.ndarray:
        return self.plate

    def smooth_enc_padded(self, height: int, width: int) -> np.ndarray:
        return encode_for_network(self.plate, (height, width))


def clean_plate_screen(clean_lin: np.ndarray, colour_override: np.ndarray | None = None) -> CleanPlateScreen:
    """The screen guide of a clean plate (see CleanPlateScreen)."""
    clean_lin = np.ascontiguousarray(clean_lin, dtype=np.float32)
    est = estimate_screen(clean_lin, colour_override)
    return CleanPlateScreen(
        colour=est.colour, grid=est.grid, height=est.height, width=est.width, found=est.found, plate=clean_lin
    )


def apply_mattes(alpha: np.ndarray, garbage: np.ndarray | None, core: np.ndarray | None) -> np.ndarray:
    """Garbage pushes alpha to 0, then core pushes it to 1, in proportion to the mattes' values."""
    out = alpha
    if garbage is not None:
        out = out * (1.0 - garbage)
    if core is not None:
        out = out + core * (1.0 - out)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def input_path(pattern: str, frame: int | None, what: str) -> Path:
    """The file of one frame: the pattern's frame token filled in, or the one still for every frame."""
    if not has_frame_token(pattern):
        return Path(pattern)
    if frame is None:
        raise UsageError(pattern, f"{what} has a frame token but the plate is a single file")
    return frame_path(pattern, frame)


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def from_args(args: argparse.Namespace) -> CompositorInputs:
    return CompositorInputs(
        garbage=args.garbage_matte or None,
        core=args.core_matte or None,
        clean_plate=args.clean_plate or None,
        invert_garbage=args.invert_garbage,
        matte_fit=args.matte_fit,
    )


def check_patterns(inputs: CompositorInputs, plate_is_sequence: bool) -> None:
    """Up-front checks: a frame token needs a plate sequence (exit 2); a still must exist (exit 3)."""
    for what, pattern in named_patterns(inputs):
        utf8_path(pattern)
        if has_frame_token(pattern):
            if not plate_is_sequence:
                raise UsageError(pattern, f"{what} has a frame token but the plate is a single file")
        elif not Path(pattern).is_file():
            raise InputError(pattern, f"{what}: file not found")


def named_patterns(inputs: CompositorInputs) -> list[tuple[str, str]]:
    """(option, pattern) of each input given."""
    pairs = (
        ("--garbage-matte", inputs.garbage),
        ("--core-matte", inputs.core),
        ("--clean-plate", inputs.clean_plate),
    )
    return [(w, p) for w, p in pairs if p]


def _matte_channel(channel_names: list[str]) -> int:
    """Alpha when there is one (named A or alpha, else the last of 2 or 4), else the first channel."""
    for i, name in enumerate(channel_names):
        if name.split(".")[-1].lower() in ("a", "alpha"):
            return i
    return len(channel_names) - 1 if len(channel_names) in (2, 4) else 0


def _read_pixels(path: Path, what: str) -> tuple[np.ndarray, list[str], object]:
    """HxWxC float32 pixels of the first part, with channel names and the header, or one InputError line."""
    import OpenImageIO as oiio

    from .image_io import info_from_spec, one_line, open_image

    try:
        path, inp = open_image(path)
    except InputError as exc:
        raise InputError(path, f"{what}: {exc.problem}") from None
    try:
        info = info_from_spec(path, inp)
        spec = inp.spec()
        if spec.width <= 0 or spec.height <= 0 or spec.deep or spec.depth != 1:
            raise InputError(path, f"{what}: not a flat 2D image")
        check_decode(path, spec.width, spec.height, spec.nchannels, DEFAULT_MAX_PIXELS)  # before decoding
        pixels = inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)
        if pixels is None or inp.has_error:
            raise InputError(path, f"{what}: {one_line(inp.geterror(), 'pixel data could not be read')}")
    finally:
        inp.close()
    pixels = np.asarray(pixels, np.float32).reshape(spec.height, spec.width, spec.nchannels)
    if not np.isfinite(pixels).all():
        bad = int(np.count_nonzero(~np.isfinite(pixels)))
        raise InputError(path, f"{what}: {bad} samples are NaN or Inf")
    return pixels, list(spec.channelnames), info


def _size_problem(what: str, got: tuple[int, int], want: tuple[int, int], fit_hint: bool) -> str:
    hint = " (--matte-fit scales it)" if fit_hint else ""
    return f"{what} is {got[1]}x{got[0]}, the plate is {want[1]}x{want[0]}{hint}"


def _resize(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize (pixel centres aligned), for --matte-fit."""

    def coords(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        i0 = np.floor(pos).astype(np.intp)
        return i0, np.minimum(i0 + 1, n_in - 1), (pos - i0).astype(np.float32)

    y0, y1, fy = coords(height, plane.shape[0])
    x0, x1, fx = coords(width, plane.shape[1])
    rows = plane[y0] * (1 - fy)[:, None] + plane[y1] * fy[:, None]
    return (rows[:, x0] * (1 - fx) + rows[:, x1] * fx).astype(np.float32)


def read_matte(path: Path, size: tuple[int, int], what: str, fit: bool = False) -> np.ndarray:
    """HxW float32 matte in [0, 1] sized like the plate (height, width)."""
    pixels, names, _ = _read_pixels(path, what)
    plane = np.clip(pixels[..., _matte_channel(names)], 0.0, 1.0)
    if plane.shape != size:
        if not fit:
            raise InputError(path, _size_problem(what, plane.shape, size, True))
        plane = np.clip(_resize(plane, *size), 0.0, 1.0)
    return np.ascontiguousarray(plane, dtype=np.float32)


def read_clean_plate(path: Path, size: tuple[int, int], colorspace: str | None) -> np.ndarray:
    """HxWx3 working-space linear clean plate; its colour space as for a plate (--colorspace, or its own)."""
    pixels, _, info = _read_pixels(path, "clean plate")
    if pixels.shape[2] < 3:
        raise InputError(path, f"clean plate: {pixels.shape[2]}-channel image, an RGB one is required")
    if pixels.shape[:2] != size:
        raise InputError(path, _size_problem("clean plate", pixels.shape[:2], size, False))
    space = colour.resolve_colorspace(colorspace) if colorspace else colour.default_colorspace(info)
    return colour.convert(np.ascontiguousarray(pixels[..., :3]), space, colour.WORKING_SPACE)


def _block_means(img: np.ndarray, block: int = 4) -> np.ndarray:
    """Means of block x block pixels as an Nx3 list (the ragged edge dropped; tiny images kept whole)."""
    h, w = (img.shape[0] // block) * block, (img.shape[1] // block) * block
    if not h or not w:
        return img.reshape(-1, 3)
    blocks = img[:h, :w].reshape(h // block, block, w // block, block, 3)
    return blocks.mean(axis=(1, 3), dtype=np.float32).reshape(-1, 3)


def check_exposure(plate: np.ndarray, clean: np.ndarray, path: Path | str) -> None:
    """Refuse a clean plate whose screen does not match the plate's screen areas.

    Screen areas are the pixels whose chromaticity (r/g, b/g) matches the clean plate's at the
    same place: the subject rarely has the screen's exact hue, while a change of exposure keeps
    the chromaticity and shows in the brightness ratio, whose median is then tested.
    """
    p, c = _block_means(plate), _block_means(clean)  # 4x4 means: grain would blur the chromaticity
    ch = int(np.argmax(np.median(c, axis=0)))
    others = [i for i in range(3) if i != ch]
    ps, cs = np.maximum(p[:, ch], 1e-6), np.maximum(c[:, ch], 1e-6)
    same = np.ones(len(p), bool)
    for o in others:
        same &= np.abs(p[:, o] / ps - c[:, o] / cs) < CHROMA_TOLERANCE
    same &= (p[:, ch] > 1e-4) & (c[:, ch] > 1e-4)
    if np.count_nonzero(same) < MIN_SCREEN_SHARE * len(p):
        raise InputError(path, "clean plate: its screen colour matches none of the plate's screen areas")
    ratio = float(np.median(p[same, ch] / c[same, ch]))
    if not 1.0 / MAX_EXPOSURE_RATIO <= ratio <= MAX_EXPOSURE_RATIO:
        stops = float(np.log2(ratio))
        raise InputError(
            path, f"clean plate: its exposure differs from the plate's screen by {stops:+.1f} stops"
        )


def frame_inputs(
    plate_lin: np.ndarray,
    garbage: np.ndarray | None,
    core: np.ndarray | None,
    clean_lin: np.ndarray | None,
    invert_garbage: bool = False,
    clean_path: Path | str = "clean plate",
) -> FrameInputs:
    """Decoded mattes and clean plate (linear, working space) -> checked FrameInputs for one frame.

    Shared by the CLI's reader and the OpenFX worker, so both apply the same rules.
    """
    if garbage is not None and invert_garbage:
        garbage = 1.0 - garbage
    if clean_lin is not None:
        check_exposure(plate_lin, clean_lin, clean_path)
    return FrameInputs(garbage=garbage, core=core, clean_plate=clean_lin)


class InputReader:
    """Reads a shot's compositor inputs frame by frame; stills are decoded once and shared.

    Thread-safe: the render's reader threads call it concurrently.
    """

    def __init__(self, inputs: CompositorInputs, colorspace: str | None = None) -> None:
        self.inputs = inputs
        self.colorspace = colorspace
        self._lock = threading.Lock()
        self._stills: dict[tuple, np.ndarray] = {}

    def _cached(self, key: tuple, load) -> np.ndarray:  # noqa: ANN001 - a zero-argument loader
        with self._lock:
            hit = self._stills.get(key)
        if hit is not None:
            return hit
        value = load()
        with self._lock:
            if len(self._stills) >= STILL_CACHE:
                self._stills.pop(next(iter(self._stills)))
            self._stills[key] = value
        return value

    def _matte(
        self, pattern: str | None, frame: int | None, size: tuple[int, int], what: str
    ) -> np.ndarray | None:
        if not pattern:
            return None
        path = input_path(pattern, frame, what)
        load = lambda: read_matte(path, size, what, self.inputs.matte_fit)  # noqa: E731
        if has_frame_token(pattern):
            return load()
        return self._cached((what, str(path), size), load)

    def read(self, frame: int | None, plate_lin: np.ndarray) -> FrameInputs:
        """The inputs of one frame, checked against its (working-space linear) plate."""
        size = plate_lin.shape[:2]
        garbage = self._matte(self.inputs.garbage, frame, size, "garbage matte")
        core = self._matte(self.inputs.core, frame, size, "core matte")
        clean, path = None, Path()
        if self.inputs.clean_plate:
            path = input_path(self.inputs.clean_plate, frame, "clean plate")
            load = lambda: read_clean_plate(path, size, self.colorspace)  # noqa: E731
            if has_frame_token(self.inputs.clean_plate):
                clean = load()
            else:
                clean = self._cached(("clean plate", str(path), size), load)
        return frame_inputs(plate_lin, garbage, core, clean, self.inputs.invert_garbage, path)


def screen_of(
    plate_lin: np.ndarray, clean_plate: np.ndarray | None, colour_override: np.ndarray | None
) -> ScreenEstimate:
    """The frame's screen guide: the clean plate's when there is one, else the estimate."""
    if clean_plate is not None:
        return clean_plate_screen(clean_plate, colour_override)
    return estimate_screen(plate_lin, colour_override)
