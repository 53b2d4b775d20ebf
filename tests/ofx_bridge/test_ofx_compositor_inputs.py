"""The plugin's optional GarbageMatte, CoreMatte and CleanPlate clips against the CLI.

Each clip connected renders what `gsrender --garbage-matte / --core-matte / --clean-plate` renders
on the same frame and files (float EXR, within 1e-4); unconnected, what the CLI renders without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gsrender.engine.image_write import write_frame
from gsrender.ofx_bridge import protocol
from tests.conftest import SCREEN, make_plate
from tests.ofx_bridge.ofx_host import Image, OfxTestHost
from tests.ofx_bridge.test_ofx_plugin import (
    GENERAL,
    attach_output,
    attach_source,
    cli_key,
    instance,
    worker_stats,
)

H, W = 56, 88
ATOL = 1e-4


def mattes() -> dict[str, np.ndarray]:
    garbage = np.zeros((H, W), np.float32)
    garbage[:, :16] = 1.0
    garbage[30:40, 30:60] = 0.4  # fractional, over the disc: the key must change
    core = np.zeros((H, W), np.float32)
    core[20:44, 40:70] = 1.0  # the disc and screen beside it
    light = 1.0 - 0.35 * np.arange(W, dtype=np.float32) / W  # make_plate's screen, no subject
    clean = np.ascontiguousarray(np.broadcast_to(SCREEN * light[:, None], (H, W, 3)))
    return {"GarbageMatte": garbage, "CoreMatte": core, "CleanPlate": clean}


OPTION = {"GarbageMatte": "--garbage-matte", "CoreMatte": "--core-matte", "CleanPlate": "--clean-plate"}


def attach_clip(inst, name: str, pixels: np.ndarray, channels: int) -> None:
    """A host image on an optional clip, and the clip marked connected (as a host does on wiring)."""
    img = Image.allocate((0, 0, W, H), channels, np.float32, pad=20)
    px = img.top_down()
    if pixels.ndim == 3:
        px[..., :3] = pixels
        if channels == 4:
            px[..., 3] = 1.0
    elif channels == 1:
        px[..., 0] = pixels
    else:  # a matte in the alpha of an RGBA image whose colour is noise (must be ignored)
        px[..., :3] = np.random.default_rng(2).random((H, W, 3))
        px[..., 3] = pixels
    clip = inst.clips[name]
    clip.image, clip.rod = img, (0.0, 0.0, float(W), float(H))
    clip.props.set("OfxImageClipPropConnected", 0, 1)


def write_input(tmp_path: Path, name: str, pixels: np.ndarray) -> Path:
    path = tmp_path / f"{name}.exr"
    if pixels.ndim == 2:
        write_frame(path, pixels[..., None], ["Y"], None, dtype="float")
    else:
        write_frame(path, pixels, ["R", "G", "B"], None, dtype="float")
    return path


@pytest.mark.parametrize(
    ("clip", "channels", "keyer"),
    [
        ("GarbageMatte", 1, "neural"),
        ("CoreMatte", 4, "neural"),
        ("CleanPlate", 3, "neural"),
        ("CleanPlate", 4, "classic"),
    ],
)
def test_each_optional_clip_connected_and_unconnected_matches_the_cli(
    host: OfxTestHost, tmp_path: Path, clip: str, channels: int, keyer: str
):
    plate = make_plate(H, W, seed=4)
    pixels = mattes()[clip]
    path = write_input(tmp_path, clip, pixels)
    keyer_args = ("--keyer", keyer)
    with_it = cli_key(tmp_path, plate, *keyer_args, OPTION[clip], str(path))
    without = cli_key(tmp_path, plate, *keyer_args)
    assert np.abs(with_it - without).max() > 1e-3  # the input changes the key: the comparison is real

    inst = instance(host, GENERAL)
    host.set_param(inst, "keyer", 0 if keyer == "neural" else 1)
    attach_source(inst, plate)
    window = (0, 0, W, H)
    out = attach_output(inst, window)
    assert host.render(inst, window) == 0, host.messages
    np.testing.assert_allclose(out.top_down(), without, atol=ATOL)

    attach_clip(inst, clip, pixels, channels)
    out = attach_output(inst, window)
    assert host.render(inst, window) == 0, host.messages
    np.testing.assert_allclose(out.top_down(), with_it, atol=ATOL)
    assert host.images_out == 0  # every clip image released


def test_all_three_with_inverted_garbage_match_the_cli(host: OfxTestHost, tmp_path: Path):
    plate = make_plate(H, W, seed=6)
    m = mattes()
    inverted = 1.0 - m["GarbageMatte"]
    paths = {n: write_input(tmp_path, n, inverted if n == "GarbageMatte" else p) for n, p in m.items()}
    args = [a for n in m for a in (OPTION[n], str(paths[n]))]
    want = cli_key(tmp_path, plate, *args, "--invert-garbage")
    inst = instance(host, GENERAL)
    host.set_param(inst, "invertGarbage", 1)
    attach_source(inst, plate)
    for name, pixels in m.items():
        attach_clip(inst, name, inverted if name == "GarbageMatte" else pixels, 1 if pixels.ndim == 2 else 3)
    window = (10, 5, 70, 50)
    out = attach_output(inst, window)
    assert host.render(inst, window) == 0, host.messages
    np.testing.assert_allclose(out.top_down(), want[H - 50 : H - 5, 10:70], atol=ATOL)
    assert np.all(out.top_down()[:, :6] == 0.0)  # under the garbage matte (x 10..15)


QUADRANTS = [(0, 0, W // 2, H // 2), (W // 2, 0, W, H // 2), (0, H // 2, W // 2, H), (W // 2, H // 2, W, H)]


@pytest.mark.parametrize(
    ("clips", "seed"),
    [
        (("GarbageMatte",), 41),
        (("CoreMatte",), 42),
        (("CleanPlate",), 43),
        (("GarbageMatte", "CoreMatte", "CleanPlate"), 44),
    ],
)
def test_windows_of_one_frame_with_optional_clips_cost_one_inference(
    host: OfxTestHost, tmp_path: Path, worker_env: Path, clips: tuple[str, ...], seed: int
):
    """The host crops every input to the regions of interest the plugin asks for: the plugin asks
    for the whole frame on each optional clip too, so four windows share one keyed frame, and
    together they are the CLI's frame with the same inputs."""
    plate = make_plate(H, W, seed=seed)  # a frame no other test keys: the worker's cache is cold
    m = mattes()
    args = [a for n in clips for a in (OPTION[n], str(write_input(tmp_path, n, m[n])))]
    want = cli_key(tmp_path, plate, *args)
    inst = instance(host, GENERAL)
    attach_source(inst, plate)
    for name in clips:
        attach_clip(inst, name, m[name], 1 if m[name].ndim == 2 else 3)
    status, roi = host.regions_of_interest(inst, (0.0, 0.0, W / 2, H / 2))
    assert status == 0
    for name in ("Source", *clips):
        assert roi[f"OfxImageClipPropRoI_{name}"] == [0.0, 0.0, float(W), float(H)], name
    out = attach_output(inst, (0, 0, W, H))
    before = worker_stats(worker_env)
    for window in QUADRANTS:
        assert host.render(inst, window) == 0, host.messages
    after = worker_stats(worker_env)
    assert after["renders"] - before["renders"] == len(QUADRANTS)
    keyed = after["keyed"] - before["keyed"]
    assert keyed == 1, f"{keyed} inferences for the {len(QUADRANTS)} windows of one frame"
    np.testing.assert_allclose(out.top_down(), want, atol=ATOL)
    assert host.messages == [] and host.images_out == 0


