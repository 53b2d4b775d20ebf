"""The optimisation profile: the input shapes a TensorRT engine is built to take.

An engine runs only the shapes of its profile, and TensorRT sizes activation memory for
the profile's maximum, so the profile is chosen from the tiles the keyer actually makes
(engine/tile_profile.py). Inputs larger than it are sub-tiled exactly by the runner
(engine/backends/tensorrt/jobs.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import UsageError
from ...tile_profile import AUTO_TILE, WHOLE_FRAME_SIDE
from ...tiling import round_up

DEFAULT_MAX_TILE = AUTO_TILE  # 4K frames are keyed in AUTO_TILE-pixel tiles
# Tiles per engine call. One 1728x1728 tile (3.0 MP) already fills a GPU, and TensorRT sizes
# activation memory for max batch x max H x max W, so batching only pays for small --tile values.
DEFAULT_MAX_BATCH = 1
PROFILE_COPIES = 2  # one identical profile per execution context (two streams overlap copies/compute)
SHAPE = tuple[int, int, int, int]


@dataclass(frozen=True)
class Profile:
    """Min/opt/max input shapes (N, 3, H, W) shared by `plate` and `screen`."""

    min: SHAPE
    opt: SHAPE
    max: SHAPE
    copies: int = PROFILE_COPIES

    def contains(self, shape: Sequence[int]) -> bool:
        """True when TensorRT can run this input shape without sub-tiling."""
        return len(shape) == 4 and all(
            lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max, strict=True)
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON form kept in the cache key and the engine's sidecar."""
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max), "copies": self.copies}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        """Back from a sidecar's JSON (old sidecars have no `copies`: one profile)."""
        return cls(tuple(d["min"]), tuple(d["opt"]), tuple(d["max"]), int(d.get("copies", 1)))  # type: ignore[arg-type]


def select_profile(
    max_tile: int,
    halo: int,
    stride: int,
    max_batch: int,
    *,
    whole_frame_side: int = WHOLE_FRAME_SIDE,
    copies: int = PROFILE_COPIES,
) -> Profile:
    """The profile that covers every tile the keyer makes with these settings.

    Tiled frames give inputs of at most tile + 2*halo (stride aligned) per side, e.g.
    1536 + 2*104 = 1744 for the shipped halo; untiled frames (up to tile_profile.AUTO_WHOLE_FRAME, 2560x1440)
    are one input of the padded frame, so both sides go up to its long side, 2560. The
    smallest input is one stride. `opt` is
    the full tile at batch 1, the shape a 4K frame runs most; kernels are tuned for it
    and valid over the whole range.
    """
    if max_tile <= 0 or stride <= 0 or halo < 0 or max_batch < 1 or copies < 1:
        raise UsageError(
            None,
            f"bad profile settings: max_tile={max_tile} halo={halo} stride={stride} max_batch={max_batch}",
        )
    tile_in = round_up(max_tile, stride) + 2 * round_up(halo, stride)
    side = max(tile_in, round_up(whole_frame_side, stride))
    return Profile(
        min=(1, 3, stride, stride),
        opt=(1, 3, tile_in, tile_in),
        max=(max_batch, 3, side, side),
        copies=copies,
    )
