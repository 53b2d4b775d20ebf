"""Garbage matte, core matte and clean plate: exact areas, stills and sequences, bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from gsrender.cli.render import main
from gsrender.engine.backends import create_backend
from gsrender.engine.compositor_inputs import (
    FrameInputs,
    apply_mattes,
    check_exposure,
    read_matte,
)
from gsrender.engine.errors import InputError
from gsrender.engine.image_write import write_frame
from gsrender.engine.keyer import key_frame, prepare_frame
from gsrender.engine.screen_estimate import CleanPlateScreen
from tests.conftest import SCREEN, make_plate, write_plate

H, W = 72, 104


def run(*args: object) -> int:
    return main([str(a) for a in args])


def errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "error" in line]


def read_rgba(path: Path) -> np.ndarray:
    inp = oiio.ImageInput.open(str(path))
    try:
        return np.asarray(inp.read_image(0, 0, 0, 4, "float"))
    finally:
        inp.close()


def boxes(h: int = H, w: int = W, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A garbage box over screen and subject edge (left), a core box inside the disc (centre)."""
    garbage = np.zeros((h, w), np.float32)
    garbage[:, : 20 + shift] = 1.0
    garbage[5:15, 30:60] = 0.5  # fractional: a soft blend
    core = np.zeros((h, w), np.float32)
    core[34:44, 38:50] = 1.0
    return garbage, core


def write_matte(path: Path, matte: np.ndarray, layout: str = "Y") -> Path:
    """A matte as one channel (Y), RGBA with the matte in A (RGB noise), or RGB (matte in R)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = "float" if path.suffix == ".exr" else None
    if layout == "Y":
        pixels, names = matte[..., None], ["Y"]
    elif layout == "RGBA":
        noise = np.random.default_rng(1).random((*matte.shape, 3)).astype(np.float32)
        pixels, names = np.concatenate([noise, matte[..., None]], axis=2), ["R", "G", "B", "A"]
    else:
        pixels, names = np.repeat(matte[..., None], 3, axis=2), ["R", "G", "B"]
    write_frame(path, pixels, names, None, dtype=dtype)
    return path


@pytest.fixture
def exr_seq(tmp_path):
    """Three linear float EXR plates 1001-1003 (exact values, so premult == plate can be tested)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i, f in enumerate(range(1001, 1004)):
        write_frame(folder / f"plate.{f}.exr", make_plate(H, W, seed=i), ["R", "G", "B"], None, dtype="float")
    return folder


def plate_of(folder: Path, frame: int) -> np.ndarray:
    inp = oiio.ImageInput.open(str(folder / f"plate.{frame}.exr"))
    try:
        return np.asarray(inp.read_image(0, 0, 0, 3, "float"))
    finally:
        inp.close()


@pytest.mark.parametrize("keyer", ["neural", "classic"])
def test_still_mattes_force_exact_alpha_and_foreground(exr_seq, tmp_path, keyer):
    garbage, core = boxes()
    g_path = write_matte(tmp_path / "m" / "garbage.png", garbage)  # 8-bit: 0.5 -> 128/255
    c_path = write_matte(tmp_path / "m" / "core.exr", core, "RGBA")
    out = tmp_path / "o" / "k.####.exr"
    rc = run(exr_seq / "plate.####.exr", "-o", out, "--keyer", keyer, "--despill", 0, "--exr-dtype", "float",
             "--garbage-matte", g_path, "--core-matte", c_path)  # fmt: skip
    assert rc == 0
    for f in (1001, 1002, 1003):
        rgba = read_rgba(tmp_path / "o" / f"k.{f}.exr")
        g, c = garbage == 1.0, core == 1.0
        assert np.all(rgba[g] == 0.0)  # alpha and premultiplied RGB exactly 0
        assert np.all(rgba[c][:, 3] == 1.0)
        np.testing.assert_array_equal(rgba[c][:, :3], plate_of(exr_seq, f)[c])
        assert rgba[~g & ~c][:, 3].max() > 0.9  # the rest is still keyed (the disc)


