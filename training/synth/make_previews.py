"""Write a handful of small preview plates to look at what the generator makes.

    python tools/make_synth_previews.py OUT_DIR [--size 256] [--seed 2024]

Writes the plates in the paired layout (preview.RGB.0001.png + preview.ALPHA.0001.png,
...), so the folder also works as a tiny fine-tuning set, a linear half-float EXR of the
HDR one (preview_linear.0006.exr, RGBA with the ground-truth alpha in A), and kinds.txt
listing what each frame contains. Deterministic: same arguments, same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from ..datasets import write_paired_sequence
from .generator import Plate, generate_plate

PREVIEW_KINDS: tuple[tuple[str, ...], ...] = (
    ("solid", "hair", "markers"),
    ("semi_transparent", "solid"),
    ("solid", "thin", "motion_blur"),
    ("fur", "defocus"),
    ("hair", "greenish_fg"),
    ("solid", "hair", "hdr", "float"),
)
EXR_INDEX = 5  # the HDR float plate


def write_exr(path: str | Path, plate: Plate) -> None:
    """RGBA half-float EXR: linear plate (HDR kept) with the ground-truth alpha in A."""
    rgba = np.concatenate([plate.plate, plate.alpha[..., None]], axis=2).astype(np.float32)
    h, w, _ = rgba.shape
    spec = oiio.ImageSpec(w, h, 4, oiio.HALF)
    spec.channelnames = ("R", "G", "B", "A")
    spec.alpha_channel = 3
    spec.attribute("compression", "zip")
    spec.attribute("DateTime", "2000:01:01 00:00:00")  # fixed, so the bytes are reproducible
    buf = oiio.ImageBuf(spec)
    buf.set_pixels(oiio.ROI(0, w, 0, h, 0, 1, 0, 4), np.ascontiguousarray(rgba))
    if not buf.write(str(path)):
        raise OSError(f"cannot write {path}: {buf.geterror()}")


def make_previews(out_dir: str | Path, size: int = 256, seed: int = 2024) -> list[Plate]:
    """Generate the PREVIEW_KINDS plates and write them (see the module docstring)."""
    out = Path(out_dir)
    plates = [generate_plate(seed + i, size, size, kinds) for i, kinds in enumerate(PREVIEW_KINDS)]
    write_paired_sequence(plates, out, name="preview")
    write_exr(out / f"preview_linear.{EXR_INDEX + 1:04d}.exr", plates[EXR_INDEX])
    lines = [f"{i + 1:04d}: {' '.join(p.kinds)}" for i, p in enumerate(plates)]
    (out / "kinds.txt").write_text("\n".join(lines) + "\n")
    return plates
