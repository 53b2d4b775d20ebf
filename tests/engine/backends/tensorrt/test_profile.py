"""The engine's shape profile covers the tiles the keyer makes (engine/tile_profile.py). No GPU needed."""

from __future__ import annotations

import numpy as np
import pytest

from gsrender.engine.backends.tensorrt.jobs import make_job
from gsrender.engine.backends.tensorrt.profile import DEFAULT_MAX_BATCH, DEFAULT_MAX_TILE, select_profile
from gsrender.engine.errors import UsageError
from gsrender.engine.keyer import batch_tiles
from gsrender.engine.tile_profile import AUTO_TILE, resolve_tile
from gsrender.engine.tiling import plan_tiles
from tests.engine.backends.tensorrt.fakes import HALO, STRIDE


@pytest.mark.parametrize(
    "size", [(1080, 1920), (2160, 3840), (1440, 2560), (1556, 2048), (1920, 1080), (1080, 1998), (4320, 7680)]
)
def test_profile_covers_the_keyers_default_tiles(size: tuple[int, int]) -> None:
    """Every batch the keyer sends for these frames (default --tile 0) fits without sub-tiling."""
    prof = select_profile(DEFAULT_MAX_TILE, HALO, STRIDE, DEFAULT_MAX_BATCH)
    assert DEFAULT_MAX_TILE == AUTO_TILE
    h, w = size
    plan = plan_tiles(h, w, tile=resolve_tile(0, h, w), halo=HALO, stride=STRIDE)
    batches = batch_tiles([(t, None) for t in plan.tiles], DEFAULT_MAX_BATCH)
    for batch in batches:
        shape = (len(batch), 3, *batch[0][0].in_shape)
        assert prof.contains(shape), (size, shape, prof)
        zeros = np.broadcast_to(np.float32(0), shape)
        job = make_job(
            zeros,
            zeros,
            max_batch=prof.max[0],
            min_hw=prof.min[2:],
            max_hw=prof.max[2:],
            halo=HALO,
            stride=STRIDE,
        )
        assert all(prof.contains((len(c), 3, *c[0][0].shape[1:])) for c in job.chunks)
        assert sum(len(c) for c in job.chunks) == len(batch)  # no sub-tiling: same tiles
    assert prof.contains(prof.opt)


def test_profile_shapes() -> None:
    prof = select_profile(1024, 88, 8, 2)
    assert prof.opt == (1, 3, 1200, 1200)  # 1024 + 2 * 88: the 4K interior tile
    assert prof.min == (1, 3, 8, 8)
    assert prof.max == (2, 3, 2560, 2560)  # untiled frames up to 2560x1440, either orientation
    assert not prof.contains((1, 3, 2160, 3840)) and not prof.contains((3, 3, 64, 64))
    assert select_profile(4096, 88, 8, 1).max[2:] == (4272, 4272)
    with pytest.raises(UsageError):
        select_profile(0, 88, 8, 2)