def test_matte_soft_blend_and_unmix_follow_the_key(exr_seq, tmp_path):
    """Fractional garbage scales alpha; without mattes the render differs only where they are non-zero."""
    garbage, core = boxes()
    g_path = write_matte(tmp_path / "garbage.exr", garbage)
    args = [exr_seq / "plate.1001.exr", "--keyer", "classic", "--despill", 0, "--exr-dtype", "float"]
    assert run(*args, "-o", tmp_path / "a.exr") == 0
    assert run(*args, "-o", tmp_path / "b.exr", "--garbage-matte", g_path) == 0
    a, b = read_rgba(tmp_path / "a.exr"), read_rgba(tmp_path / "b.exr")
    untouched = garbage == 0
    np.testing.assert_array_equal(a[untouched], b[untouched])
    half = garbage == 0.5
    np.testing.assert_allclose(b[half][:, 3], 0.5 * a[half][:, 3], atol=1e-6)


def test_frame_token_mattes_follow_the_plate_frames(exr_seq, tmp_path):
    for i, f in enumerate(range(1001, 1004)):
        g, _ = boxes(shift=10 * i)
        write_matte(tmp_path / "m" / f"garbage.{f}.exr", g, "RGB")
    out = tmp_path / "o" / "k.####.exr"
    rc = run(exr_seq / "plate.####.exr", "-o", out, "--keyer", "classic", "--exr-dtype", "float",
             "--garbage-matte", tmp_path / "m" / "garbage.####.exr")  # fmt: skip
    assert rc == 0
    for i, f in enumerate(range(1001, 1004)):
        g, _ = boxes(shift=10 * i)
        rgba = read_rgba(tmp_path / "o" / f"k.{f}.exr")
        assert np.all(rgba[g == 1.0] == 0.0)
        # the next frame's wider box is not applied to this one: the disc edge there keeps some alpha
        assert rgba[:, 20 + 10 * i : 30 + 10 * i, 3].max() > 0.5


def test_invert_garbage(exr_seq, tmp_path):
    garbage, _ = boxes()
    inverted = write_matte(tmp_path / "garbage_inv.exr", 1.0 - garbage)
    out = tmp_path / "k.exr"
    rc = run(exr_seq / "plate.1001.exr", "-o", out, "--keyer", "classic", "--exr-dtype", "float",
             "--garbage-matte", inverted, "--invert-garbage")  # fmt: skip
    assert rc == 0
    assert np.all(read_rgba(out)[garbage == 1.0] == 0.0)


