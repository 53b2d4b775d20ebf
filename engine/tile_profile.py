"""The keyer's automatic tile sizes, in one place.

Two parts of the engine must agree on them: the keyer, which picks the tile size when
`--tile` is 0 (engine/keyer.py), and the TensorRT engine's shape profile, which is built
to take every input that choice makes (engine/backends/tensorrt/profile.py). A tile-size
change is made here and both follow.
"""

from __future__ import annotations

# Frames up to this size (width, height) run untiled when --tile is 0 (auto).
AUTO_WHOLE_FRAME = (2560, 1440)
AUTO_TILE_PIXELS = AUTO_WHOLE_FRAME[0] * AUTO_WHOLE_FRAME[1]
# Larger frames run in tiles of this size: the biggest tile input, (1536 + 2 * 88)^2 = 2.9 MP,
# stays below the largest untiled frame, and the halo costs 1.13x the pixels instead of the
# 1.32x of 1024-pixel tiles (4K network time 1.0 -> 0.83 s on 2 CPU cores).
AUTO_TILE = 1536
# The side of a square that holds every untiled frame up to AUTO_WHOLE_FRAME in either
# orientation (2K full aperture 2048x1556, portrait HD): the TensorRT profile's max H and W.
WHOLE_FRAME_SIDE = max(AUTO_WHOLE_FRAME)


def resolve_tile(tile: int, height: int, width: int) -> int:
    """0 means auto: untiled up to AUTO_TILE_PIXELS, else AUTO_TILE."""
    if tile > 0:
        return tile
    return 0 if height * width <= AUTO_TILE_PIXELS else AUTO_TILE
