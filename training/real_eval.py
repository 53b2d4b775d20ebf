"""Score keyers on real plates that have no ground truth, and draw a contact sheet.

    gsrender evaluate --real DIR --model models/gskey.onnx --model classic \
        [--sheet sheet.png] [--markdown | --csv out.csv] [--per-plate]

Synthetic validation shares the training generator, so it rewards what the generator
teaches; real photographs are the judge, but they come without a true alpha. These
measures need none. Each compares a key with the plate's own colour evidence only
where that evidence is unambiguous, so a good key and the evidence agree there and a
disagreement is the key's fault.

Plates are read and prepared exactly as the render engine does (engine.image_io.read_frame,
the file's colour space by engine.colour's rule, JPEG/PNG as sRGB, converted to the
working linear Rec.709; engine.keyer.prepare_frame for the screen guide and network
inputs). Files of a folder named head + frame number + extension, two or more with the
same head, padding and extension, form a sequence (in frame order); every other image
(any extension OpenImageIO reads) is a still.

The contact sheet (PNG, 1600 px wide) has one row per still and per sequence (its middle
frame): the plate, then for every model its alpha and its comp over a checkerboard (the
engine's own unmix and despill), each tile labelled in small type.

Evidence, per plate, in a basis aligned to the estimated screen (k = the screen's
largest channel, so green and blue screens are treated alike; nothing is hard-coded
green). S is the engine's smooth clean-screen estimate at the pixel (its ScreenEstimate
``smooth``), I the linear plate:

- dominance ``dom(x) = x_k - max(other channels)`` and its ratio to the local screen's,
  ``rel = dom(I) / dom(S)``: about 1 on clean screen, 0.3-0.6 in a shadow, <= 0 where
  the screen channel is not above the others at all;
- chroma distance ``d = max_j |I_j / I_k - S_j / S_k|``: the screen's chromaticity,
  which stays put when the light level changes (shadows, falloff, wrinkles);
- the evidence key ``e = clip(1 - rel, 0, 1)``: a colour-difference key against the
  local screen (no clip thresholds, so it keeps every strand and every bit of noise).

The screen is the engine's own estimate (green or blue, see engine.screen_estimate), so a
plate is judged against the screen the keyer was given. No screen found: the screen and
edge measures are blank for that plate.

Confident sets (conservative, so that a correct key must agree with the evidence;
r = max(2, min(H, W) / 160) pixels; coverage of each is reported):

- confident screen: ``d < 0.12`` and ``rel > 0.3`` (screen chroma, at least 30% of the
  local screen's dominance: shadowed screen counts) on every pixel within r, and no
  "not screen-like" pixel (``d >= 0.2`` or ``rel <= 0.15``) within 2r. The second
  condition keeps fine strands and motion-blurred edges out (they sit next to opaque
  subject), and the first keeps noisy or mixed pixels out;
- confident subject: ``rel < 0.2`` (no more screen dominance than spill gives a solid
  subject) and ``d > 0.4`` (far from the screen's chroma) on every pixel within r.
  Solid light clothing with green spill has rel 0.05-0.15 and d ~0.8, so it counts;
  a neutral subject mixed with the screen reaches rel 0.2 only above ~85% opacity;
- transition band: in neither set, within 6r of confident screen and within 2r of a
  not-screen-like pixel: the edges and the strands around them, hair 20-40 px out from
  the solid head included, but not glare or mild shading far from any subject.

Measures (per plate; the table's mean row averages the plates where a measure exists):

- ``leak`` = mean alpha on confident screen, ``leak>.05`` = fraction with alpha > 0.05.
  Catches alpha painted over screen seen between leaves and fingers, 0.1-0.2 garbage
  in shadowed or dark screen, and an all-opaque matte on a blue screen (leak ~ 1).
- ``holes`` = mean (1 - alpha) on confident subject, ``holes<.95`` = fraction with
  alpha < 0.95. Catches a key that punches holes in solid, clearly non-screen
  subject (light or blue clothing on green, dark fur), or an all-transparent one.
- ``detail r`` and ``detail gain``: in the band, the fine detail of the alpha (a
  difference of Gaussians, sigma 0.7 and 2 pixels, times max(1, r/6): strands and fine
  edges, without pixel noise) against the evidence key's: their correlation, and the
  gain <bp(alpha), bp(e)> / <bp(e), bp(e)>, the share of the evidence's detail energy
  the alpha reproduces in place. A blob matte has smooth edges where the evidence has
  strands: both low; a strand-preserving key scores near 1 on both. For scale, on the
  five real photos: a 3x3 median of the evidence itself scores r 0.96-1.0 (gain
  0.92-0.99), a 1.5-pixel Gaussian blur of it r 0.89-0.91 (gain 0.48-0.60), a 3-pixel
  blur r 0.64-0.73 (gain 0.16-0.29). The evidence is itself a colour-difference key,
  so the classic keyer scores ~1 here by construction; the measure says whether a key
  follows the picture's detail, not whether the detail is right (leak and holes do).
  Tried and dropped: a plain 1-pixel high-pass (on a noisy plate even the 3x3 median
  of the evidence scored 0.56: it rewarded copying sensor noise), the correlation of
  gradient fields (dominated by the main outline: 0.92-0.97 for the shipped network's
  blobby hair vs 0.998 for the classic key) and the plain high-frequency energy ratio
  (a crisp outline has more high-frequency energy than a soft true edge: the shipped
  network's visibly smoother matte scored 1.10-1.30 on the wrinkled-screen photo, above
  the classic key's 1.21).
- ``flicker`` (sequences): mean |alpha_t - alpha_t-1| over static pixels, those where
  the encoded plate (5x5 box mean, every channel) changes by less than 0.02 from the
  previous frame; ``static`` is their coverage. A stable key on a still region has
  ~0; frame-to-frame noise in the matte shows here. Blank for stills and first frames.

Exit codes: 0 done; 2 bad option or model file missing; 3 the folder has no image, or
one cannot be read; 5 a model fails to load or run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from gsrender.engine.keyer import PreparedFrame, prepare_frame
from gsrender.engine.output_check import write_at_end
from gsrender.engine.screen_estimate import ScreenEstimate

from .contact_sheet import SHEET_WIDTH, sheet_tiles, shrink_tiles, write_sheet
from .real_table import RealTable

CHROMA_SCREEN = 0.12  # max chroma distance of a confident-screen pixel
REL_SCREEN = 0.3  # min dominance relative to the local screen (shadows down to 30% count)
CHROMA_LOOSE = 0.2  # beyond this chroma distance a pixel is "not screen-like" ...
REL_LOOSE = 0.15  # ... or below this relative dominance
REL_SUBJECT = 0.2  # max relative dominance of a confident-subject pixel (spill, no more)
CHROMA_SUBJECT = 0.4  # min chroma distance of a confident-subject pixel
BAND_RADII = 6  # the transition band reaches this many r from confident screen (hair: 25-40 px)
DETAIL_SIGMAS = (0.7, 2.0)  # band-pass of the detail measures, in pixels at detail_scale 1
STATIC_DIFF = 0.02
STATIC_BOX = 5
LEAK_ALPHA = 0.05
HOLE_ALPHA = 0.95


def radius_for(height: int, width: int) -> int:
    """The erosion radius r in pixels: ~4 at 640 px, ~7 at 1080p, ~14 at 4K."""
    return max(2, round(min(height, width) / 160))


# --------------------------------------------------------------------------- evidence


@dataclass
class Evidence:
    """What the plate alone says, in a basis aligned to its screen colour."""

    screen_channel: int  # 1 green, 2 blue; -1 when no screen was found
    screen_source: str  # "engine" or "none"
    key: np.ndarray  # HxW colour-difference key against the local screen, 0 screen .. 1 subject
    screen: np.ndarray  # HxW bool, confident screen
    subject: np.ndarray  # HxW bool, confident subject
    band: np.ndarray  # HxW bool, transition band
    rel: np.ndarray = field(repr=False)  # HxW dominance relative to the local screen
    chroma: np.ndarray = field(repr=False)  # HxW chroma distance to the local screen


def screen_reference(frame: PreparedFrame) -> tuple[ScreenEstimate | None, str]:
    """The engine's screen estimate, or None when it recognised no green or blue screen."""
    if frame.screen.found:
        return frame.screen, "engine"
    return None, "none"


