"""What the camera does to the composite: noise, optional sharpening, quantisation, 4:2:0.

These happen AFTER the exact composite, so they only change the plate: the ground
truth (alpha, fg, screen) stays what the scene was. Exposure is not here: it scales the
scene before compositing (see generator), keeping I = a*F + (1-a)*B exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gsrender.engine.encoding import srgb_eotf, srgb_oetf

from .raster import box_blur

MODES = ("float", "8bit", "8bit_420", "10bit_422")

# BT.709 RGB -> Y'CbCr on the encoded signal
_Y = np.array([0.2126, 0.7152, 0.0722], np.float32)


@dataclass(frozen=True)
class CameraSpec:
    """Random camera/codec settings for one plate or one whole sequence."""

    exposure: float  # linear scale of the whole scene
    shot: float  # shot-noise variance per unit linear signal
    read: float  # read-noise standard deviation (linear)
    mode: str  # one of MODES
    sharpen: float  # unsharp-mask amount on the encoded image (0 = off)


def sample_camera(rng: np.random.Generator, mode: str | None = None) -> CameraSpec:
    """Draw camera settings: mostly 8-bit chroma-subsampled, sometimes clean float (EXR-like)."""
    if mode is None:
        mode = str(rng.choice(MODES, p=[0.25, 0.2, 0.4, 0.15]))
    return CameraSpec(
        exposure=float(np.exp(rng.uniform(np.log(0.6), np.log(1.6)))),
        shot=float(np.exp(rng.uniform(np.log(1e-5), np.log(1.2e-3)))),
        read=float(np.exp(rng.uniform(np.log(2e-4), np.log(4e-3)))),
        mode=mode,
        sharpen=float(rng.uniform(0.2, 0.8)) if rng.random() < 0.2 else 0.0,
    )


def _decode_lut(levels: int) -> np.ndarray:
    return srgb_eotf(np.arange(levels, dtype=np.float32) / np.float32(levels - 1))


_LUTS: dict[int, np.ndarray] = {}


def _quantise_decode(enc: np.ndarray, levels: int) -> np.ndarray:
    """Round encoded values to integer code values and decode them through a LUT (fast)."""
    lut = _LUTS.get(levels)
    if lut is None:
        lut = _LUTS[levels] = _decode_lut(levels)
    codes = np.clip(enc * np.float32(levels - 1) + np.float32(0.5), 0, levels - 1).astype(np.int32)
    return lut[codes]


def _chroma_subsample(enc: np.ndarray, vertical: bool) -> np.ndarray:
    """Average Cb/Cr over 2x2 (4:2:0) or 2x1 (4:2:2) blocks and rebuild R'G'B'."""
    h, w, _ = enc.shape
    y = enc @ _Y
    cb = (enc[..., 2] - y) * np.float32(1.0 / 1.8556)
    cr = (enc[..., 0] - y) * np.float32(1.0 / 1.5748)
    ph, pw = (h % 2) if vertical else 0, w % 2
    by = 2 if vertical else 1

    def sub(c: np.ndarray) -> np.ndarray:
        c = np.pad(c, ((0, ph), (0, pw)), mode="edge")
        hh, ww = c.shape
        m = c.reshape(hh // by, by, ww // 2, 2).mean(axis=(1, 3))
        return np.repeat(np.repeat(m, by, axis=0), 2, axis=1)[:h, :w]

    cb, cr = sub(cb), sub(cr)
    r = y + np.float32(1.5748) * cr
    b = y + np.float32(1.8556) * cb
    g = (y - _Y[0] * r - _Y[2] * b) * np.float32(1.0 / _Y[1])
    return np.stack([r, g, b], axis=-1)


def apply_camera(clean: np.ndarray, spec: CameraSpec, rng: np.random.Generator) -> np.ndarray:
    """Degrade an exactly composited linear image as a camera + codec would."""
    x = clean
    sigma = np.sqrt(np.float32(spec.shot) * np.maximum(x, 0.0) + np.float32(spec.read**2))
    x = x + sigma * rng.standard_normal(x.shape, dtype=np.float32)
    if spec.mode == "float":
        # half-float EXR: keeps HDR highlights and small negatives from the noise
        return x.astype(np.float16).astype(np.float32)
    enc = srgb_oetf(x)
    if spec.sharpen:
        soft = box_blur(box_blur(enc, 1, 0), 1, 1)
        enc = enc + np.float32(spec.sharpen) * (enc - soft)
    if spec.mode == "8bit_420":
        enc = _chroma_subsample(np.clip(enc, 0.0, 1.0), vertical=True)
    elif spec.mode == "10bit_422":
        enc = _chroma_subsample(np.clip(enc, 0.0, 1.0), vertical=False)
    return _quantise_decode(enc, 1024 if spec.mode == "10bit_422" else 256)