def test_matte_size_mismatch_is_one_line_and_exit_3_unless_fitted(exr_seq, tmp_path, capsys):
    small = np.zeros((H // 2, W // 2), np.float32)
    small[:, :10] = 1.0
    path = write_matte(tmp_path / "garbage.exr", small)
    rc = run(exr_seq / "plate.####.exr", "-o", tmp_path / "o" / "k.####.exr", "--garbage-matte", path)
    assert rc == 3
    lines = errors(capsys)
    assert len(lines) == 1, lines
    assert "garbage.exr" in lines[0] and "garbage matte is 52x36, the plate is 104x72" in lines[0]
    assert "--matte-fit" in lines[0]
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())
    rc = run(exr_seq / "plate.1001.exr", "-o", tmp_path / "f.exr", "--keyer", "classic",
             "--garbage-matte", path, "--matte-fit")  # fmt: skip
    assert rc == 0
    assert np.all(read_rgba(tmp_path / "f.exr")[:, :18] == 0.0)


@pytest.mark.parametrize("option", ["--garbage-matte", "--core-matte", "--clean-plate"])
def test_unreadable_input_is_one_line_and_exit_3(exr_seq, tmp_path, capsys, option):
    bad = tmp_path / "bad.exr"
    bad.write_bytes(b"this is not an image" * 10)
    rc = run(exr_seq / "plate.####.exr", "-o", tmp_path / "o" / "k.####.exr", option, bad)
    assert rc == 3
    lines = errors(capsys)
    assert len(lines) == 1 and "bad.exr" in lines[0], lines


def test_missing_still_and_missing_matte_frame(exr_seq, tmp_path, capsys):
    rc = run(
        exr_seq / "plate.####.exr", "-o", tmp_path / "o" / "k.####.exr", "--core-matte", tmp_path / "no.png"
    )
    assert rc == 3
    lines = errors(capsys)
    assert len(lines) == 1 and "no.png" in lines[0] and "--core-matte: file not found" in lines[0], lines
    garbage, _ = boxes()
    for f in (1001, 1003):
        write_matte(tmp_path / "m" / f"g.{f}.exr", garbage)
    rc = run(exr_seq / "plate.####.exr", "-o", tmp_path / "o" / "k.####.exr", "--keyer", "classic",
             "--garbage-matte", tmp_path / "m" / "g.####.exr", "--on-error", "skip")  # fmt: skip
    assert rc == 1
    lines = errors(capsys)
    assert len(lines) == 1 and "frame 1002" in lines[0] and "g.1002.exr" in lines[0], lines
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["k.1001.exr", "k.1003.exr"]


def test_frame_token_matte_with_a_single_plate_is_a_usage_error(exr_seq, tmp_path, capsys):
    rc = run(exr_seq / "plate.1001.exr", "-o", tmp_path / "k.exr", "--garbage-matte", tmp_path / "g.####.exr")
    assert rc == 2
    assert len(errors(capsys)) == 1


def test_matte_channel_choice(tmp_path):
    m = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
    for layout in ("Y", "RGBA", "RGB"):
        got = read_matte(write_matte(tmp_path / f"{layout}.exr", m, layout), (H, W), "garbage matte")
        np.testing.assert_array_equal(got, m)


def test_apply_mattes_blend():
    alpha = np.array([0.2, 0.6, 1.0, 0.0], np.float32)
    garbage = np.array([0.0, 0.5, 1.0, 0.0], np.float32)
    core = np.array([0.5, 0.0, 0.0, 1.0], np.float32)
    np.testing.assert_allclose(apply_mattes(alpha, garbage, core), [0.6, 0.3, 0.0, 1.0], atol=1e-7)


# ------------------------------------------------------------------ clean plate


def test_clean_plate_size_and_exposure_mismatch_are_refused(exr_seq, tmp_path, capsys):
    light = 1.0 - 0.35 * np.arange(W, dtype=np.float32) / W  # make_plate's screen without the subject
    screen = np.ascontiguousarray(np.broadcast_to(SCREEN * light[:, None], (H, W, 3)))
    small = write_plate(tmp_path / "small.exr", screen[: H // 2])
    rc = run(exr_seq / "plate.####.exr", "-o", tmp_path / "o" / "k.####.exr", "--clean-plate", small)
    assert rc == 3
    lines = errors(capsys)
    assert len(lines) == 1 and "small.exr" in lines[0] and "clean plate is 104x36" in lines[0], lines
    dark = write_plate(tmp_path / "dark.exr", screen * 0.2)
    rc = run(exr_seq / "plate.####.exr", "-o", tmp_path / "o" / "k.####.exr", "--clean-plate", dark)
    assert rc == 3
    lines = errors(capsys)
    assert len(lines) == 1 and "dark.exr" in lines[0] and "+2.3 stops" in lines[0], lines
    good = write_plate(tmp_path / "good.png", screen)  # another format and colour space works
    assert run(exr_seq / "plate.####.exr", "-o", tmp_path / "o" / "k.####.exr", "--clean-plate", good) == 0


def test_exposure_check_refuses_a_plate_of_another_screen():
    plate = make_plate(H, W)
    blue = np.broadcast_to(np.array([0.05, 0.1, 0.4], np.float32), plate.shape).copy()
    with pytest.raises(InputError, match="matches none"):
        check_exposure(plate, blue, "blue.exr")


def _green_plates(n: int, h: int = 128, w: int = 192) -> list:
    from gsrender.training.synth.generator import generate_plate

    plates, seed = [], 2000
    while len(plates) < n:
        p = generate_plate(seed, h, w)
        seed += 1
        med = np.median(p.screen.reshape(-1, 3), axis=0)
        if med[1] > med[2]:  # the shipped network keys green screens only (models/README.md)
            plates.append(p)
    return plates


def test_clean_plate_lowers_the_error_on_uneven_screens():
    """Classic: alpha SAD with the clean plate as guide. Network: premultiplied SAD (unmix with it)."""
    from gsrender.training.synth.generator import generate_clean

    plates = _green_plates(6)
    classic = create_backend(keyer="classic")
    sad = {False: 0.0, True: 0.0}
    for p in plates:
        for use in sad:
            k = key_frame(p.plate, classic, despill_strength=0.0,
                          inputs=FrameInputs(clean_plate=p.screen) if use else None)  # fmt: skip
            sad[use] += float(np.abs(k.alpha - p.alpha).sum())
    assert sad[True] < 0.95 * sad[False], sad
    neural = create_backend("onnxruntime", threads=1)
    err = {False: 0.0, True: 0.0}
    seeds = []
    for seed in range(2000, 2040):
        if len(seeds) == 6:
            break
        c = generate_clean(seed, 128, 192)
        med = np.median(c.screen.reshape(-1, 3), axis=0)
        if med[1] > med[2]:
            seeds.append((seed, c))
    from gsrender.training.synth.generator import generate_plate

    for seed, c in seeds:
        p = generate_plate(seed, 128, 192)
        for use in err:
            k = key_frame(p.plate, neural, despill_strength=0.0,
                          inputs=FrameInputs(clean_plate=p.screen) if use else None)  # fmt: skip
            err[use] += float(np.abs(k.premult - c.alpha[..., None] * c.fg_spill).sum())
    assert err[True] < err[False], err


def test_the_classic_keyer_takes_the_clean_plate_as_its_guide_the_shipped_network_does_not():
    plate = make_plate(H, W)
    clean = np.broadcast_to(np.array([0.07, 0.42, 0.09], np.float32), plate.shape).copy()
    classic = create_backend(keyer="classic")
    neural = create_backend("onnxruntime", threads=1)
    f = prepare_frame(plate, None, 1, FrameInputs(clean_plate=clean), classic.info.clean_plate_guide)
    assert isinstance(f.screen, CleanPlateScreen)
    np.testing.assert_allclose(f.screen_enc[:, 5, 5], f.screen_enc[:, 60, 90])  # the flat clean plate
    f = prepare_frame(plate, None, 8, FrameInputs(clean_plate=clean), neural.info.clean_plate_guide)
    assert not isinstance(f.screen, CleanPlateScreen) and f.clean_plate is not None


def test_exposure_check_accepts_true_clean_plates_and_refuses_them_a_stop_off():
    """Synthetic plates (noise, compression, green and blue screens) with their exact clean screen."""
    from gsrender.training.synth.generator import generate_plate

    for seed in range(3000, 3008):
        p = generate_plate(seed, 128, 192)
        check_exposure(p.plate, p.screen, "clean.exr")
        for factor in (0.4, 2.5):
            with pytest.raises(InputError, match="stops"):
                check_exposure(p.plate, p.screen * factor, "clean.exr")


@pytest.mark.parametrize("keyer", ["neural", "classic"])
def test_inputs_do_not_depend_on_the_tile_size(exr_seq, tmp_path, keyer):
    garbage, core = boxes()
    light = 1.0 - 0.35 * np.arange(W, dtype=np.float32) / W
    clean = np.ascontiguousarray(np.broadcast_to(SCREEN * light[:, None], (H, W, 3)))
    inputs = [
        *("--garbage-matte", write_matte(tmp_path / "g.exr", garbage)),
        *("--core-matte", write_matte(tmp_path / "c.exr", core)),
        *("--clean-plate", write_plate(tmp_path / "clean.exr", clean)),
    ]
    outs = []
    for tile in (0, 32):
        out = tmp_path / f"t{tile}.exr"
        args = [exr_seq / "plate.1001.exr", "-o", out, "--keyer", keyer, "--exr-dtype", "float"]
        assert run(*args, "--tile", tile, *inputs) == 0
        outs.append(read_rgba(out))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-4)