def _dominance(x: np.ndarray, k: int) -> np.ndarray:
    a, b = (c for c in range(3) if c != k)
    return x[..., k] - np.maximum(x[..., a], x[..., b])


def _chroma_distance(x: np.ndarray, s: np.ndarray, k: int) -> np.ndarray:
    d = np.zeros(x.shape[:2], np.float32)
    xk = np.maximum(x[..., k], 1e-4)
    sk = np.maximum(s[..., k], 1e-4)
    for j in (c for c in range(3) if c != k):
        d = np.maximum(d, np.abs(x[..., j] / xk - s[..., j] / sk))
    return d


def _grow(mask: np.ndarray, r: int) -> np.ndarray:
    return ndimage.maximum_filter(mask, size=2 * r + 1) if r > 0 else mask


def _shrink(mask: np.ndarray, r: int) -> np.ndarray:
    return ndimage.minimum_filter(mask, size=2 * r + 1, mode="nearest") if r > 0 else mask


def plate_evidence(frame: PreparedFrame) -> Evidence:
    """Confident screen / subject sets, transition band and evidence key of one prepared plate."""
    h, w = frame.plate_lin.shape[:2]
    est, source = screen_reference(frame)
    if est is None:
        empty = np.zeros((h, w), bool)
        nan = np.full((h, w), np.nan, np.float32)
        return Evidence(-1, source, nan, empty, empty.copy(), empty.copy(), nan.copy(), nan.copy())
    k = est.channel
    plate = np.maximum(np.nan_to_num(frame.plate_lin, nan=0.0, posinf=0.0, neginf=0.0), 0.0)
    smooth = est.smooth
    floor = max(1e-6, 0.05 * float(_dominance(est.colour, k)))
    rel = (_dominance(plate, k) / np.maximum(_dominance(smooth, k), floor)).astype(np.float32)
    chroma = _chroma_distance(plate, smooth, k)
    key = np.clip(1.0 - rel, 0.0, 1.0).astype(np.float32)
    r = radius_for(h, w)
    strict = (chroma < CHROMA_SCREEN) & (rel > REL_SCREEN)
    not_screenlike = (chroma >= CHROMA_LOOSE) | (rel <= REL_LOOSE)
    screen = _shrink(strict, r) & ~_grow(not_screenlike, 2 * r)
    subject = _shrink((rel < REL_SUBJECT) & (chroma > CHROMA_SUBJECT), r)
    band = _grow(screen, BAND_RADII * r) & _grow(not_screenlike, 2 * r) & ~screen & ~subject
    return Evidence(k, source, key, screen, subject, band, rel, chroma)


