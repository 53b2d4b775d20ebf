"""What a render does to one frame, stage by stage, in data-flow order.

    input file
      --read_and_prepare-->  LoadedPlate: the plate in working linear light (read_frame,
                             colour conversion), its compositor inputs (mattes, clean
                             plate), the screen estimate and the encoded network inputs
                             (Keyer.prepare); plus the file's header and colour space
      --infer------------->  RawKey: the network's alpha and encoded local screen colour,
                             tile by tile through the backend (Keyer.infer)
      --write_keyed------->  small islands on the screen keyed out (despot), mattes applied,
                             foreground unmixed and despilled
                             (Keyer.finish), composed into the output's colour space
                             and layers (output.compose_output), written with the
                             input's metadata (image_write.write_frame)
    output file

engine/render.py runs read_and_prepare on its reader threads, infer on the calling thread
and write_keyed on its writer threads, and owns the scheduling, failure policy and reports
around them; the stages only transform frames, raising on failure. Unmixing on the writer
threads keeps that arithmetic off the inference stage, which is the one a frame waits for.
The OpenFX worker keys through the same Keyer, so its pixels equal these.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import colour
from .backends.base import Backend
from .compositor_inputs import CompositorInputs, InputReader
from .formats import OutputFormat
from .frame_budget import FrameBudget
from .image_io import ImageInfo, read_frame
from .image_write import attributes_not_carried, output_format, write_frame
from .keyer import Keyer, KeySettings, PreparedFrame
from .layers import PlateSelection
from .output import OutputSettings, compose_output, output_channels, output_colorspace, writer_dtype
from .preflight import utf8_path
from .sequence import FrameRef


@dataclass(frozen=True)
class LoadedPlate:
    """read_and_prepare's answer: a frame ready for inference, and what writing its key needs."""

    prepared: PreparedFrame  # working-space plate, screen estimate, network inputs, compositor inputs
    info: ImageInfo  # the input's header: outputs keep its metadata and windows
    in_space: str  # the input's colour space: the outputs' default
    input_alpha: np.ndarray | None = None  # the plate's own alpha (--input-alpha), for the output


@dataclass(frozen=True)
class RawKey:
    """infer's answer: the network's key of a plate, before despot, mattes, unmix and despill.

    The plate comes without its encoded network inputs, which nothing needs after
    inference: frames wait in the writer's queue, and that saves ~200 MB per 4K frame there.
    """

    plate: LoadedPlate
    alpha: np.ndarray  # HxW
    bg: np.ndarray  # 3xHxW encoded local screen colour

    @property
    def output_bytes(self) -> int:
        """Uncompressed size of the output frame (RGBA half): the most it needs on disk."""
        return int(self.alpha.size) * 4 * 2


class FramePipeline:
    """The three stages of one render, with its per-frame settings and backend.

    Made once per render; every method is safe to call from several threads at once.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        plate_selection: PlateSelection,
        colorspace: str | None,
        screen_colour: tuple[float, float, float] | None,
        max_pixels: int,
        inputs: CompositorInputs,
        tile: int,
        despill: float,
        despot: int,
        output: OutputSettings,
    ) -> None:
        self.backend = backend
        self.keyer = Keyer(backend, KeySettings(screen_colour, tile, despill, despot))
        self.plate_selection = plate_selection  # --layer, --part, --input-alpha
        self.colorspace = colorspace  # input colour space override
        self.max_pixels = max_pixels  # frames declaring more are refused before decoding
        self.extra_inputs = InputReader(inputs, colorspace) if inputs.used else None
        self.tile = tile
        self.output = output

    def budget(self, target: Path) -> FrameBudget:
        """What a frame written to ``target`` may take (engine/frame_budget.py)."""
        return FrameBudget(
            max_pixels=self.max_pixels,
            output_format=output_format(target),
            output_window=self.output.window,
            output_channels=output_channels(self.output),
            tile=self.tile,
            halo=self.backend.info.halo,
        )

    def read_and_prepare(self, ref: FrameRef, target: Path) -> LoadedPlate:
        """Read the input frame (refused from its header when over budget), convert it to working
        linear light and compute its guides."""
        utf8_path(ref.path)
        frame = read_frame(ref.path, self.plate_selection, self.budget(target).check)
        in_space = (
            colour.resolve_colorspace(self.colorspace)
            if self.colorspace
            else colour.default_colorspace(frame.info)
        )
        plate = self.keyer.to_working(frame.rgb, in_space)
        extra = self.extra_inputs.read(ref.frame, plate) if self.extra_inputs else None
        return LoadedPlate(self.keyer.prepare(plate, extra), frame.info, in_space, frame.alpha)

    def infer(self, plate: LoadedPlate) -> RawKey:
        """Run the network over the prepared frame, tile by tile."""
        alpha, bg = self.keyer.infer(plate.prepared)
        return RawKey(replace(plate, prepared=plate.prepared.without_network_inputs()), alpha, bg)

    def write_keyed(self, key: RawKey, target: Path) -> int:
        """Finish the key (despot, mattes, unmix, despill) and write it as the output frame. Returns how
        many of the input's header attributes the output goes without (image_io.MAX_CARRIED_*)."""
        plate = key.plate
        keyed = self.keyer.finish(plate.prepared, key.alpha, key.bg)
        fmt = output_format(target)
        out_space = output_colorspace(fmt, plate.in_space, self.output)
        pixels, names = compose_output(keyed, fmt, out_space, self.output, plate.input_alpha)
        write_frame(
            target,
            pixels,
            names,
            plate.info,
            dtype=writer_dtype(fmt, self.output),
            compression=self.output.compression,
            unassociated_alpha=names[3] == "A" and fmt is not OutputFormat.EXR,
            extra_attributes={"oiio:ColorSpace": out_space, "gsrender:backend": self.backend.name},
            window=self.output.window,
        )
        return attributes_not_carried(plate.info, target)
