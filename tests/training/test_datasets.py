"""Datasets: item layout, deterministic aligned crops, paired-folder round trip and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gsrender.engine.encoding import encode_for_network, srgb_eotf, srgb_oetf
from gsrender.engine.screen_estimate import estimate_screen
from gsrender.training.datasets import (
    VALIDATION_KINDS,
    PairedSequenceDataset,
    SyntheticKeyingDataset,
    ValidationSet,
    find_pairs,
    make_validation_plates,
    write_paired_sequence,
)
from gsrender.training.synth.generator import generate_plate
from gsrender.training.synth.make_previews import write_exr
from gsrender.training.synth.make_sample_shot import make_sample_shot

KEYS = {"plate": 3, "screen": 3, "alpha": 1, "fg": 3, "bg": 3, "plate_lin": 3}


def _check_item(item: dict[str, torch.Tensor], size: int) -> None:
    assert set(item) == set(KEYS) | {"has_fg"}
    for k, c in KEYS.items():
        assert item[k].shape == (c, size, size), k
        assert item[k].dtype == torch.float32, k
    assert item["has_fg"].shape == () and item["has_fg"].dtype == torch.float32


def _locate(full: np.ndarray, crop: np.ndarray, atol: float = 0.0) -> tuple[int, int, bool]:
    """Where (y0, x0, flipped) an HxWxC crop sits in the full array (exact match by default)."""
    c = crop.shape[0]
    for flip in (False, True):
        want = crop[:, ::-1] if flip else crop
        for y0 in range(full.shape[0] - c + 1):
            for x0 in range(full.shape[1] - c + 1):
                if np.allclose(full[y0 : y0 + c, x0 : x0 + c], want, rtol=0, atol=atol):
                    return y0, x0, flip
    raise AssertionError("crop not found in the full plate")


def test_synthetic_items_are_aligned_deterministic_crops() -> None:
    ds = SyntheticKeyingDataset(3, crop=40, gen_size=64, base_seed=10)
    assert len(ds) == 3
    item = ds[1]
    _check_item(item, 40)
    assert float(item["has_fg"]) == 1.0
    again = ds[1]
    assert all(torch.equal(item[k], again[k]) for k in item)
    full = generate_plate(11, 64, 64)
    lin = item["plate_lin"].numpy().transpose(1, 2, 0)
    y0, x0, flip = _locate(full.plate, lin)
    assert y0 % 8 == 0 and x0 % 8 == 0
    sl = (slice(y0, y0 + 40), slice(x0, x0 + 40))

    def f(a: np.ndarray) -> np.ndarray:
        return a[:, ::-1] if flip else a

    # the guide is the renderer's, from the whole plate, then cropped with everything else
    guide = estimate_screen(full.plate).smooth_enc.transpose(1, 2, 0)
    np.testing.assert_array_equal(item["screen"].numpy(), f(guide[sl]).transpose(2, 0, 1))
    np.testing.assert_array_equal(item["plate"].numpy(), encode_for_network(lin))
    np.testing.assert_array_equal(item["alpha"].numpy()[0], f(full.alpha[sl]))
    np.testing.assert_array_equal(item["fg"].numpy().transpose(1, 2, 0), f(full.fg[sl]))
    np.testing.assert_array_equal(item["bg"].numpy().transpose(1, 2, 0), f(full.screen[sl]))


def test_synthetic_seeds_stay_below_validation() -> None:
    with pytest.raises(ValueError, match="validation"):
        SyntheticKeyingDataset(10, base_seed=999_995)
    with pytest.raises(ValueError):
        SyntheticKeyingDataset(1, crop=300, gen_size=256)


def test_validation_plates_are_held_out_and_balanced() -> None:
    plates = make_validation_plates(3, size=48)
    again = make_validation_plates(3, size=48)
    assert all(np.array_equal(a.plate, b.plate) for a, b in zip(plates, again, strict=True))
    assert not np.array_equal(plates[0].plate, generate_plate(0, 48, 48).plate)
    for p, kinds in zip(plates, VALIDATION_KINDS, strict=False):
        assert set(kinds) - {"float", "dark_screen", "markers"} <= set(p.kinds)
    vs = ValidationSet(2, size=48)
    _check_item(vs[0], 48)


def _paired_folder(tmp_path: Path, n: int = 2) -> tuple[Path, list]:
    plates = [generate_plate(20 + i, 48, 56, ("solid", "hair")) for i in range(n)]
    paths = write_paired_sequence(plates, tmp_path / "shot")
    assert [p[0].name for p in paths] == [f"Data.01.RGB.{i:04d}.png" for i in range(1, n + 1)]
    assert [p[1].name for p in paths] == [f"Data.01.ALPHA.{i:04d}.png" for i in range(1, n + 1)]
    return tmp_path / "shot", plates


def test_paired_round_trip(tmp_path: Path) -> None:
    folder, plates = _paired_folder(tmp_path)
    ds = PairedSequenceDataset(folder, crop=32, samples_per_epoch=4, seed=3, jitter=False)
    assert len(ds) == 4 and len(ds.pairs) == 2
    item = ds[2]  # frame 0 again (2 % 2)
    _check_item(item, 32)
    assert float(item["has_fg"]) == 0.0
    assert torch.equal(item["fg"], item["plate_lin"]) and torch.equal(item["bg"], item["plate_lin"])
    # what was written is the 8-bit sRGB plate and 8-bit alpha: find the crop in them
    plate8 = srgb_eotf(np.rint(srgb_oetf(plates[0].plate) * 255) / 255)
    y0, x0, flip = _locate(plate8.astype(np.float32), item["plate_lin"].numpy().transpose(1, 2, 0), 1e-6)
    assert y0 % 8 == 0 and x0 % 8 == 0
    a = np.rint(plates[0].alpha * 255) / 255
    a = a[y0 : y0 + 32, x0 : x0 + 32]
    np.testing.assert_allclose(item["alpha"].numpy()[0], a[:, ::-1] if flip else a, atol=1e-6)
    g = ds.frame(0)[2].smooth_enc[:, y0 : y0 + 32, x0 : x0 + 32]  # whole-frame estimate, cropped
    np.testing.assert_array_equal(item["screen"].numpy(), g[:, :, ::-1] if flip else g)
    # seeded by seed + index: same item twice, jitter included
    dj = PairedSequenceDataset(folder, crop=32, samples_per_epoch=4, seed=3)
    assert torch.equal(dj[1]["plate"], dj[1]["plate"])


def test_paired_errors_name_the_problem(tmp_path: Path) -> None:
    folder, _ = _paired_folder(tmp_path)
    (folder / "Data.01.ALPHA.0002.png").unlink()
    with pytest.raises(ValueError, match=r"Data\.01\.RGB\.0002\.png"):
        PairedSequenceDataset(folder)
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    with pytest.raises(ValueError, match="nothing_here"):
        PairedSequenceDataset(empty)


def test_exr_alpha_channel_and_small_frames(tmp_path: Path) -> None:
    p = generate_plate(5, 24, 20, ("solid", "float"))
    write_exr(tmp_path / "shot.0001.exr", p)
    assert find_pairs(tmp_path) == [(tmp_path / "shot.0001.exr", tmp_path / "shot.0001.exr")]
    ds = PairedSequenceDataset(tmp_path, crop=32, samples_per_epoch=1, jitter=False)
    plate, alpha, _ = ds.frame(0)
    np.testing.assert_allclose(alpha, p.alpha, atol=1e-3)  # half float
    np.testing.assert_allclose(plate, p.plate, rtol=1e-3, atol=1e-3)
    _check_item(ds[0], 32)  # smaller than the crop: mirror-padded


def test_sample_shot_is_byte_identical(tmp_path: Path) -> None:
    a = make_sample_shot(tmp_path / "a", frames=2, width=64, height=40)
    b = make_sample_shot(tmp_path / "b", frames=2, width=64, height=40)
    assert [x.name for x in a] == ["plate.1001.png", "plate.1002.png"]
    for x, y in zip(a, b, strict=True):
        assert x.read_bytes() == y.read_bytes()
    assert (tmp_path / "a" / "gt" / "alpha.1002.png").read_bytes() == (
        tmp_path / "b" / "gt" / "alpha.1002.png"
    ).read_bytes()


def test_a_share_of_items_is_guided_by_the_exact_clean_screen() -> None:
    """data.clean_guide: those items see the true clean screen (a clean plate), the rest the estimate."""
    plain = SyntheticKeyingDataset(6, crop=64, gen_size=96, base_seed=5)
    always = SyntheticKeyingDataset(6, crop=64, gen_size=96, base_seed=5, clean_guide=1.0)
    half = SyntheticKeyingDataset(6, crop=64, gen_size=96, base_seed=5, clean_guide=0.5)
    clean_items = 0
    for i in range(6):
        a, b, c = plain[i], always[i], half[i]
        assert torch.equal(a["plate"], b["plate"]) and torch.equal(a["alpha"], b["alpha"])  # same crops
        exact = srgb_oetf(b["bg"].numpy().transpose(1, 2, 0)).transpose(2, 0, 1)
        np.testing.assert_allclose(b["screen"].numpy(), exact, atol=1e-6)
        assert not torch.equal(a["screen"], b["screen"])
        clean_items += int(torch.equal(c["screen"], b["screen"]))
        assert torch.equal(c["screen"], b["screen"]) or torch.equal(c["screen"], a["screen"])
    assert 0 < clean_items < 6
