"""A degraded copy of a rendered set: the same ground truth under poorer camera conditions.

Photographed plates are rarely as clean as a render: the light falls off across the frame,
a small sensor adds noise, and footage arrives as 8-bit 4:2:0 JPEG. Each plate of a set is
copied with, in this order (seeded per plate, so a copy is repeatable):

- uneven light: the whole frame (screen and subject) times a smooth gain field, a tilted
  plane times a vignette, 0.55-1.3 across the frame; the foreground is lit by the same field,
  so the copy's fg is the source's fg times the gain (alpha does not change);
- noise: more camera noise (variance = gain * value + read^2, 3-6x the source's gain);
- JPEG: sRGB 8-bit, quality 70-85, 4:2:0 chroma, decoded back to linear.

The copy is a set of its own (plate, alpha, fg, screen files and a manifest), scored with
``gsrender evaluate --data indep:DIR``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from gsrender.engine.encoding import srgb_eotf, srgb_oetf

from . import dataset

STREAM = 0xDE64  # the degradation's random stream, per plate seed


def gain_field(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth light fall-off: a tilted plane times a vignette, within about 0.55-1.3."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = (x - w / 2) / max(h, w), (y - h / 2) / max(h, w)
    ang = rng.uniform(0, 2 * np.pi)
    plane = 1.0 + rng.uniform(0.25, 0.5) * (np.cos(ang) * u + np.sin(ang) * v) * 2
    cx, cy = rng.uniform(-0.2, 0.2, 2)
    vignette = 1.0 - rng.uniform(0.2, 0.4) * ((u - cx) ** 2 + (v - cy) ** 2) * 2.5
    return np.clip(plane * vignette, 0.55, 1.3).astype(np.float32)


def jpeg_round_trip(lin: np.ndarray, quality: int) -> np.ndarray:
    """Linear RGB -> sRGB 8-bit JPEG (4:2:0) -> linear RGB."""
    import OpenImageIO as oiio

    enc = (np.clip(srgb_oetf(np.clip(lin, 0.0, 1.0)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    with tempfile.TemporaryDirectory(prefix="gsrender_jpeg_") as tmp:
        path = str(Path(tmp) / "plate.jpg")
        spec = oiio.ImageSpec(enc.shape[1], enc.shape[0], 3, "uint8")
        spec.attribute("Compression", f"jpeg:{quality}")
        spec.attribute("jpeg:subsampling", "4:2:0")
        out = oiio.ImageOutput.create(path)
        if out is None or not out.open(path, spec) or not out.write_image(np.ascontiguousarray(enc)):
            raise OSError(f"{path}: cannot write JPEG ({oiio.geterror()})")
        out.close()
        back = np.asarray(oiio.ImageBuf(path).get_pixels(oiio.FLOAT), np.float32)[..., :3]
    return srgb_eotf(back).astype(np.float32)


def degrade_plate(
    plate: np.ndarray, fg: np.ndarray, screen: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(plate, fg, screen, what was done) for one plate; alpha is unchanged."""
    rng = np.random.default_rng([seed, STREAM])
    h, w = plate.shape[:2]
    g = gain_field(h, w, rng)[..., None]
    lit = plate * g
    noise_gain = float(rng.uniform(3e-3, 6e-3))
    sigma = np.sqrt(noise_gain * np.maximum(lit, 0.0) + 2e-3**2)
    noisy = lit + rng.standard_normal(lit.shape).astype(np.float32) * sigma
    quality = int(rng.integers(70, 86))
    out = jpeg_round_trip(noisy, quality)
    info = {
        "gain_range": [round(float(g.min()), 3), round(float(g.max()), 3)],
        "noise_gain": round(noise_gain, 5),
        "jpeg_quality": quality,
        "jpeg_subsampling": "4:2:0",
    }
    return out, (fg * g).astype(np.float32), (screen * g).astype(np.float32), info


def degrade_set(src: Path, out: Path, log=print) -> dict:
    """Write the degraded copy of the set in `src` to `out`; returns its manifest."""
    manifest = dataset.read_manifest(src)
    out.mkdir(parents=True, exist_ok=True)
    copy = {k: v for k, v in manifest.items() if k != "plates"}
    copy["degraded_from"] = str(src)
    copy["degradation"] = __doc__.split("\n\n")[1].replace("\n", " ")
    copy["plates"] = []
    for entry in manifest["plates"]:
        try:
            name, files = str(entry["name"]), entry["files"]
            plate, fg = (dataset.read_exr(src / files[k], 3) for k in ("plate", "fg"))
            alpha = dataset.read_exr(src / files["alpha"], 1)
            screen = dataset.read_exr(src / files["screen"], 3)
            seed = int(entry.get("seed", len(copy["plates"])))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, dataset.IndepValError):
                raise
            where = src / dataset.MANIFEST
            raise dataset.IndepValError(f"{where}: malformed plate entry {entry!r}") from None
        d_plate, d_fg, d_screen, info = degrade_plate(plate, fg, screen, seed)
        images = {"plate": d_plate, "alpha": alpha, "fg": d_fg, "screen": d_screen}
        copy["plates"].append({**entry, "files": dataset.write_plate(out, name, images), "degraded": info})
        dataset.write_manifest(out, copy)
        log(f"{name}: gain {info['gain_range']}, noise {info['noise_gain']}, JPEG q{info['jpeg_quality']}")
    return copy
