"""The contact sheet of a real-footage evaluation: per plate the plate, then per model its alpha and
its comp over a checkerboard, labelled, shrunk to one sheet width."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gsrender.engine.keyer import PreparedFrame


def checkerboard(h: int, w: int, cell: int = 16) -> np.ndarray:
    """A grey checkerboard (RGB) to show a keyed foreground over."""
    yy, xx = np.mgrid[0:h, 0:w]
    v = np.where((yy // cell + xx // cell) % 2 == 0, 0.6, 0.25).astype(np.float32)
    return np.repeat(v[..., None], 3, axis=2)


SHEET_WIDTH = 1600
LABEL_PX = 14


def _to_uint8(rgb01: np.ndarray) -> np.ndarray:
    return (np.clip(rgb01, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def composite_over_checker(frame: PreparedFrame, alpha: np.ndarray, bg_enc: np.ndarray | None) -> np.ndarray:
    """What the engine would write, over a checkerboard, sRGB-encoded HxWx3 in [0, 1].

    alpha is the key as a render writes it (the evaluation's predictors despot it already)."""
    from gsrender.engine.encoding import srgb_oetf
    from gsrender.engine.keyer import finish_frame
    from gsrender.training.evaluate import ENGINE_DESPILL

    a = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    bg = frame.screen_enc if bg_enc is None else bg_enc
    keyed = finish_frame(frame, a, bg, ENGINE_DESPILL, despot_size=0)
    h, w = a.shape
    return srgb_oetf(keyed.premult + (1.0 - a[..., None]) * checkerboard(h, w, max(8, min(h, w) // 24)))


def sheet_tiles(
    frame: PreparedFrame, keys: Sequence[tuple[np.ndarray, np.ndarray | None]]
) -> list[np.ndarray]:
    """Full-size uint8 tiles of one row: plate, then alpha and comp for each model."""
    from gsrender.engine.encoding import srgb_oetf

    tiles = [_to_uint8(srgb_oetf(frame.plate_lin))]
    for alpha, bg in keys:
        tiles.append(_to_uint8(np.repeat(np.clip(alpha, 0, 1)[..., None], 3, axis=2)))
        tiles.append(_to_uint8(composite_over_checker(frame, alpha, bg)))
    return tiles


def shrink_tiles(tiles: list[np.ndarray], width: int) -> list[np.ndarray]:
    """Area-downscale (or upscale) each tile to `width` pixels, keeping the aspect."""
    from PIL import Image

    out = []
    for t in tiles:
        h, w = t.shape[:2]
        size = (width, max(1, round(h * width / w)))
        out.append(
            np.asarray(
                Image.fromarray(t).resize(
                    size, Image.Resampling.BOX if w > width else Image.Resampling.BILINEAR
                )
            )
        )
    return out


def write_sheet(
    path: Path, rows: list[tuple[list[str], list[np.ndarray]]], width: int = SHEET_WIDTH
) -> tuple[int, int]:
    """One row per plate of equally wide tiles, each with a small label strip above; returns (W, H)."""
    from PIL import Image, ImageDraw

    if not rows:
        raise ValueError("no rows for the contact sheet")
    ncols = max(len(t) for _, t in rows)
    tile_w = width // ncols
    strips = []
    for labels, tiles in rows:
        small = shrink_tiles(tiles, tile_w)
        th = max(t.shape[0] for t in small)
        row = np.full((LABEL_PX + th, tile_w * ncols, 3), 32, np.uint8)
        img = Image.fromarray(row)
        draw = ImageDraw.Draw(img)
        for i, (label, t) in enumerate(zip(labels, small, strict=True)):
            img.paste(Image.fromarray(t), (i * tile_w, LABEL_PX))
            draw.text((i * tile_w + 3, 1), label[: max(4, tile_w // 6)], fill=(235, 235, 235))
        strips.append(np.asarray(img))
    sheet = np.concatenate(strips, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path)
    return sheet.shape[1], sheet.shape[0]
