"""Training data: procedural plates with exact ground truth, and artist-keyed user frames.

Every item is a dict of float32 tensors, the same for both sources:
  plate     (3,H,W) network encoding of the linear plate (encode_for_network)
  screen    (3,H,W) the network's screen guide, ScreenEstimate.smooth_enc of estimate_screen
            on the FULL frame, then cropped: exactly what the renderer feeds every tile
  alpha     (1,H,W) coverage in [0,1]
  fg        (3,H,W) linear straight foreground without spill (synthetic only)
  bg        (3,H,W) linear clean screen (synthetic only)
  plate_lin (3,H,W) linear plate
  has_fg    ()      1.0 when fg/bg are ground truth, 0.0 when they are stand-ins (user data)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import torch
from torch.utils.data import Dataset

from gsrender.engine.encoding import encode_for_network, srgb_eotf, srgb_oetf
from gsrender.engine.screen_estimate import ScreenEstimate, estimate_screen

from .synth.generator import (
    DEFAULT_CAMERA_MIX,
    DEFAULT_LIGHTING,
    DEFAULT_SUBJECT_MIX,
    CameraMix,
    LightingMix,
    Plate,
    SubjectMix,
    generate_plate,
)

VALIDATION_SEED = 1_000_000  # training seeds stay below this; validation plates start here
CROP_ALIGN = 8  # crop origins are multiples of this (the network's downsampling factor)

# One entry per validation plate, cycled: every kind is seen equally often.
VALIDATION_KINDS: tuple[tuple[str, ...], ...] = (
    ("solid", "hair"),
    ("hair",),
    ("solid", "motion_blur"),
    ("semi_transparent",),
    ("solid",),
    ("thin",),
    ("fur",),
    ("solid", "defocus"),
    ("solid", "greenish_fg"),
    ("hair", "motion_blur"),
    ("semi_transparent", "solid"),
    ("solid", "hdr", "float"),
    ("solid", "large"),
    ("empty",),
    ("solid", "thin", "dark_screen"),
    ("hair", "solid", "markers"),
)


def _chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))


def screen_guide(est: ScreenEstimate, gain: np.ndarray | None = None) -> np.ndarray:
    """The encoded 3xHxW screen guide as the renderer computes it; gain scales it in linear
    light (for exposure/white-balance jitter applied to the plate)."""
    if gain is not None:
        est = dataclasses.replace(est, grid=(est.grid * gain).astype(np.float32))
    return est.smooth_enc


def make_item(
    plate_lin: np.ndarray,
    guide_enc: np.ndarray,
    alpha: np.ndarray,
    fg: np.ndarray,
    bg: np.ndarray,
    has_fg: bool,
) -> dict[str, torch.Tensor]:
    """Build the item dict from cropped HxW(x3) linear arrays and a 3xHxW encoded guide."""
    return {
        "plate": torch.from_numpy(encode_for_network(plate_lin)),
        "screen": torch.from_numpy(np.ascontiguousarray(guide_enc, dtype=np.float32)),
        "alpha": torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32)[None]),
        "fg": _chw(fg),
        "bg": _chw(bg),
        "plate_lin": _chw(plate_lin),
        "has_fg": torch.tensor(1.0 if has_fg else 0.0, dtype=torch.float32),
    }


def _crop_origin(rng: np.random.Generator, size: int, crop: int) -> int:
    return CROP_ALIGN * int(rng.integers(0, (size - crop) // CROP_ALIGN + 1))


class SyntheticKeyingDataset(Dataset):
    """Procedural plates: item i is generated from seed base_seed + i, so it never changes.

    The guide is estimated on the whole gen_size plate, then a crop x crop window
    (origin a multiple of 8) and a horizontal flip are drawn from a generator seeded by
    the same seed. Generating costs ~30 ms per item on one core; use DataLoader workers.
    """

    def __init__(
        self,
        length: int,
        crop: int = 192,
        gen_size: int = 256,
        base_seed: int = 0,
        kinds: Sequence[str] | None = None,
        clean_guide: float = 0.0,
        lighting: LightingMix = DEFAULT_LIGHTING,
        camera_mix: CameraMix = DEFAULT_CAMERA_MIX,
        subject_mix: SubjectMix = DEFAULT_SUBJECT_MIX,
    ) -> None:
        if not 0 < crop <= gen_size:
            raise ValueError(f"crop ({crop}) must be in 1..gen_size ({gen_size})")
        if length < 0 or base_seed < 0:
            raise ValueError("length and base_seed must be >= 0")
        if base_seed + length > VALIDATION_SEED:
            raise ValueError(
                f"training seeds {base_seed}..{base_seed + length - 1} reach the validation range "
                f"(>= {VALIDATION_SEED}); lower base_seed or length"
            )
        self.length = length
        self.crop = crop
        self.gen_size = gen_size
        self.base_seed = base_seed
        self.kinds = tuple(kinds) if kinds is not None else None
        self.clean_guide = clean_guide
        self.lighting = lighting
        self.camera_mix = camera_mix
        self.subject_mix = subject_mix

    def __len__(self) -> int:
        return self.length

    def plate(self, index: int) -> Plate:
        """The full uncropped plate behind item `index`."""
        return generate_plate(
            self.base_seed + index, self.gen_size, self.gen_size, self.kinds, self.lighting, self.camera_mix,
            self.subject_mix,
        )  # fmt: skip

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(index)
        seed = self.base_seed + index
        p = self.plate(index)
        # a share of items is guided by the exact clean screen, as a compositor's clean plate
        # guides the engine (--clean-plate), so the network works with either guide
        if self.clean_guide and np.random.default_rng([seed, 2]).random() < self.clean_guide:
            guide = srgb_oetf(p.screen).transpose(2, 0, 1)
        else:
            guide = screen_guide(estimate_screen(p.plate))
        rng = np.random.default_rng([seed, 1])
        y0 = _crop_origin(rng, self.gen_size, self.crop)
        x0 = _crop_origin(rng, self.gen_size, self.crop)
        flip = bool(rng.random() < 0.5)
        sl = (slice(y0, y0 + self.crop), slice(x0, x0 + self.crop))
        g = guide[:, sl[0], sl[1]]
        arrays = [p.plate[sl], p.alpha[sl], p.fg[sl], p.screen[sl]]
        if flip:
            arrays = [a[:, ::-1] for a in arrays]
            g = g[:, :, ::-1]
        plate, alpha, fg, bg = arrays
        return make_item(plate, g, alpha, fg, bg, has_fg=True)


def make_validation_plates(count: int, size: int = 256, seed: int = VALIDATION_SEED) -> list[Plate]:
    """Held-out plates (seeds from 1_000_000), cycling through VALIDATION_KINDS."""
    return [
        generate_plate(seed + i, size, size, VALIDATION_KINDS[i % len(VALIDATION_KINDS)])
        for i in range(count)
    ]


class ValidationSet(Dataset):
    """The validation plates as whole-frame items (no crop, no flip), plus their kinds."""

    def __init__(self, count: int, size: int = 256, seed: int = VALIDATION_SEED) -> None:
        self.plates = make_validation_plates(count, size, seed)
        self.kinds = [p.kinds for p in self.plates]

    def __len__(self) -> int:
        return len(self.plates)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        p = self.plates[index]
        return make_item(
            p.plate, screen_guide(estimate_screen(p.plate)), p.alpha, p.fg, p.screen, has_fg=True
        )


# --------------------------------------------------------------------------- user data

_PAIR_RE = re.compile(r"^(?P<name>.+)\.(?P<role>RGB|ALPHA)\.(?P<frame>\d+)\.(?P<ext>[A-Za-z0-9]+)$")
_IMAGE_EXTS = {"png", "exr", "tif", "tiff", "jpg", "jpeg"}


def _read_image(path: Path) -> tuple[np.ndarray, list[str]]:
    """Pixels as float32 HxWxC (integer formats normalised to [0,1]) and channel names."""
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)  # do not premultiply PNG colour by its alpha
    buf = oiio.ImageBuf(str(path), 0, 0, config)
    if buf.has_error:
        raise ValueError(f"cannot read image {path}: {buf.geterror()}")
    px = np.asarray(buf.get_pixels(oiio.FLOAT), dtype=np.float32)
    if px.ndim == 2:
        px = px[..., None]
    return px, list(buf.spec().channelnames)


def _is_linear(path: Path) -> bool:
    return path.suffix.lower() == ".exr"


def _exr_has_alpha(path: Path) -> bool:
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        return False
    try:
        return "A" in list(inp.spec().channelnames)
    finally:
        inp.close()


def _rgb_linear(px: np.ndarray, names: list[str], linear: bool) -> np.ndarray:
    if all(c in names for c in "RGB"):
        rgb = px[..., [names.index(c) for c in "RGB"]]
    elif px.shape[2] >= 3:
        rgb = px[..., :3]
    else:
        rgb = np.repeat(px[..., :1], 3, axis=2)
    rgb = np.nan_to_num(rgb, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    return rgb if linear else srgb_eotf(rgb)


def _alpha_channel(px: np.ndarray, names: list[str], prefer_a: bool) -> np.ndarray:
    if prefer_a and "A" in names:
        a = px[..., names.index("A")]
    else:
        a = px[..., 0]
    return np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0).astype(np.float32)


def find_pairs(folder: str | Path) -> list[tuple[Path, Path]]:
    """(rgb, alpha) file pairs in the seed's layout, sorted by name then frame number.

    `<name>.RGB.<frame>.<ext>` pairs with `<name>.ALPHA.<frame>.<ext>` (any image
    extension). An EXR with an A channel is its own pair (alpha from A) when it has no
    ALPHA partner, or when it is not named in the RGB/ALPHA layout at all.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"paired data folder {folder} does not exist")
    rgb: dict[tuple[str, int], Path] = {}
    alpha: dict[tuple[str, int], Path] = {}
    loose_exr: list[Path] = []
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.suffix.lower().lstrip(".") not in _IMAGE_EXTS:
            continue
        m = _PAIR_RE.match(f.name)
        if m is None:
            if f.suffix.lower() == ".exr":
                loose_exr.append(f)
            continue
        key = (m["name"], int(m["frame"]))
        (rgb if m["role"] == "RGB" else alpha)[key] = f
    pairs: list[tuple[Path, Path]] = []
    for key in sorted(rgb):
        f = rgb[key]
        if key in alpha:
            pairs.append((f, alpha[key]))
        elif f.suffix.lower() == ".exr" and _exr_has_alpha(f):
            pairs.append((f, f))
        else:
            m = _PAIR_RE.match(f.name)
            assert m is not None
            expected = f"{m['name']}.ALPHA.{m['frame']}.{m['ext']}"
            raise ValueError(f"{f} has no matching ALPHA frame (expected {expected} or another extension)")
    pairs += [(f, f) for f in loose_exr if _exr_has_alpha(f)]
    if not pairs:
        raise ValueError(
            f"no RGB/ALPHA frame pairs found in {folder} "
            "(expected e.g. Data.01.RGB.0063.png + Data.01.ALPHA.0063.png, or EXRs with an A channel)"
        )
    return pairs


