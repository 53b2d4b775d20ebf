"""Key one frame: per-frame guides, tiles through a backend, assembled full-frame result.

The pure steps (prepare_frame -> infer_frame -> finish_frame) and the Keyer that runs them for
one backend and one set of key settings. Every caller keys through it (the render's frame
pipeline, the OpenFX worker, the regression tests), so all of them produce the same pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from . import colour
from .backends.base import Backend
from .compositor_inputs import FrameInputs, apply_mattes
from .despot import DEFAULT_SIZE as DEFAULT_DESPOT
from .despot import despot
from .encoding import encode_for_network
from .screen_estimate import ScreenEstimate, screen_of
from .tile_profile import resolve_tile
from .tiling import TilePlan, iter_tile_inputs, pad_to_plan, place_core, plan_tiles, round_up
from .unmix import despill, premultiplied_foreground
from .unpremultiply import straight_for_output


@dataclass
class PreparedFrame:
    """A frame ready for inference: linear plate plus its encoded inputs and guides."""

    plate_lin: np.ndarray  # HxWx3 working-space linear
    plate_padded: np.ndarray  # 3xPHxPW network encoding, edge-padded to the stride
    screen_padded: np.ndarray  # 3xPHxPW encoded smooth screen estimate, edge-padded alike
    screen: ScreenEstimate  # a CleanPlateScreen when a clean plate is the keyer's guide
    garbage: np.ndarray | None = None  # HxW garbage matte (1 = certainly screen), applied to the key
    core: np.ndarray | None = None  # HxW core matte (1 = certainly subject)
    clean_plate: np.ndarray | None = None  # HxWx3 linear clean plate: the unmix's screen colour

    @property
    def plate_enc(self) -> np.ndarray:
        """3xHxW network encoding (a view)."""
        h, w = self.plate_lin.shape[:2]
        return self.plate_padded[:, :h, :w]

    @property
    def screen_enc(self) -> np.ndarray:
        """3xHxW encoded smooth screen estimate (a view)."""
        h, w = self.plate_lin.shape[:2]
        return self.screen_padded[:, :h, :w]

    def without_network_inputs(self) -> PreparedFrame:
        """The same frame minus the encoded inputs, which nothing needs after inference.

        Frames wait in the writer's queue; dropping their two encoded copies there saves
        ~200 MB per 4K frame in flight.
        """
        empty = np.empty((3, 0, 0), np.float32)
        return replace(self, plate_padded=empty, screen_padded=empty)

    def padded_inputs(self, plan: TilePlan) -> list[np.ndarray]:
        """The inputs padded to the plan's size: free when prepared with the model's stride."""
        if self.plate_padded.shape[1:] == (plan.padded_height, plan.padded_width):
            return [self.plate_padded, self.screen_padded]
        return [pad_to_plan(self.plate_enc, plan), pad_to_plan(self.screen_enc, plan)]


@dataclass
class KeyedFrame:
    """The keyer's answer for one frame, in working-space linear light."""

    alpha: np.ndarray  # HxW in [0,1]
    premult: np.ndarray  # HxWx3 premultiplied foreground (despilled)
    screen: ScreenEstimate

    @property
    def foreground(self) -> np.ndarray:
        """Straight (unpremultiplied) foreground for outputs, with a bounded division
        below 1% alpha (engine/unpremultiply.py): the CLI and the OpenFX plugin both use it."""
        return straight_for_output(self.premult, self.alpha)


def prepare_frame(
    plate_lin: np.ndarray,
    screen_colour: np.ndarray | None = None,
    stride: int = 1,
    inputs: FrameInputs | None = None,
    clean_guide: bool = False,
) -> PreparedFrame:
    """Compute the per-frame guides once, before any tiling.

    ``stride``: the model's (backend.info.stride); the encoded inputs are then made at the
    padded size the network runs at, so inference needs no padding copy. ``inputs``: the
    frame's garbage/core mattes and clean plate (engine/compositor_inputs.py), if any;
    ``clean_guide``: the clean plate is also the keyer's guide (backend.info.clean_plate_guide).
    """
    plate_lin = np.ascontiguousarray(plate_lin, dtype=np.float32)
    inputs = inputs or FrameInputs()
    est = screen_of(plate_lin, inputs.clean_plate if clean_guide else None, screen_colour)
    h, w = plate_lin.shape[:2]
    size = (round_up(h, stride), round_up(w, stride))
    plate_padded, screen_padded = encode_for_network(plate_lin, size), est.smooth_enc_padded(*size)
    return PreparedFrame(
        plate_lin, plate_padded, screen_padded, est, inputs.garbage, inputs.core, inputs.clean_plate
    )


def batch_tiles(items: list, max_batch: int) -> list[list]:
    """Group (tile, inputs) items of equal input shape into batches of at most max_batch."""
    groups: dict[tuple[int, int], list] = {}
    for item in items:
        groups.setdefault(item[0].in_shape, []).append(item)
    batches = []
    for group in groups.values():
        for i in range(0, len(group), max(1, max_batch)):
            batches.append(group[i : i + max(1, max_batch)])
    return batches


def _stack(windows: list[np.ndarray]) -> np.ndarray:
    """A batch of tile windows; a batch of one is a view (the window is already a fresh copy)."""
    return windows[0][None] if len(windows) == 1 else np.stack(windows)


