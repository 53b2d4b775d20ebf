"""Write and read a rendered independent-validation set (EXR files plus manifest.json).

Per plate: <name>.plate.exr (linear RGB, half, with camera noise), <name>.alpha.exr (float,
one channel), <name>.fg.exr (straight spill-free foreground, float RGB) and
<name>.screen.exr (the clean plate, half). Reading needs only OpenImageIO, not the renderer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gsrender.engine.atomic_files import atomic_write_text

MANIFEST = "manifest.json"
FILES = {"plate": "half", "alpha": "float", "fg": "float", "screen": "half"}


class IndepValError(ValueError):
    """A set on disk is missing or malformed (the message names the file)."""


def write_exr(path: Path, img: np.ndarray, dtype: str) -> None:
    import OpenImageIO as oiio

    arr = np.asarray(img, dtype=np.float32)
    arr = np.ascontiguousarray(arr[..., None] if arr.ndim == 2 else arr)  # OIIO wants HxWxC
    chans = arr.shape[2]
    spec = oiio.ImageSpec(arr.shape[1], arr.shape[0], chans, dtype)
    spec.channelnames = ("A",) if chans == 1 else ("R", "G", "B")
    spec.attribute("compression", "zip")
    out = oiio.ImageOutput.create(str(path))
    if out is None or not out.open(str(path), spec) or not out.write_image(arr):
        raise OSError(f"{path}: cannot write EXR ({oiio.geterror()})")
    out.close()


def read_exr(path: Path, channels: int) -> np.ndarray:
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    if buf.has_error or buf.nchannels < channels:
        raise IndepValError(f"{path}: unreadable or fewer than {channels} channels ({buf.geterror()})")
    arr = np.asarray(buf.get_pixels(oiio.FLOAT), dtype=np.float32)[..., :channels]
    return arr[..., 0] if channels == 1 else np.ascontiguousarray(arr)


def write_plate(out_dir: Path, name: str, images: dict[str, np.ndarray]) -> dict[str, str]:
    """Write one plate's images; returns the file names for the manifest."""
    files = {}
    for key, dtype in FILES.items():
        fname = f"{name}.{key}.exr"
        write_exr(out_dir / fname, images[key], dtype)
        files[key] = fname
    return files


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    """Atomic: a set whose manifest is readable is complete."""
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise IndepValError(
            f"{path}: no manifest (render the set with python -m gsrender.cli.indep_val)"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise IndepValError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("plates"), list):
        raise IndepValError(f"{path}: manifest has no 'plates' list")
    return manifest


def load_indep_val(
    folder: str | Path, limit: int | None = None
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, plate_linear HxWx3, alpha HxW, fg HxWx3) for every plate of a rendered set, in order."""
    folder = Path(folder)
    out = []
    for entry in read_manifest(folder)["plates"][:limit]:
        try:
            name, files = str(entry["name"]), entry["files"]
            plate = read_exr(folder / files["plate"], 3)
            alpha = np.clip(read_exr(folder / files["alpha"], 1), 0.0, 1.0)
            fg = read_exr(folder / files["fg"], 3)
        except (KeyError, TypeError):
            raise IndepValError(f"{folder / MANIFEST}: malformed plate entry {entry!r}") from None
        if plate.shape[:2] != alpha.shape or fg.shape != plate.shape:
            raise IndepValError(f"{folder / files['plate']}: plate, alpha and fg sizes differ")
        out.append((name, plate, alpha, fg))
    return out