# --------------------------------------------------------------------------- measures


def _masked_mean(x: np.ndarray, mask: np.ndarray) -> float:
    return float(x[mask].mean()) if mask.any() else math.nan


def band_pass(x: np.ndarray, scale: float) -> np.ndarray:
    """Difference of Gaussians (0.7 and 2 pixels at scale 1): strands and fine edges, minus pixel noise."""
    x = x.astype(np.float32)
    return ndimage.gaussian_filter(x, DETAIL_SIGMAS[0] * scale, mode="nearest") - ndimage.gaussian_filter(
        x, DETAIL_SIGMAS[1] * scale, mode="nearest"
    )


def detail_scale(height: int, width: int) -> float:
    """1 up to ~1080p, growing with the plate (strands are wider on larger plates)."""
    return max(1.0, radius_for(height, width) / 6.0)


def edge_detail(alpha: np.ndarray, key: np.ndarray, band: np.ndarray) -> tuple[float, float]:
    """(correlation, gain) of alpha's fine detail against the evidence key's, over the band.

    gain = <bp(alpha), bp(key)> / <bp(key), bp(key)>: the share of the evidence's fine
    detail energy that the alpha reproduces in place (0 for a blob, 1 for a copy).
    """
    if not band.any():
        return math.nan, math.nan
    scale = detail_scale(*alpha.shape)
    ha = band_pass(alpha, scale)[band].astype(np.float64)
    he = band_pass(key, scale)[band].astype(np.float64)
    dot, na, ne = float(ha @ he), float(ha @ ha), float(he @ he)
    if ne <= 0:
        return math.nan, math.nan
    corr = dot / math.sqrt(na * ne) if na > 0 else 0.0
    return corr, dot / ne


