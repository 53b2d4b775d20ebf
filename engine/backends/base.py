"""The interface every inference backend implements.

A backend turns batches of tiles into alpha and the local screen colour. Everything
around it (frame preparation, tiling, unmixing, I/O) is shared, so every backend gives
the same pixels up to its numerical precision.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gsrender.models import shipped_model_path


def default_model_path() -> Path:
    """The model bundled with the package (models/gskey.onnx in the repository).

    Here rather than in the package __init__ so the TensorRT build command can name it
    without importing the backend selection, which imports the TensorRT backend.
    """
    return shipped_model_path()


@dataclass(frozen=True)
class ModelInfo:
    """What the engine needs to know to tile for a model."""

    name: str
    stride: int
    halo: int
    # The keyer takes a clean plate as its screen guide input. The classic keyer does; a network
    # only when trained with clean plates as guides (ONNX metadata gsrender.clean_plate_guide=1):
    # the shipped model keys worse with one, so it keeps its own estimate as the guide and the
    # clean plate serves the unmix only (engine/compositor_inputs.py).
    clean_plate_guide: bool = False


class Backend(ABC):
    """Runs the keyer on tiles. Inputs and outputs are float32 NCHW arrays."""

    name: str = "backend"
    info: ModelInfo
    max_batch: int = 1  # tiles of equal shape the backend takes in one call (GPU backends: more)
    # Inference keeps this host's cores busy (CPU backends). GPU backends leave them to the
    # reader and writer stages, which then run several frames at once.
    cpu_bound: bool = True
    # Why `--backend auto` picked this backend (create_backend), for the log; None when asked for by name.
    auto_note: str | None = None

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def infer(
        self, plate: np.ndarray, screen: np.ndarray, screen_colour: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """plate, screen: (N,3,h,w) network encoding; screen_colour: (3,) linear.

        Returns alpha (N,1,h,w) in [0,1] and bg (N,3,h,w), the encoded local screen colour.
        """

    def infer_batches(
        self, batches: Iterable[tuple[np.ndarray, np.ndarray]], screen_colour: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Results of several batches in order; GPU backends keep the next batch in flight."""
        for plate, screen in batches:
            yield self.infer(plate, screen, screen_colour)

    def describe(self) -> str:
        """One line for logs: backend and device."""
        return self.name

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release device resources."""