def load_pair(rgb_path: Path, alpha_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Linear HxWx3 plate and HxW alpha of one pair (PNG/JPEG/TIFF as sRGB, EXR as linear)."""
    px, names = _read_image(rgb_path)
    plate = _rgb_linear(px, names, _is_linear(rgb_path))
    if alpha_path == rgb_path:
        a = _alpha_channel(px, names, prefer_a=True)
    else:
        apx, anames = _read_image(alpha_path)
        a = _alpha_channel(apx, anames, prefer_a=_is_linear(alpha_path) and apx.shape[2] != 1)
    if a.shape != plate.shape[:2]:
        raise ValueError(
            f"{alpha_path} is {a.shape[1]}x{a.shape[0]} but {rgb_path} is {plate.shape[1]}x{plate.shape[0]}"
        )
    return plate, a


class PairedSequenceDataset(Dataset):
    """Artist-keyed frames (plate + alpha, no clean foreground) for fine-tuning.

    Item i uses frame i % n_frames and draws its crop (origin a multiple of 8), flip and a
    mild exposure / white-balance jitter from a generator seeded by seed + i. The screen
    estimate is made once per frame on the whole frame (as at render time); the jitter
    gains scale it in linear light before it is encoded. fg and bg are the linear plate
    (stand-ins) and has_fg is 0. Frames smaller than the crop are mirror-padded.
    """

    def __init__(
        self,
        folder: str | Path,
        crop: int = 192,
        samples_per_epoch: int = 2000,
        seed: int = 0,
        jitter: bool = True,
        cache: bool = True,
    ) -> None:
        self.folder = Path(folder)
        self.pairs = find_pairs(self.folder)
        self.crop = crop
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.jitter = jitter
        self.cache = cache
        self._frames: dict[int, tuple[np.ndarray, np.ndarray, ScreenEstimate]] = {}

    def __len__(self) -> int:
        return self.samples_per_epoch

    def frame(self, k: int) -> tuple[np.ndarray, np.ndarray, ScreenEstimate]:
        """(linear plate, alpha, screen estimate of the whole frame) of frame k."""
        if k in self._frames:
            return self._frames[k]
        plate, alpha = load_pair(*self.pairs[k])
        out = (plate, alpha, estimate_screen(plate))
        if self.cache:
            self._frames[k] = out
        return out

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        plate, alpha, est = self.frame(index % len(self.pairs))
        rng = np.random.default_rng(self.seed + index)
        gain = None
        if self.jitter:
            gain = (np.exp(rng.uniform(-0.15, 0.15)) * np.exp(rng.normal(0.0, 0.02, 3))).astype(np.float32)
        guide = screen_guide(est, gain).transpose(1, 2, 0)  # HxWx3 view for cropping
        h, w = alpha.shape
        c = self.crop
        if h < c or w < c:  # small frames: mirror-pad up to one crop
            pad = ((0, max(0, c - h)), (0, max(0, c - w)))
            plate = np.pad(plate, pad + ((0, 0),), mode="symmetric")
            guide = np.pad(guide, pad + ((0, 0),), mode="symmetric")
            alpha = np.pad(alpha, pad, mode="symmetric")
            h, w = alpha.shape
        y0, x0 = _crop_origin(rng, h, c), _crop_origin(rng, w, c)
        sl = (slice(y0, y0 + c), slice(x0, x0 + c))
        p, g, a = plate[sl], guide[sl], alpha[sl]
        if rng.random() < 0.5:
            p, g, a = p[:, ::-1], g[:, ::-1], a[:, ::-1]
        if gain is not None:
            p = p * gain
        return make_item(p, g.transpose(2, 0, 1), a, p, p, has_fg=False)


def write_paired_sequence(
    plates: Sequence[Plate], folder: str | Path, name: str = "Data.01"
) -> list[tuple[Path, Path]]:
    """Write plates in the seed's layout: <name>.RGB.0001.png (sRGB 8-bit) + <name>.ALPHA.0001.png.

    Frames are numbered from 1 with 4 digits. Returns the (rgb, alpha) paths written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, p in enumerate(plates, start=1):
        rgb_path = folder / f"{name}.RGB.{i:04d}.png"
        alpha_path = folder / f"{name}.ALPHA.{i:04d}.png"
        write_png(rgb_path, srgb_oetf(p.plate))
        write_png(alpha_path, p.alpha[..., None])
        out.append((rgb_path, alpha_path))
    return out


def write_png(path: str | Path, encoded: np.ndarray) -> None:
    """Write an HxWxC array of encoded [0,1] values as an 8-bit PNG (rounded, clipped)."""
    img = np.ascontiguousarray(np.clip(np.rint(np.clip(encoded, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8))
    h, w, c = img.shape
    buf = oiio.ImageBuf(oiio.ImageSpec(w, h, c, oiio.UINT8))
    buf.set_pixels(oiio.ROI(0, w, 0, h, 0, 1, 0, c), img)
    if not buf.write(str(path)):
        raise OSError(f"cannot write {path}: {buf.geterror()}")