def test_an_optional_clip_the_host_hands_over_in_part_is_reported_once(host: OfxTestHost):
    """A host that crops a matte (and the Source) to the window whatever is asked: the render
    goes on, and one warning names every clip that came short; a matte whose own region of
    definition is smaller than the frame is whole as handed over, and is not reported."""
    plate = make_plate(H, W, seed=45)
    m = mattes()
    inst = instance(host, GENERAL)
    attach_source(inst, plate)
    attach_clip(inst, "GarbageMatte", m["GarbageMatte"], 1)
    attach_clip(inst, "CoreMatte", m["CoreMatte"], 1)
    core = inst.clips["CoreMatte"]  # a roto shape's bounding box: its region of definition
    core.image = core.image.crop((40, 12, 70, 36))
    core.rod = (40.0, 12.0, 70.0, 36.0)
    window = (10, 8, 60, 40)
    out = attach_output(inst, window)
    inst.clips["GarbageMatte"].limit = window
    assert host.render(inst, window) == 0, host.messages
    (msg,) = host.messages
    assert msg.kind == "OfxMessageWarning" and msg.persistent
    assert "only part of GarbageMatte (pixels 10,8-60,40 of 0,0-88,56)" in msg.text
    assert "Source" not in msg.text and "CoreMatte" not in msg.text
    assert np.isfinite(out.top_down()).all()

    inst.clips["Source"].limit = window
    assert host.render(inst, window) == 0, host.messages
    (msg,) = host.messages
    assert "only part of the Source frame (pixels 10,8-60,40 of 0,0-88,56) and of GarbageMatte (" in msg.text

    inst.clips["Source"].limit = inst.clips["GarbageMatte"].limit = None
    assert host.render(inst, window) == 0
    assert host.messages == []  # whole again: the warning is cleared


def test_a_clean_plate_of_the_wrong_exposure_is_reported(host: OfxTestHost):
    inst = instance(host, GENERAL)
    attach_source(inst, make_plate(H, W, seed=4))
    attach_clip(inst, "CleanPlate", mattes()["CleanPlate"] * 4.0, 3)
    out = attach_output(inst, (0, 0, W, H))
    assert host.render(inst, (0, 0, W, H)) != 0
    assert any("CleanPlate" in m.text and "stops" in m.text for m in host.messages), host.messages
    assert np.all(out.top_down() == 0.0)


def test_protocol_inputs_are_validated():
    assert protocol.extra_offsets({"garbage": 64, "clean_plate": 128}) == {"garbage": 64, "clean_plate": 128}
    assert protocol.extra_offsets(None) == {}
    with pytest.raises(ValueError, match="unknown inputs"):
        protocol.extra_offsets({"garbage_matte": 64})
    with pytest.raises(ValueError, match="whole number"):
        protocol.extra_offsets({"core": 1.5})
    with pytest.raises(ValueError, match="true or false"):
        protocol.Settings.from_json({"invert_garbage": 1})
