"""Split a frame into aligned, overlapping tiles and assemble the results exactly.

Why aligned: the network downsamples by its stride, so a tile must start on a multiple
of the stride for its low-resolution grid to coincide with the whole frame's grid.
Why a halo: each output pixel depends on a bounded neighbourhood (the receptive
radius); a tile's core is only kept where the halo covers that neighbourhood, so the
assembled result equals the untiled one. At the frame border a tile stops at the
(padded) frame edge, exactly where the untiled network stops too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Tile:
    """A core region to keep and the larger input window (core + halo) that computes it."""

    y0: int
    y1: int
    x0: int
    x1: int
    in_y0: int
    in_y1: int
    in_x0: int
    in_x1: int

    @property
    def in_shape(self) -> tuple[int, int]:
        return self.in_y1 - self.in_y0, self.in_x1 - self.in_x0

    def core_in_window(self) -> tuple[slice, slice]:
        """Where the core sits inside the tile's input window."""
        return (
            slice(self.y0 - self.in_y0, self.y1 - self.in_y0),
            slice(self.x0 - self.in_x0, self.x1 - self.in_x0),
        )


@dataclass(frozen=True)
class TilePlan:
    height: int  # frame size before padding
    width: int
    padded_height: int
    padded_width: int
    tiles: tuple[Tile, ...]


def plan_tiles(height: int, width: int, *, tile: int, halo: int, stride: int) -> TilePlan:
    """Tiles of `tile` pixels (0 = one tile for the whole frame) with a `halo` border."""
    if height <= 0 or width <= 0:
        raise ValueError(f"cannot tile an empty {width}x{height} frame")
    ph, pw = round_up(height, stride), round_up(width, stride)
    halo = round_up(max(halo, 0), stride)
    size = round_up(tile, stride) if tile > 0 else max(ph, pw)
    tiles = []
    for y0 in range(0, ph, size):
        for x0 in range(0, pw, size):
            y1, x1 = min(y0 + size, ph), min(x0 + size, pw)
            tiles.append(
                Tile(
                    y0, y1, x0, x1,
                    max(0, y0 - halo), min(ph, y1 + halo),
                    max(0, x0 - halo), min(pw, x1 + halo),
                )
            )  # fmt: skip
    return TilePlan(height, width, ph, pw, tuple(tiles))


def pad_to_plan(chw: np.ndarray, plan: TilePlan) -> np.ndarray:
    """Replicate the bottom/right edge so the frame is a whole number of strides."""
    _, h, w = chw.shape
    if (h, w) == (plan.padded_height, plan.padded_width):
        return chw
    return np.pad(chw, ((0, 0), (0, plan.padded_height - h), (0, plan.padded_width - w)), mode="edge")


def iter_tile_inputs(padded: list[np.ndarray], plan: TilePlan) -> Iterator[tuple[Tile, list[np.ndarray]]]:
    """Yield each tile with its input windows cut from every padded CxHxW input."""
    for t in plan.tiles:
        yield t, [np.ascontiguousarray(a[:, t.in_y0 : t.in_y1, t.in_x0 : t.in_x1]) for a in padded]


def place_core(dest: np.ndarray, tile: Tile, result: np.ndarray) -> None:
    """Copy a tile result's core (CxH'xW' over the input window) into the padded CxHxW dest."""
    ys, xs = tile.core_in_window()
    dest[:, tile.y0 : tile.y1, tile.x0 : tile.x1] = result[:, ys, xs]