def static_mask(prev: PreparedFrame, cur: PreparedFrame) -> np.ndarray:
    """Pixels whose encoded plate (5x5 box mean) changes by less than STATIC_DIFF in every channel."""
    if prev.plate_lin.shape != cur.plate_lin.shape:
        return np.zeros(cur.plate_lin.shape[:2], bool)
    from gsrender.engine.encoding import srgb_oetf

    diff = np.abs(srgb_oetf(cur.plate_lin) - srgb_oetf(prev.plate_lin))  # the network's encoding
    box = ndimage.uniform_filter(diff, size=(STATIC_BOX, STATIC_BOX, 1), mode="nearest")
    return box.max(axis=2) < STATIC_DIFF


def plate_measures(alpha: np.ndarray, ev: Evidence) -> dict[str, float]:
    """Leak, holes and edge detail of one alpha against the plate's evidence."""
    a = np.clip(np.nan_to_num(alpha, nan=0.0), 0.0, 1.0).astype(np.float32)
    corr, hf = edge_detail(a, ev.key, ev.band)
    return {
        "leak": _masked_mean(a, ev.screen),
        "leak_frac": _masked_mean(a > LEAK_ALPHA, ev.screen),
        "holes": _masked_mean(1.0 - a, ev.subject),
        "holes_frac": _masked_mean(a < HOLE_ALPHA, ev.subject),
        "edge_corr": corr,
        "edge_hf": hf,
    }


def flicker(prev_alpha: np.ndarray, alpha: np.ndarray, static: np.ndarray) -> float:
    """Mean |alpha_t - alpha_t-1| over the static pixels."""
    return _masked_mean(np.abs(np.clip(alpha, 0, 1) - np.clip(prev_alpha, 0, 1)), static)


# --------------------------------------------------------------------------- plates

_NUMBERED = re.compile(r"^(?P<head>.*?)(?P<num>\d+)(?P<tail>\.[^.]+)$")
_NOT_IMAGES = {"null", "term"}  # OIIO pseudo-formats


def image_extensions() -> set[str]:
    """Every file extension OpenImageIO reads here, lower case, without the dot."""
    import OpenImageIO as oiio

    exts: set[str] = set()
    for entry in oiio.get_string_attribute("extension_list").split(";"):
        fmt, _, names = entry.partition(":")
        if fmt not in _NOT_IMAGES:
            exts.update(n.strip().lower() for n in names.split(",") if n.strip())
    return exts


@dataclass
class PlateGroup:
    """One still (one path) or one sequence (its frames in order)."""

    name: str
    paths: list[Path]

    @property
    def is_sequence(self) -> bool:
        return len(self.paths) > 1


def find_plates(folder: Path) -> list[PlateGroup]:
    """Stills and sequences in a folder: files named head + frame number + extension, 2+ of them, are one."""
    exts = image_extensions()
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix[1:].lower() in exts)
    seqs: dict[tuple[str, str, int], list[tuple[int, Path]]] = {}
    for p in files:
        m = _NUMBERED.match(p.name)
        if m:
            seqs.setdefault((m["head"], m["tail"], len(m["num"])), []).append((int(m["num"]), p))
    in_seq = {p for members in seqs.values() if len(members) > 1 for _, p in members}
    groups = [PlateGroup(p.name, [p]) for p in files if p not in in_seq]
    for (head, tail, pad), members in seqs.items():
        if len(members) > 1:
            members.sort()
            groups.append(PlateGroup(f"{head}{'#' * pad}{tail}", [p for _, p in members]))
    return sorted(groups, key=lambda g: g.name)


def load_plate(path: Path) -> PreparedFrame:
    """Read a plate the way `gsrender` does (file colour space -> working linear) and prepare it."""
    from gsrender.engine import colour
    from gsrender.engine.image_io import read_frame

    frame = read_frame(path)
    plate = colour.convert(frame.rgb, colour.default_colorspace(frame.info), colour.WORKING_SPACE)
    return prepare_frame(plate)


@dataclass
class RealPlate:
    """A prepared real plate; predictors of gsrender.training.evaluate take it like an EvalSample."""

    name: str
    frame: PreparedFrame


# --------------------------------------------------------------------------- folder


_CHANNEL_NAMES = {-1: "none", 0: "red", 1: "green", 2: "blue"}


def screen_label(ev: Evidence) -> str:
    """'green', 'blue', or 'none'."""
    return _CHANNEL_NAMES[ev.screen_channel]


