"""Per-frame global guides computed once, before tiling.

The network sees one tile at a time, so anything that needs the whole frame (which
colour is the screen, how its lighting falls off behind the subject) is estimated here
and handed to every tile. That keeps the output independent of the tile size.

The smooth screen estimate is a coarse grid of screen-colour samples (cells of
CELL_PX pixels), where cells covered by the subject are filled from their neighbours,
then interpolated bilinearly back to full resolution.

Green and blue screens: the estimate is written for a green screen. For a blue one the
plate's green and blue channels are swapped on the way in and the results swapped back,
so both screens go through the same, tested code. Which screen a plate shows is decided
by which channel leads in more of the frame's pixels (screen_channel), or by the artist's screen
colour (channel_of_colour); ScreenEstimate.channel carries that decision to every consumer (the
classic keyer, despill, the evaluation), so no one decides it again by another rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .encoding import encode_for_network, srgb_oetf

BLOCK = 4  # block-average factor before any statistics: cheap and denoises
CELL_BLOCKS = 8  # cell size in blocks -> CELL_PX full-resolution pixels
CELL_PX = BLOCK * CELL_BLOCKS
MIN_CELL_COVER = 0.2  # fraction of screen pixels a cell needs to count as measured
SCREEN_RATIO_TOL = 0.25  # largest red/green or blue/green difference from the screen colour that is screen
RED_RATIO_TOL = 0.12  # ... and of red/green alone (a fringe of skin, brown or blond hair raises it)


@dataclass
class ScreenEstimate:
    """Screen colour (linear RGB) and a coarse clean-screen grid, upsampled on demand.

    `smooth_enc` (3xHxW, network encoding) is what the network sees: the encoded grid
    interpolated to full size, which is cheaper than encoding a full-size plate and is
    the same function in training and rendering. `smooth` is the linear version.
    """

    colour: np.ndarray
    grid: np.ndarray  # gh x gw x 3 linear, one value per CELL_PX cell
    height: int
    width: int
    found: bool  # False when no green or blue screen was recognised (the colour is a fallback)
    channel: int  # GREEN (1) or BLUE (2): the screen's channel, decided once in estimate_screen

    @property
    def smooth(self) -> np.ndarray:
        """HxWx3 linear smooth clean-screen estimate."""
        return np.ascontiguousarray(_upsample_chw(self.grid, self.height, self.width).transpose(1, 2, 0))

    @property
    def smooth_enc(self) -> np.ndarray:
        """3xHxW network-encoded smooth clean-screen estimate."""
        return self.smooth_enc_padded(self.height, self.width)

    def smooth_enc_padded(self, height: int, width: int) -> np.ndarray:
        """smooth_enc edge-padded to height x width (the stride-aligned size a network runs at)."""
        return _upsample_chw(srgb_oetf(self.grid), self.height, self.width, (height, width))


def _block_mean(img: np.ndarray, block: int) -> np.ndarray:
    """Average block x block pixels; the ragged edge is padded by replication."""
    h, w, c = img.shape
    ph, pw = -h % block, -w % block
    if ph or pw:
        img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge")
    # rows first (whole contiguous rows added), then columns on the 1/block-size result
    rows = img[0::block].astype(np.float32, copy=True)
    for dy in range(1, block):
        rows += img[dy::block]
    rows = rows.reshape(rows.shape[0], rows.shape[1] // block, block, c)
    acc = rows[:, :, 0].copy()
    for dx in range(1, block):
        acc += rows[:, :, dx]
    return acc * np.float32(1.0 / (block * block))


def _greenness(enc: np.ndarray) -> np.ndarray:
    return enc[..., 1] - np.maximum(enc[..., 0], enc[..., 2])


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """Red/green and blue/green ratios: chromaticity that stays put under uneven lighting."""
    green = np.maximum(rgb[..., 1:2], 1e-6)
    return np.clip(np.concatenate([rgb[..., 0:1], rgb[..., 2:3]], axis=-1) / green, 0.0, 1.0)


def _largest_green_area(small_enc: np.ndarray, small_lin: np.ndarray) -> np.ndarray | None:
    """Median colour of the chromaticity shared by the largest area of green pixels."""
    cand = _greenness(small_enc) > 0.02
    if np.count_nonzero(cand) < max(16, 0.02 * cand.size):
        return None
    px = small_lin[cand]
    ratios = _chroma(px)
    bins = 20
    cell = np.minimum((ratios * bins).astype(np.intp), bins - 1)  # ratios lie in [0, 1]
    hist = np.bincount(cell[:, 0] * bins + cell[:, 1], minlength=bins * bins).reshape(bins, bins)
    padded = np.pad(hist, 1)
    smooth = sum(padded[dy : dy + bins, dx : dx + bins] for dy in range(3) for dx in range(3))
    peak = (np.array(np.unravel_index(np.argmax(smooth), smooth.shape)) + 0.5) / bins
    near = np.all(np.abs(ratios - peak) <= 1.5 / bins, axis=1)
    return np.median(px[near], axis=0).astype(np.float32)


def estimate_screen_colour(small_enc: np.ndarray, small_lin: np.ndarray) -> tuple[np.ndarray, bool]:
    """Median of the most strongly green pixels, unless a larger green area disagrees.

    The strongest greens are the screen on almost every plate (and what the shipped model
    was trained with). A bright yellow-green costume in front of a dark, under-lit screen
    is greener than the screen, though; then the chromaticity covering the largest area
    wins, because the screen fills more of the frame than any costume.
    """
    g = _greenness(small_enc)
    top = float(np.percentile(g, 90))
    if top < 0.04:  # nothing green enough to be a screen
        return np.median(small_lin.reshape(-1, 3), axis=0).astype(np.float32), False
    strongest = np.median(small_lin[g >= 0.6 * top], axis=0).astype(np.float32)
    largest = _largest_green_area(small_enc, small_lin)
    if largest is not None and np.abs(_chroma(strongest) - _chroma(largest)).max() > 0.2:
        return largest, True
    return strongest, True


GREEN, BLUE = 1, 2
_SWAP_GB = [0, 2, 1]
DOMINANCE_FLOOR = 0.02  # encoded lead of a channel over the other two from which a pixel counts


def _dominated_area(enc: np.ndarray, ch: int) -> int:
    """How many pixels channel ch leads the other two in by more than the floor.

    An area, not a sum of the leads: a teal screen whose green leads blue only a little fills
    most of the frame and must outweigh a few strongly blue props in front of it.
    """
    a, b = (c for c in range(3) if c != ch)
    return int(np.count_nonzero(enc[..., ch] - np.maximum(enc[..., a], enc[..., b]) > DOMINANCE_FLOOR))


def channel_of_colour(colour: np.ndarray) -> int:
    """GREEN or BLUE for a screen colour: BLUE where blue exceeds green, else GREEN, never red
    (a warm-lit blue screen can be brightest in red; it is still a blue screen)."""
    rgb = np.asarray(colour, np.float32).reshape(3)
    return BLUE if float(rgb[BLUE]) > float(rgb[GREEN]) else GREEN


def screen_channel(small_enc: np.ndarray, colour_override: np.ndarray | None = None) -> int:
    """GREEN or BLUE: the override's (channel_of_colour), else the channel leading in more pixels.

    A blue costume in front of a green screen covers less of the frame than the screen,
    and a blue screen barely has any green-dominant pixels, so the area decides reliably.
    """
    if colour_override is not None:
        return channel_of_colour(colour_override)
    return BLUE if _dominated_area(small_enc, BLUE) > _dominated_area(small_enc, GREEN) else GREEN


def _screen_mask(small_lin: np.ndarray, small_enc: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Pixels whose chromaticity matches the screen; brightness may vary (falloff).

    Only these build the estimate, so the tolerances decide how much of the subject's fringe is
    averaged into the screen behind it. A 30% brown strand over the screen moves red/green by 0.17:
    at 0.25 such fringes (skin, brown or blond hair) darkened the estimate beside the subject and
    every strand keyed against it came out too thin. Red/green is held to RED_RATIO_TOL; blue/green
    keeps the wider SCREEN_RATIO_TOL because shadows on a green screen move it (cooler bounce
    light): held to 0.12 too, the woman's shadow in the real photographs leaked twice as much.
    Screen-aligned: for a blue screen "red/green" is red over the screen's blue.
    """
    eps = 1e-4
    gc = max(float(colour[1]), eps)
    g = np.maximum(small_lin[..., 1], eps)
    rr = small_lin[..., 0] / g - colour[0] / gc
    br = small_lin[..., 2] / g - colour[2] / gc
    chroma_ok = (np.abs(rr) < RED_RATIO_TOL) & (np.abs(br) < SCREEN_RATIO_TOL)
    bright_ok = (small_lin[..., 1] > 0.15 * gc) & (small_lin[..., 1] < 4.0 * gc)
    green_ok = _greenness(small_enc) > 0.3 * float(_greenness(srgb_oetf(colour[None, :]))[0])
    return chroma_ok & bright_ok & green_ok


