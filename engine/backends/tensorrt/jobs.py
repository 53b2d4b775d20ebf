"""Batches of tiles cut into engine calls the optimisation profile accepts. No GPU here.

An engine runs only the input shapes of its profile (engine/backends/tensorrt/profile.py).
In-profile batches are cut into chunks of up to CHUNK_PIXELS; an input larger than the
profile is split into aligned sub-tiles with the same halo and the same assembly as the
CPU path (gsrender.engine.tiling), which the network's bounded receptive field makes
exact. Kept apart from the runner so this logic runs and is tested everywhere, with ONNX
Runtime on the CPU standing in for the engine.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ...errors import BackendError
from ...keyer import batch_tiles
from ...tiling import Tile, place_core, plan_tiles, round_up

CHUNK_PIXELS = 2_000_000  # tiles per engine call: enough pixels to fill the GPU, few enough to overlap

Item = tuple[np.ndarray, np.ndarray]  # one tile: plate (3,h,w), screen (3,h,w); may be strided views
Chunk = list[Item]  # tiles of one shape, one engine call


def chunk_size(n: int, h: int, w: int, max_batch: int) -> int:
    """Tiles per engine call: up to CHUNK_PIXELS, at most max_batch, at least one."""
    return max(1, min(max_batch, n, CHUNK_PIXELS // max(1, h * w)))


def subtile_core(max_hw: tuple[int, int], halo: int, stride: int) -> int:
    """The largest aligned tile core whose input (core + 2 halo) fits the profile's max H and W."""
    core = (min(max_hw) - 2 * round_up(halo, stride)) // stride * stride
    if core < stride:
        raise BackendError(
            None,
            f"engine profile max {max_hw} cannot hold a tile with halo {halo}: rebuild the "
            "engine with a larger --max-tile",
        )
    return core


@dataclass
class Job:
    """One `infer` batch as engine calls: chunks of in-profile tiles and where their results go."""

    chunks: list[Chunk]
    alpha: np.ndarray | None = None  # (N,1,h,w) assembled result, None when passed through
    bg: np.ndarray | None = None
    places: list[Callable[[np.ndarray, np.ndarray], None]] = field(default_factory=list)

    @property
    def passthrough(self) -> bool:
        """One chunk covering the batch as is: its result is the answer (no copy)."""
        return self.alpha is None


def make_job(
    plate: np.ndarray,
    screen: np.ndarray,
    *,
    max_batch: int,
    min_hw: tuple[int, int],
    max_hw: tuple[int, int],
    halo: int,
    stride: int,
) -> Job:
    """Split a batch into engine calls the profile accepts.

    In-profile batches are cut into chunks of `chunk_size` tiles. A tile larger than the
    profile is cut into aligned sub-tiles with a halo (plan_tiles on the tile, which is
    stride aligned); their cores are assembled with place_core exactly as the keyer
    assembles a frame, so the result equals one big call.
    """
    if plate.ndim != 4 or plate.shape[1] != 3 or plate.shape != screen.shape:
        raise BackendError(
            None, f"plate/screen must be (N,3,h,w) of one shape, got {plate.shape}/{screen.shape}"
        )
    n, _, h, w = plate.shape
    if h < min_hw[0] or w < min_hw[1] or h % stride or w % stride:
        raise BackendError(
            None,
            f"tile {w}x{h} is not a multiple of the model stride {stride} (at least {min_hw[1]}x{min_hw[0]})",
        )
    items = [(plate[i], screen[i]) for i in range(n)]
    if h <= max_hw[0] and w <= max_hw[1]:
        k = chunk_size(n, h, w, max_batch)
        chunks = [items[i : i + k] for i in range(0, n, k)]
        if len(chunks) == 1:
            return Job(chunks)
        alpha = np.empty((n, 1, h, w), np.float32)
        bg = np.empty((n, 3, h, w), np.float32)

        def put(sl: slice) -> Callable[[np.ndarray, np.ndarray], None]:
            def place(a: np.ndarray, b: np.ndarray) -> None:
                alpha[sl], bg[sl] = a, b

            return place

        return Job(chunks, alpha, bg, [put(slice(i, i + k)) for i in range(0, n, k)])

    plan = plan_tiles(h, w, tile=subtile_core(max_hw, halo, stride), halo=halo, stride=stride)
    alpha = np.empty((n, 1, h, w), np.float32)
    bg = np.empty((n, 3, h, w), np.float32)
    tagged: list[tuple[Tile, tuple[int, Item]]] = []
    for i, (p, s) in enumerate(items):
        for t in plan.tiles:  # input windows as views: the copy into pinned memory is the only copy
            win = (slice(None), slice(t.in_y0, t.in_y1), slice(t.in_x0, t.in_x1))
            tagged.append((t, (i, (p[win], s[win]))))
    job = Job([], alpha, bg)
    for group in batch_tiles(tagged, max_batch):
        shape = group[0][0].in_shape
        k = chunk_size(len(group), shape[0], shape[1], max_batch)
        for j in range(0, len(group), k):
            part = group[j : j + k]
            job.chunks.append([item for _, (_, item) in part])

            def place(a: np.ndarray, b: np.ndarray, part: list = part) -> None:
                for r, (t, (i, _)) in enumerate(part):
                    place_core(alpha[i], t, a[r])
                    place_core(bg[i], t, b[r])

            job.places.append(place)
    return job


def run_jobs(
    jobs: Iterable[Job], execute: Callable[[Iterable[Chunk]], Iterator[tuple[np.ndarray, np.ndarray]]]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Feed every job's chunks through `execute` (which may read ahead) and yield per-job results.

    `execute` yields one (alpha, bg) per chunk, in order. A passthrough job yields that
    result as is (valid until the next item is requested); others are assembled first.
    """
    order: deque[tuple[Job, int]] = deque()

    def stream() -> Iterator[Chunk]:
        for job in jobs:
            for ci, chunk in enumerate(job.chunks):
                order.append((job, ci))
                yield chunk

    for a, b in execute(stream()):
        job, ci = order.popleft()
        if job.passthrough:
            yield a, b
            continue
        job.places[ci](a, b)
        if ci == len(job.chunks) - 1:
            assert job.alpha is not None and job.bg is not None
            yield job.alpha, job.bg