def _load_predictors(models: Sequence[str], threads: int, despot: int | None) -> tuple[list[str], list]:
    from gsrender.engine.errors import BackendError, GsRenderError, UsageError

    from .evaluate import load_predictor, unique_labels

    preds = []
    for spec in models:
        try:
            preds.append(load_predictor(spec, threads, despot))
        except GsRenderError:
            raise
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(None, f"--model {spec}: {exc}") from None
        except RuntimeError as exc:
            raise BackendError(spec, f"cannot load the model: {str(exc).splitlines()[0]}") from None
    return unique_labels(list(models), preds), preds


def _run(pred, plate: RealPlate, label: str) -> tuple[np.ndarray, np.ndarray | None]:
    from gsrender.engine.errors import BackendError, GsRenderError

    try:
        alpha, bg = pred(plate)
    except GsRenderError:
        raise
    except RuntimeError as exc:
        raise BackendError(label, f"failed on {plate.name}: {str(exc).splitlines()[0]}") from None
    return np.clip(np.asarray(alpha, np.float32), 0.0, 1.0), bg


def evaluate_real_folder(
    models: list[str], folder: Path, sheet: Path | None = None, threads: int = 0, despot: int | None = None
) -> RealTable:
    """Score every model on every plate of `folder`; write the contact sheet to `sheet` if given.

    models: 'classic', .onnx or .pt paths (as `gsrender evaluate --model`). Sequences put
    their middle frame on the sheet. Raises GsRenderError (UsageError, InputError,
    BackendError, OutputError) with a one-line message for bad input.
    """
    from gsrender.engine.errors import InputError, UsageError

    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(folder, "not a folder")
    groups = find_plates(folder)
    if not groups:
        raise InputError(folder, "no image files OpenImageIO can read")
    labels, preds = _load_predictors(models, threads, despot)
    table = RealTable(labels)
    tile_w = SHEET_WIDTH // (1 + 2 * len(labels))
    sheet_rows: list[tuple[list[str], list[np.ndarray]]] = []
    for group in groups:
        prev: tuple[PreparedFrame, list[np.ndarray]] | None = None
        for i, path in enumerate(group.paths):
            frame = load_plate(path)
            ev = plate_evidence(frame)
            plate = RealPlate(path.name, frame)
            keys = [_run(p, plate, label) for p, label in zip(preds, labels, strict=True)]
            static = static_mask(prev[0], frame) if prev is not None else None
            cover = {
                "cov_screen": float(ev.screen.mean()),
                "cov_subject": float(ev.subject.mean()),
                "cov_band": float(ev.band.mean()),
                "cov_static": float(static.mean()) if static is not None else math.nan,
            }
            for j, (label, (alpha, _)) in enumerate(zip(labels, keys, strict=True)):
                fl = (
                    flicker(prev[1][j], alpha, static)
                    if prev is not None and static is not None
                    else math.nan
                )
                row: dict[str, object] = {"plate": path.name, "screen": screen_label(ev), "model": label}
                table.rows.append(row | plate_measures(alpha, ev) | {"flicker": fl} | cover)
            if sheet is not None and i == len(group.paths) // 2:
                names = [path.name] + [f"{label} {kind}" for label in labels for kind in ("alpha", "comp")]
                sheet_rows.append((names, shrink_tiles(sheet_tiles(frame, keys), tile_w)))
            prev = (frame.without_network_inputs(), [a for a, _ in keys]) if group.is_sequence else None
    if sheet is not None:
        write_at_end(sheet, lambda path: write_sheet(path, sheet_rows))
    return table


def main_real(args) -> int:
    """`gsrender evaluate --real DIR ...` (called by gsrender.cli.evaluate.main with its parsed arguments; a
    GsRenderError ends the verb there, as one error line and its exit code)."""
    sheet = Path(args.sheet) if args.sheet else None
    table = evaluate_real_folder(args.model, Path(args.real), sheet, args.threads, args.despot)
    if args.csv:
        write_at_end(args.csv, table.write_csv)
    print(
        f"# real plates in {args.real}, no ground truth: leak = alpha on confident screen, holes = 1 - alpha "
        "on confident subject, detail = agreement with the colour evidence in the transition band, "
        "flicker = alpha change on static pixels; cov = fraction of pixels scored"
    )
    print(table.format(markdown=args.markdown))
    if sheet is not None:
        print(f"# contact sheet: {sheet}")
    return 0
