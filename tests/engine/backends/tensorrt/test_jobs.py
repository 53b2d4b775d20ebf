"""Batches cut into engine calls: chunking, exact sub-tiling of inputs larger than the engine
profile, in-order assembly under read-ahead. ONNX Runtime on the CPU stands in for the engine.
"""

from __future__ import annotations

import numpy as np
import pytest

from gsrender.engine.backends.tensorrt.jobs import chunk_size, make_job, run_jobs, subtile_core
from gsrender.engine.errors import BackendError
from tests.engine.backends.tensorrt.fakes import HALO, STRIDE, cpu_execute, make_inputs


def test_chunk_size() -> None:
    assert chunk_size(4, 1200, 1200, 4) == 1  # big tiles: one per call, calls overlap
    assert chunk_size(8, 256, 256, 4) == 4  # small tiles: batched up to max_batch
    assert chunk_size(3, 64, 64, 16) == 3
    assert chunk_size(1, 4000, 4000, 1) == 1


def test_subtile_core_fits_the_profile() -> None:
    assert subtile_core((1200, 1200), HALO, STRIDE) == 1024
    assert subtile_core((2560, 2560), HALO, STRIDE) == 2384
    with pytest.raises(BackendError, match="--max-tile"):
        subtile_core((160, 160), HALO, STRIDE)


def test_in_profile_batch_is_chunked_and_assembled(session) -> None:
    plate, screen = make_inputs(5, 64, 96)
    job = make_job(plate, screen, max_batch=2, min_hw=(8, 8), max_hw=(256, 256), halo=HALO, stride=STRIDE)
    assert [len(c) for c in job.chunks] == [2, 2, 1] and not job.passthrough
    ((a, b),) = list(run_jobs([job], cpu_execute(session)))
    want_a, want_b = session.run(["alpha", "bg"], {"plate": plate, "screen": screen})
    np.testing.assert_allclose(a, want_a, atol=1e-6)
    np.testing.assert_allclose(b, want_b, atol=1e-6)
    single = make_job(
        plate[:1], screen[:1], max_batch=2, min_hw=(8, 8), max_hw=(256, 256), halo=HALO, stride=STRIDE
    )
    assert single.passthrough and len(single.chunks) == 1


def test_oversized_input_is_subtiled_exactly(session, shipped_halo: int) -> None:
    """An input larger than the profile equals one call on the whole input (tile invariance),
    with sub-tiles carrying the model's own halo."""
    plate, screen = make_inputs(2, 240, 320)
    side = 2 * shipped_halo + 96  # a profile whose sub-tiles have 96-pixel cores
    job = make_job(
        plate, screen, max_batch=2, min_hw=(8, 8), max_hw=(side, side), halo=shipped_halo, stride=STRIDE
    )
    assert all(c[0][0].shape[1] <= side and c[0][0].shape[2] <= side for c in job.chunks)
    assert sum(len(c) for c in job.chunks) == 2 * 3 * 4  # 96-pixel cores: 3 x 4 per item
    ((a, b),) = list(run_jobs([job], cpu_execute(session)))
    want_a, want_b = session.run(["alpha", "bg"], {"plate": plate, "screen": screen})
    assert float(want_a.std()) > 1e-3, "reference alpha is flat: the test would prove nothing"
    assert np.abs(a - want_a).max() < 1e-4 and np.abs(b - want_b).max() < 1e-4


def test_results_stay_in_order_under_read_ahead(session, shipped_halo: int) -> None:
    batches = [
        make_inputs(n, h, w, seed=i)
        for i, (n, h, w) in enumerate([(1, 64, 64), (3, 32, 48), (1, 240, 320), (2, 64, 64)])
    ]
    jobs = [
        make_job(p, s, max_batch=1, min_hw=(8, 8), max_hw=(256, 256), halo=shipped_halo, stride=STRIDE)
        for p, s in batches
    ]
    results = [(a.copy(), b.copy()) for a, b in run_jobs(jobs, cpu_execute(session, read_ahead=3))]
    assert len(results) == len(batches)
    for (p, s), (a, _) in zip(batches, results, strict=True):
        want, _ = session.run(["alpha", "bg"], {"plate": p, "screen": s})
        assert a.shape == want.shape and np.abs(a - want).max() < 1e-4


def test_bad_shapes_are_refused() -> None:
    p, s = make_inputs(1, 60, 64)  # not a multiple of the stride
    with pytest.raises(BackendError, match="stride"):
        make_job(p, s, max_batch=1, min_hw=(8, 8), max_hw=(256, 256), halo=HALO, stride=STRIDE)
    with pytest.raises(BackendError, match="one shape"):
        make_job(p, s[:, :, :32], max_batch=1, min_hw=(8, 8), max_hw=(256, 256), halo=HALO, stride=STRIDE)