def infer_frame(frame: PreparedFrame, backend: Backend, tile: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Run the backend tile by tile; returns alpha (HxW) and encoded bg (3xHxW)."""
    _, h, w = frame.plate_enc.shape
    info = backend.info
    plan = plan_tiles(h, w, tile=resolve_tile(tile, h, w), halo=info.halo, stride=info.stride)
    inputs = frame.padded_inputs(plan)
    colour = frame.screen.colour
    if len(plan.tiles) == 1:  # untiled: the padded frame is the batch, no stacking or copying out
        a_b, bg_b = backend.infer(inputs[0][None], inputs[1][None], colour)  # arrays we own
        return a_b[0, 0, :h, :w], bg_b[0, :, :h, :w]
    alpha = np.empty((1, plan.padded_height, plan.padded_width), np.float32)
    bg = np.empty((3, plan.padded_height, plan.padded_width), np.float32)
    batches = batch_tiles(list(iter_tile_inputs(inputs, plan)), backend.max_batch)
    stacked = ((_stack([p for _, (p, _) in b]), _stack([s for _, (_, s) in b])) for b in batches)
    for batch, (a_b, bg_b) in zip(batches, backend.infer_batches(stacked, colour), strict=True):
        for i, (t, _) in enumerate(batch):
            place_core(alpha, t, a_b[i])
            place_core(bg, t, bg_b[i])
    return alpha[0, :h, :w], bg[:, :h, :w]


def finish_frame(
    frame: PreparedFrame,
    alpha: np.ndarray,
    bg_enc: np.ndarray,
    despill_strength: float = 1.0,
    despot_size: int = DEFAULT_DESPOT,
) -> KeyedFrame:
    """Despot the assembled key, apply the mattes, then unmix the foreground in linear light and
    despill it.

    The despot (engine/despot.py) runs on the whole frame, so tiles never change it, and before
    the mattes, so a core matte keeps what it marks. With a clean plate, the unmix takes the
    screen behind each pixel from it, not from the network.
    """
    alpha = despot(alpha, despot_size)
    if frame.garbage is not None or frame.core is not None:
        alpha = apply_mattes(alpha, frame.garbage, frame.core)
    if frame.clean_plate is not None:  # the true screen behind each pixel, in linear light as it is
        premult = premultiplied_foreground(frame.plate_lin, alpha, bg_lin=frame.clean_plate)
    else:
        premult = premultiplied_foreground(frame.plate_lin, alpha, bg_enc)
    premult = despill(premult, frame.screen.channel, despill_strength)
    return KeyedFrame(alpha=alpha, premult=premult, screen=frame.screen)


@dataclass(frozen=True)
class KeySettings:
    """What changes a frame's key besides its pixels and the backend."""

    screen_colour: Sequence[float] | np.ndarray | None = None  # linear RGB the artist picked; None: estimated
    tile: int = 0  # tile size (0: the backend's profile decides, engine/tile_profile.py)
    despill: float = 1.0  # 0 off, 1 full
    despot: int = DEFAULT_DESPOT  # largest island keyed out, pixels (engine/despot.py); 0 off


class Keyer:
    """convert -> prepare -> infer -> finish for one backend and one set of key settings.

    The render (engine/frame_pipeline.py) and the OpenFX worker (ofx_bridge/worker.py) both key
    through it, which is what makes the plugin's pixels equal the command line's. The steps are
    separate methods so the render can run them on different threads and the worker can hold its
    backend's lock around inference alone.
    """

    def __init__(self, backend: Backend, settings: KeySettings | None = None) -> None:
        self.backend = backend
        self.settings = settings or KeySettings()
        override = self.settings.screen_colour
        self._screen_colour = None if override is None else np.asarray(override, np.float32)

    @staticmethod
    def to_working(rgb: np.ndarray, in_space: str) -> np.ndarray:
        """The plate in the working linear space the keyer works in."""
        return colour.convert(rgb, in_space, colour.WORKING_SPACE)

    def prepare(self, plate_lin: np.ndarray, inputs: FrameInputs | None = None) -> PreparedFrame:
        """The per-frame guides and network inputs (prepare_frame) with this backend's stride."""
        info = self.backend.info
        return prepare_frame(plate_lin, self._screen_colour, info.stride, inputs, info.clean_plate_guide)

    def infer(self, frame: PreparedFrame) -> tuple[np.ndarray, np.ndarray]:
        """Alpha (HxW) and encoded bg (3xHxW), tile by tile (infer_frame)."""
        return infer_frame(frame, self.backend, self.settings.tile)

    def finish(self, frame: PreparedFrame, alpha: np.ndarray, bg_enc: np.ndarray) -> KeyedFrame:
        """Despot, mattes, unmix and despill (finish_frame)."""
        return finish_frame(frame, alpha, bg_enc, self.settings.despill, self.settings.despot)

    def key(self, plate_lin: np.ndarray, inputs: FrameInputs | None = None) -> KeyedFrame:
        """All three steps on one working-space plate."""
        frame = self.prepare(plate_lin, inputs)
        alpha, bg = self.infer(frame)
        return self.finish(frame, alpha, bg)


def key_frame(
    plate_lin: np.ndarray,
    backend: Backend,
    *,
    tile: int = 0,
    despill_strength: float = 1.0,
    screen_colour: np.ndarray | None = None,
    inputs: FrameInputs | None = None,
    despot_size: int = DEFAULT_DESPOT,
) -> KeyedFrame:
    """All stages for one frame in one call (tests, tools, evaluation)."""
    settings = KeySettings(screen_colour, tile, despill_strength, despot_size)
    return Keyer(backend, settings).key(plate_lin, inputs)