def _fill_unknown(values: np.ndarray, known: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Fill unknown grid cells from known neighbours, ring by ring."""
    if not known.any():
        return np.broadcast_to(fallback, values.shape).astype(np.float32).copy()
    vals = np.where(known[..., None], values, 0.0).astype(np.float32)
    known = known.copy()
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    while not known.all():
        pv = np.pad(vals, ((1, 1), (1, 1), (0, 0)))
        pk = np.pad(known, 1).astype(np.float32)
        acc = np.zeros_like(vals)
        cnt = np.zeros(known.shape, np.float32)
        h, w = known.shape
        for dy, dx in offsets:
            acc += (
                pv[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
                * pk[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w, None]
            )
            cnt += pk[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        grow = (~known) & (cnt > 0)
        vals[grow] = acc[grow] / cnt[grow, None]
        known = known | grow
    return vals


def _smooth3(grid: np.ndarray) -> np.ndarray:
    p = np.pad(grid, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = grid.shape[:2]
    out = np.zeros_like(grid)
    for dy in range(3):
        for dx in range(3):
            out += p[dy : dy + h, dx : dx + w]
    return out / 9.0


# Interpolation weights built at once (64 MB). The dense n x size matrices grew with the product
# of a frame's sides (2x300000: 10.5 GiB); beyond this they are built in bands of output rows or
# columns over only the grid cells each band uses, so memory grows with the pixel count. Every
# frame up to 16K wide and high fits one band and keeps the one-product result bit for bit; a
# banded product sums the same two weights per pixel and may differ from it in the last bit.
BAND_ELEMENTS = 1 << 24


def _interp_matrix(n: int, size: int, cell: int, rows: range | None = None) -> np.ndarray:
    """Bilinear weights of output ``rows`` (default all n; rows past n repeat the last, as edge
    padding does) over the grid's ``size`` cells; cell centres sit at (i + 0.5) * cell, edges clamp."""
    index = np.arange(n) if rows is None else np.minimum(np.arange(rows.start, rows.stop), n - 1)
    pos = np.clip((index.astype(np.float64) + 0.5) / cell - 0.5, 0, size - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, size - 1)
    f = pos - i0
    m = np.zeros((len(index), size), np.float32)
    np.add.at(m, (np.arange(len(index)), i0), 1 - f)
    np.add.at(m, (np.arange(len(index)), i1), f)
    return m


def _bands(n: int, n_real: int, size: int, cell: int) -> list[tuple[range, slice]]:
    """Output ranges of at most BAND_ELEMENTS weights each, with the span of grid cells they use."""
    step = max(1, BAND_ELEMENTS // max(size, 1))
    if step >= n:
        return [(range(0, n), slice(0, size))]
    bands = []
    for start in range(0, n, step):
        rows = range(start, min(n, start + step))
        lo = int(np.clip((min(rows.start, n_real - 1) + 0.5) / cell - 0.5, 0, size - 1))
        hi = int(np.clip((min(rows.stop - 1, n_real - 1) + 0.5) / cell - 0.5, 0, size - 1)) + 2
        bands.append((rows, slice(lo, min(hi, size))))
    return bands


def _upsample_chw(
    grid: np.ndarray, height: int, width: int, padded: tuple[int, int] | None = None
) -> np.ndarray:
    """Bilinear upsampling as two small matrix products per channel (fast with BLAS).

    ``padded`` (rows, cols) >= (height, width) makes a larger array whose extra bottom rows
    and right columns repeat the last ones (what edge padding would do, without a copy).
    Large frames are done in bands (see BAND_ELEMENTS), each product over the grid cells
    its band uses.
    """
    ph, pw = padded or (height, width)
    gh, gw = grid.shape[:2]
    out = np.empty((3, ph, pw), np.float32)
    for rows, ycells in _bands(ph, height, gh, CELL_PX):
        wy = _interp_matrix(height, gh, CELL_PX, rows)[:, ycells]
        across = [wy @ np.ascontiguousarray(grid[ycells, :, c]) for c in range(3)]
        for cols, xcells in _bands(pw, width, gw, CELL_PX):
            wx = _interp_matrix(width, gw, CELL_PX, cols)[:, xcells]
            for c in range(3):
                band = out[c, rows.start : rows.stop, cols.start : cols.stop]
                np.matmul(across[c][:, xcells], wx.T, out=band)
    return out


def estimate_screen(plate_lin: np.ndarray, colour_override: np.ndarray | None = None) -> ScreenEstimate:
    """Estimate the screen colour and a smooth clean-screen plate for one frame.

    plate_lin: HxWx3 float32 scene-linear Rec.709. colour_override: linear RGB of the
    screen when the artist picks it (skips the automatic colour estimate).
    """
    h, w, _ = plate_lin.shape
    if not np.isfinite(plate_lin).all():  # a cheap test; the copy is only paid for bad pixels
        plate_lin = np.nan_to_num(plate_lin, nan=0.0, posinf=0.0, neginf=0.0)
    small_lin = _block_mean(plate_lin, BLOCK)
    small_enc = srgb_oetf(small_lin)
    swap = screen_channel(small_enc, colour_override) == BLUE
    if swap:  # key a blue screen as the green one it becomes with G and B swapped
        small_lin, small_enc = small_lin[..., _SWAP_GB], small_enc[..., _SWAP_GB]
        if colour_override is not None:
            colour_override = np.asarray(colour_override, np.float32).reshape(3)[_SWAP_GB]
    if colour_override is not None:
        colour, found = np.asarray(colour_override, np.float32).reshape(3), True
    else:
        colour, found = estimate_screen_colour(small_enc, small_lin)
    mask = _screen_mask(small_lin, small_enc, colour) if found else np.zeros(small_lin.shape[:2], bool)

    sh, sw = mask.shape
    ph, pw = -sh % CELL_BLOCKS, -sw % CELL_BLOCKS
    m = np.pad(mask, ((0, ph), (0, pw))).astype(np.float32)
    v = np.pad(small_lin, ((0, ph), (0, pw), (0, 0))) * m[..., None]
    gh, gw = m.shape[0] // CELL_BLOCKS, m.shape[1] // CELL_BLOCKS
    count = m.reshape(gh, CELL_BLOCKS, gw, CELL_BLOCKS).sum(axis=(1, 3))
    total = v.reshape(gh, CELL_BLOCKS, gw, CELL_BLOCKS, 3).sum(axis=(1, 3))
    known = count >= MIN_CELL_COVER * CELL_BLOCKS * CELL_BLOCKS
    means = total / np.maximum(count, 1.0)[..., None]
    grid = _smooth3(_fill_unknown(means, known, colour)).astype(np.float32)
    if swap:
        colour, grid = colour[_SWAP_GB], np.ascontiguousarray(grid[..., _SWAP_GB])
    channel = BLUE if swap else GREEN
    return ScreenEstimate(colour=colour, grid=grid, height=h, width=w, found=found, channel=channel)


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
        colour=est.colour,
        grid=est.grid,
        height=est.height,
        width=est.width,
        found=est.found,
        channel=est.channel,
        plate=clean_lin,
    )


def screen_of(
    plate_lin: np.ndarray, clean_plate: np.ndarray | None, colour_override: np.ndarray | None
) -> ScreenEstimate:
    """The frame's screen guide: the clean plate's when there is one, else the estimate."""
    if clean_plate is not None:
        return clean_plate_screen(clean_plate, colour_override)
    return estimate_screen(plate_lin, colour_override)
