"""The rendered set as evaluation samples for `gsrender evaluate` (which prints every plate)."""

from __future__ import annotations

from pathlib import Path

from .dataset import load_indep_val, read_manifest


def indep_samples(folder: str | Path, count: int | None = None) -> list:
    """The first `count` plates of a rendered set as EvalSamples, prepared exactly as the engine
    prepares a frame (prepare_frame on the linear plate: screen estimate, network encoding)."""
    from gsrender.engine.keyer import prepare_frame

    from ..evaluate import EvalSample

    kinds = {
        p.get("name"): (str(p.get("kind", "")), str(p.get("screen", "")))
        for p in read_manifest(folder)["plates"]
    }
    return [
        EvalSample(name, prepare_frame(plate), alpha, fg, kinds.get(name, ()))
        for name, plate, alpha, fg in load_indep_val(folder, count)
    ]
