import numpy as np
import pytest

from gsrender.engine.tiling import iter_tile_inputs, pad_to_plan, place_core, plan_tiles


@pytest.mark.parametrize("h,w,tile", [(37, 53, 16), (64, 64, 64), (100, 30, 24), (8, 8, 0)])
def test_cores_cover_padded_frame_exactly_once(h, w, tile):
    plan = plan_tiles(h, w, tile=tile, halo=10, stride=8)
    assert plan.padded_height % 8 == 0 and plan.padded_width % 8 == 0
    assert plan.padded_height >= h and plan.padded_width >= w
    hits = np.zeros((plan.padded_height, plan.padded_width), int)
    for t in plan.tiles:
        hits[t.y0 : t.y1, t.x0 : t.x1] += 1
        # tiles and their windows start on stride multiples, windows stay inside the frame
        assert t.y0 % 8 == 0 and t.x0 % 8 == 0 and t.in_y0 % 8 == 0 and t.in_x0 % 8 == 0
        assert 0 <= t.in_y0 <= t.y0 and t.y1 <= t.in_y1 <= plan.padded_height
    assert (hits == 1).all()


def test_halo_is_rounded_to_stride_and_clipped():
    plan = plan_tiles(64, 64, tile=32, halo=10, stride=8)
    inner = [t for t in plan.tiles if t.y0 == 32 and t.x0 == 32][0]
    assert (inner.in_y0, inner.in_x0) == (16, 16)  # halo 10 -> 16
    assert (inner.in_y1, inner.in_x1) == (64, 64)  # clipped at the frame edge


def test_assembly_of_identity_returns_the_input():
    rng = np.random.default_rng(0)
    img = rng.random((3, 45, 70)).astype(np.float32)
    plan = plan_tiles(45, 70, tile=16, halo=8, stride=8)
    padded = pad_to_plan(img, plan)
    out = np.zeros_like(padded)
    for t, (window,) in iter_tile_inputs([padded], plan):
        place_core(out, t, window)
    np.testing.assert_array_equal(out[:, :45, :70], img)


def test_padding_replicates_edges():
    img = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
    plan = plan_tiles(3, 5, tile=0, halo=0, stride=4)
    padded = pad_to_plan(img, plan)
    assert padded.shape == (2, 4, 8)
    np.testing.assert_array_equal(padded[:, 3, :5], img[:, 2, :])
    np.testing.assert_array_equal(padded[:, :3, 7], img[:, :, 4])


def test_empty_frame_is_rejected():
    with pytest.raises(ValueError):
        plan_tiles(0, 10, tile=0, halo=0, stride=8)


def test_batches_group_equal_shapes_only():
    from gsrender.engine.keyer import batch_tiles

    plan = plan_tiles(100, 300, tile=32, halo=16, stride=8)
    items = [(t, None) for t in plan.tiles]
    batches = batch_tiles(items, 4)
    assert sum(len(b) for b in batches) == len(plan.tiles)
    for b in batches:
        assert 1 <= len(b) <= 4 and len({t.in_shape for t, _ in b}) == 1
    assert all(len(b) == 1 for b in batch_tiles(items, 1))
