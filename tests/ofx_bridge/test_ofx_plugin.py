"""The GsKey OpenFX bundle, loaded by the project's own ctypes host and compared with the CLI.

Every pixel test renders through the real binary: describe, create an instance, set
parameters, fetch images with their own bounds and row strides, render a window, and
compare with `gsrender` on the same frame (a float EXR, CLI output EXR float).
"""

from __future__ import annotations

import os
import plistlib
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from gsrender.cli.render import main as cli_main
from gsrender.engine.despot import DEFAULT_SIZE as DESPOT_DEFAULT
from gsrender.engine.despot import MAX_SIZE as DESPOT_MAX
from gsrender.engine.encoding import srgb_oetf
from gsrender.engine.image_write import write_frame
from gsrender.ofx_bridge import protocol
from tests.conftest import make_plate
from tests.ofx_bridge.conftest import ROOT, WORKER_CMD, new_socket, stop_worker, wait_gone
from tests.ofx_bridge.ofx_host import Effect, Image, OfxTestHost

FILTER = "OfxImageEffectContextFilter"
GENERAL = "OfxImageEffectContextGeneral"
H, W = 56, 88
ATOL = 1e-4

PARAMS = {
    "keyer": "OfxParamTypeChoice",
    "model": "OfxParamTypeString",
    "backend": "OfxParamTypeChoice",
    "despill": "OfxParamTypeDouble",
    "despot": "OfxParamTypeInteger",
    "output": "OfxParamTypeChoice",
    "compositeColour": "OfxParamTypeRGB",
    "screenColourOverride": "OfxParamTypeBoolean",
    "screenColour": "OfxParamTypeRGB",
    "colourspace": "OfxParamTypeChoice",
    "colourspaceName": "OfxParamTypeString",
}
OUTPUT = {"premultiplied": 0, "straight": 1, "matte": 2, "composite": 3}


# ---------------------------------------------------------------- helpers


def read_rgba(path: Path) -> np.ndarray:
    cfg = oiio.ImageSpec()
    cfg.attribute("oiio:UnassociatedAlpha", 1)
    buf = oiio.ImageBuf(str(path), 0, 0, cfg)
    return np.asarray(buf.get_pixels(oiio.FLOAT), np.float32)


def cli_key(tmp_path: Path, plate: np.ndarray, *args: str, name: str = "plate") -> np.ndarray:
    """The CLI on a linear float EXR of the plate; returns its RGBA output (float EXR)."""
    src = tmp_path / f"{name}.exr"
    if not src.exists():
        write_frame(src, plate, ["R", "G", "B"], None, dtype="float")
    out = tmp_path / f"{name}_key_{abs(hash(args))}.exr"
    assert cli_main([str(src), "-o", str(out), "--exr-dtype", "float", "-q", *args]) == 0
    return read_rgba(out)


def instance(host: OfxTestHost, context: str = FILTER) -> Effect:
    assert host.describe() == 0
    status, ctx = host.describe_in_context(context)
    assert status == 0
    status, inst = host.create_instance(ctx, context)
    assert status == 0
    return inst


def attach_source(
    inst: Effect,
    plate: np.ndarray,
    *,
    dtype=np.float32,
    channels: int = 4,
    pad: int = 48,
    negative_rows: bool = False,
    origin: tuple[int, int] = (0, 0),
) -> Image:
    """The plate as the host's Source image (bottom-up rows, padded stride)."""
    h, w, _ = plate.shape
    ox, oy = origin
    img = Image.allocate((ox, oy, ox + w, oy + h), channels, dtype, pad, negative_rows)
    px = img.top_down()
    if dtype == np.float32:
        px[..., :3] = plate
    else:
        scale = np.iinfo(dtype).max
        px[..., :3] = np.clip(np.rint(plate * scale), 0, scale).astype(dtype)
    if channels == 4:
        px[..., 3] = 1 if dtype == np.float32 else np.iinfo(dtype).max
    clip = inst.clips["Source"]
    clip.image, clip.rod = img, (float(ox), float(oy), float(ox + w), float(oy + h))
    return img


def attach_output(
    inst: Effect, bounds: tuple[int, int, int, int], *, dtype=np.float32, pad: int = 32
) -> Image:
    img = Image.allocate(bounds, 4, dtype, pad)
    img.buffer[:] = 0xAB  # garbage: every pixel of the window must be written
    inst.clips["Output"].image = img
    return img


def window_of(full_top_down: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """The part of a top-down frame that an OFX window (x1, y1, x2, y2; y up) covers, top-down."""
    x1, y1, x2, y2 = window
    h = full_top_down.shape[0]
    return full_top_down[h - y2 : h - y1, x1:x2]


def worker_stats(sock: Path) -> dict:
    return protocol.request(sock, {"op": "stats"})


# ---------------------------------------------------------------- build and describe


def test_bundle_layout_and_install(ofx_build: Path, ofx_binary: Path, tmp_path: Path):
    info = plistlib.loads((ofx_build / "GsKey.ofx.bundle" / "Contents" / "Info.plist").read_bytes())
    assert info["CFBundleExecutable"] == "GsKey.ofx"
    prefix = tmp_path / "OFX" / "Plugins"
    subprocess.run(
        ["cmake", "--install", str(ofx_build), "--prefix", str(prefix)], check=True, capture_output=True
    )
    assert (prefix / "GsKey.ofx.bundle" / "Contents" / "Linux-x86-64" / "GsKey.ofx").is_file()
    assert (prefix / "GsKey.ofx.bundle" / "Contents" / "Info.plist").is_file()
    # the default install prefix is the standard OFX folder
    cache = (ofx_build / "CMakeCache.txt").read_text()
    assert "CMAKE_INSTALL_PREFIX:PATH=/usr/OFX/Plugins" in cache
    # only the two OFX entry points are exported
    nm = subprocess.run(["nm", "-D", "--defined-only", str(ofx_binary)], capture_output=True, text=True)
    if nm.returncode == 0:
        exported = {line.split()[-1] for line in nm.stdout.splitlines() if " T " in line}
        assert exported == {"OfxGetNumberOfPlugins", "OfxGetPlugin"}


def test_load_describe_and_describe_in_context(host: OfxTestHost):
    assert host.plugin_count == 1
    assert host.plugin.pluginApi == b"OfxImageEffectPluginAPI"
    assert host.plugin.apiVersion == 1
    assert host.plugin.pluginIdentifier == b"org.gsrender.GsKey"
    assert {s for s, _ in host.fetched} >= {
        "OfxPropertySuite",
        "OfxImageEffectSuite",
        "OfxParameterSuite",
        "OfxMemorySuite",
        "OfxMultiThreadSuite",
        "OfxMessageSuite",
    }
    assert host.describe() == 0
    d = host.descriptor.props.values
    assert d["OfxPropLabel"] == ["GsKey"]
    assert d["OfxImageEffectPropSupportedContexts"] == [FILTER, GENERAL]
    assert d["OfxImageEffectPropSupportedPixelDepths"] == [
        "OfxBitDepthFloat",
        "OfxBitDepthShort",
        "OfxBitDepthByte",
    ]
    assert d["OfxImageEffectPropSupportsTiles"] == [1]
    assert d["OfxImageEffectPluginRenderThreadSafety"] == ["OfxImageEffectRenderFullySafe"]
    for context in (FILTER, GENERAL):
        status, ctx = host.describe_in_context(context)
        assert status == 0
        extra = {"GarbageMatte", "CoreMatte", "CleanPlate"} if context == GENERAL else set()
        assert set(ctx.clips) == {"Source", "Output"} | extra
        for name in extra:
            assert ctx.clips[name].props.values["OfxImageClipPropOptional"] == [1]
        src = ctx.clips["Source"].props.values
        assert src["OfxImageEffectPropSupportedComponents"] == [
            "OfxImageComponentRGBA",
            "OfxImageComponentRGB",
        ]
        assert src["OfxImageEffectPropSupportsTiles"] == [0]  # the keyer needs the whole frame
        assert ctx.clips["Output"].props.values["OfxImageEffectPropSupportedComponents"] == [
            "OfxImageComponentRGBA"
        ]
        general_only = {"invertGarbage": "OfxParamTypeBoolean"} if context == GENERAL else {}
        assert {n: p.kind for n, p in ctx.params.items()} == PARAMS | general_only
        options = ctx.params["output"].props.values["OfxParamPropChoiceOption"]
        assert len(options) == 4 and options[0] == "Premultiplied"
        assert ctx.params["despill"].props.values["OfxParamPropDefault"] == [1.0]
        despot = ctx.params["despot"].props.values
        assert despot["OfxParamPropDefault"] == [DESPOT_DEFAULT]  # the CLI's, so the keys agree
        assert despot["OfxParamPropMin"] == [0] and despot["OfxParamPropMax"] == [DESPOT_MAX]


def test_instance_lifecycle_uses_host_memory_and_updates_enabled_state(host: OfxTestHost):
    inst = instance(host)
    assert inst.props.get("OfxPropInstanceData")  # allocated through the host's memory suite
    assert len(host._memory) == 1
    assert inst.params["screenColour"].props.values["OfxParamPropEnabled"] == [0]
    assert host.set_param(inst, "screenColourOverride", 1) == 0
    assert inst.params["screenColour"].props.values["OfxParamPropEnabled"] == [1]
    assert host.destroy_instance(inst) == 0
    assert len(host._memory) == 0


# ---------------------------------------------------------------- pixels equal the CLI


def test_render_window_with_padded_rows_matches_cli(host: OfxTestHost, tmp_path: Path, worker_env: Path):
    plate = make_plate(H, W, seed=3, hdr=True)
    expected = cli_key(tmp_path, plate, "--despill", "0.6")

    inst = instance(host)
    host.set_param(inst, "despill", 0.6)
    src = attach_source(inst, plate, pad=52)
    window = (13, 9, 61, 40)  # smaller than the frame, off every edge
    out = attach_output(inst, window, pad=36)
    assert src.row_bytes > W * 16 and out.row_bytes > (61 - 13) * 16

    status, roi = host.regions_of_interest(inst, (13.0, 9.0, 61.0, 40.0))
    assert status == 0 and roi["OfxImageClipPropRoI_Source"] == [0.0, 0.0, float(W), float(H)]
    status, prefs = host.clip_preferences(inst)
    assert status == 0 and prefs["OfxImageEffectPropPreMultiplication"] == ["OfxImageAlphaPremultiplied"]

    assert host.render(inst, window) == 0, host.messages
    got = out.top_down()
    np.testing.assert_allclose(got, window_of(expected, window), atol=ATOL)
    assert got[..., :3].max() > 1.0  # the HDR highlight survived, as in the CLI's EXR
    pad = out.buffer[: out.row_bytes * (40 - 9)].reshape(40 - 9, out.row_bytes)[:, (61 - 13) * 16 :]
    assert (pad == 0xAB).all()  # nothing written past the row
    assert host.messages == [] and host.images_out == 0


def test_despot_reaches_the_worker(host: OfxTestHost, tmp_path: Path):
    """A yellow tracking marker: keyed out by Despot 20, kept with Despot 0, as the CLI does."""
    plate = make_plate(H, W, seed=5)
    plate[8:11, 66:81] = plate[3:18, 72:75] = (0.65, 0.5, 0.05)  # a cross on the screen, top right
    kept = cli_key(tmp_path, plate, "--despot", "0")
    despotted = cli_key(tmp_path, plate, "--despot", "20")
    assert kept[9, 73, 3] > 0.9 and despotted[9, 73, 3] == 0.0
    inst = instance(host)
    attach_source(inst, plate, pad=16)
    window = (0, 0, W, H)
    for value, want in ((20, despotted), (0, kept)):
        host.set_param(inst, "despot", value)
        out = attach_output(inst, window, pad=8)
        assert host.render(inst, window) == 0, host.messages
        np.testing.assert_allclose(out.top_down(), want, atol=ATOL, err_msg=f"despot {value}")


def test_despot_follows_the_render_scale(host: OfxTestHost, tmp_path: Path):
    """At a proxy scale of 0.5 the markers are half their size, and so is the despot: Despot 20
    keys this frame as the CLI's --despot 10 does (the 15 px cross stays)."""
    plate = make_plate(H, W, seed=5)
    plate[8:11, 66:81] = plate[3:18, 72:75] = (0.65, 0.5, 0.05)
    want = cli_key(tmp_path, plate, "--despot", "10")
    assert want[9, 73, 3] > 0.9
    inst = instance(host)
    attach_source(inst, plate, pad=16)
    inst.clips["Source"].rod = (0.0, 0.0, 2.0 * W, 2.0 * H)  # the full-resolution frame, canonical
    host.asks_roi = False
    host.render_scale = [0.5, 0.5]
    host.set_param(inst, "despot", 20)
    out = attach_output(inst, (0, 0, W, H), pad=8)
    assert host.render(inst, (0, 0, W, H)) == 0, host.messages
    np.testing.assert_allclose(out.top_down(), want, atol=ATOL)


def test_output_modes_and_general_context(host: OfxTestHost, tmp_path: Path):
    plate = make_plate(H, W, seed=5)
    premult = cli_key(tmp_path, plate)
    straight = cli_key(tmp_path, plate, "--alpha-mode", "straight")
    inst = instance(host, GENERAL)
    attach_source(inst, plate, pad=16)
    window = (0, 0, W, H)
    a = premult[..., 3:4]
    colour = (0.2, 0.3, 0.9)
    expected = {
        "premultiplied": premult,
        "straight": straight,
        "matte": np.repeat(a, 4, axis=2),
        "composite": np.concatenate(
            [premult[..., :3] + (1 - a) * np.float32(colour), np.ones_like(a)], axis=2
        ),
    }
    host.set_param(inst, "compositeColour", colour)
    for mode, want in expected.items():
        host.set_param(inst, "output", OUTPUT[mode])
        out = attach_output(inst, window, pad=8)
        assert host.render(inst, window) == 0, (mode, host.messages)
        np.testing.assert_allclose(out.top_down(), want, atol=ATOL, err_msg=mode)
    _, prefs = host.clip_preferences(inst)
    assert prefs["OfxImageEffectPropPreMultiplication"] == ["OfxImageOpaque"]  # composite


def test_straight_matches_cli_when_the_host_rounds_differently(host: OfxTestHost, tmp_path: Path):
    """An independent host matched the CLI in every mode but Straight, where 4 of 187,500
    pixels were up to 1.6e-3 off: its pixels differed from the file by float rounding, alpha
    by ~1e-7, and the division by alpha near 1e-3 amplified that. Here the host hands the
    plugin the plate one float step off; Straight must still match the CLI within 1e-4."""
    plate = make_plate(250, 750, seed=3)
    want = cli_key(tmp_path, plate, "--alpha-mode", "straight")
    inst = instance(host)
    attach_source(inst, np.nextafter(plate, np.float32(2)))
    host.set_param(inst, "output", OUTPUT["straight"])
    window = (0, 0, 750, 250)
    out = attach_output(inst, window)
    assert host.render(inst, window) == 0, host.messages
    got = out.top_down()
    assert np.abs(got[..., 3] - want[..., 3]).max() > 1e-7  # alpha does differ: the test is real
    np.testing.assert_allclose(got, want, atol=ATOL)


def test_source_smaller_than_its_rod_is_fetched_whole(host: OfxTestHost, tmp_path: Path):
    """A host that never asks for regions of interest and hands over only the render window's
    part unless the plugin names a region: the plugin names the clip's whole region of
    definition, so the key is the full frame's."""
    plate = make_plate(H, W, seed=8)
    inst = instance(host)
    attach_source(inst, plate)
    window = (10, 8, 60, 40)
    src = inst.clips["Source"]
    host.asks_roi, src.honours_region = False, True
    out = attach_output(inst, window)
    assert host.render(inst, window) == 0, host.messages
    assert src.regions[-1] == (0.0, 0.0, float(W), float(H))
    np.testing.assert_allclose(out.top_down(), window_of(cli_key(tmp_path, plate), window), atol=ATOL)
    assert host.messages == []


def test_source_the_host_keeps_cropped_is_keyed_with_a_warning(host: OfxTestHost, tmp_path: Path):
    """A host that crops whatever region is named: the key changes (by up to 0.45 in an
    independent host), so the plugin says so through the message suite, and the warning
    goes with the next render that gets the whole frame."""
    plate = make_plate(H, W, seed=8)
    inst = instance(host)
    attach_source(inst, plate)
    window = (10, 8, 60, 40)
    src = inst.clips["Source"]
    src.limit = window  # whatever is asked
    out = attach_output(inst, window)
    assert host.render(inst, window) == 0, host.messages
    (msg,) = host.messages
    assert msg.kind == "OfxMessageWarning" and msg.id == "gsrender.partialInput" and msg.persistent
    assert "only part of the Source frame" in msg.text and f"0,0-{W},{H}" in msg.text
    assert np.isfinite(out.top_down()).all()
    src.limit = None  # the host now hands over the whole frame
    assert host.render(inst, window) == 0
    assert host.messages == []


def test_screen_colour_and_classic_keyer_parameters_match_cli(host: OfxTestHost, tmp_path: Path):
    plate = make_plate(H, W, seed=7)
    inst = instance(host)
    attach_source(inst, plate)
    window = (5, 20, 70, 50)

    host.set_param(inst, "screenColourOverride", 1)
    host.set_param(inst, "screenColour", (0.1, 0.5, 0.1))
    out = attach_output(inst, window)
    assert host.render(inst, window) == 0, host.messages
    expected = cli_key(tmp_path, plate, "--screen-colour", "0.1,0.5,0.1")
    np.testing.assert_allclose(out.top_down(), window_of(expected, window), atol=ATOL)

    host.set_param(inst, "screenColourOverride", 0)
    host.set_param(inst, "keyer", 1)  # classic
    out = attach_output(inst, window)
    assert host.render(inst, window) == 0, host.messages
    expected = cli_key(tmp_path, plate, "--keyer", "classic")
    np.testing.assert_allclose(out.top_down(), window_of(expected, window), atol=ATOL)


def test_rgb_source_off_origin_and_window_beyond_it(host: OfxTestHost, tmp_path: Path):
    """Bounds need not start at 0, and a window may reach past the source: zeros there."""
    plate = make_plate(H, W, seed=4)
    expected = cli_key(tmp_path, plate)
    inst = instance(host)
    ox, oy = 30, -12
    attach_source(inst, plate, channels=3, origin=(ox, oy), pad=12)
    window = (ox - 5, oy - 4, ox + 40, oy + 25)
    out = attach_output(inst, window, pad=20)
    status, roi = host.regions_of_interest(inst, tuple(float(v) for v in window))
    assert status == 0 and roi["OfxImageClipPropRoI_Source"] == [ox, oy, ox + W, oy + H]
    assert host.render(inst, window) == 0, host.messages
    got = out.top_down()  # rows y = oy+24 .. oy-4, columns x = ox-5 .. ox+39
    np.testing.assert_array_equal(got[-4:], 0)  # below the source
    np.testing.assert_array_equal(got[:, :5], 0)  # left of it
    np.testing.assert_allclose(got[:-4, 5:], window_of(expected, (0, 0, 40, 25)), atol=ATOL)


def test_tall_frames_are_copied_on_the_host_threads(host: OfxTestHost, tmp_path: Path):
    """From 256 rows up, packing and unpacking run through the host's multi-thread suite."""
    plate = make_plate(260, 40, seed=6)
    inst = instance(host)
    attach_source(inst, plate, pad=4)
    out = attach_output(inst, (0, 0, 40, 260), pad=4)
    assert host.render(inst, (0, 0, 40, 260)) == 0, host.messages
    assert host.multithread_calls == 2  # pack and unpack
    np.testing.assert_allclose(out.top_down(), cli_key(tmp_path, plate), atol=ATOL)


def test_8bit_host_images_match_cli_png(host: OfxTestHost, tmp_path: Path):
    """8-bit images are sRGB (the CLI's rule for PNG); straight output equals the CLI's PNG."""
    plate = make_plate(H, W, seed=9)
    src_png = tmp_path / "plate.png"
    write_frame(src_png, srgb_oetf(plate), ["R", "G", "B"], None)  # what the host holds, 8-bit sRGB
    enc = read_rgba(src_png)[..., :3]
    out_png = tmp_path / "key.png"
    assert cli_main([str(src_png), "-o", str(out_png), "-q"]) == 0
    expected = read_rgba(out_png)  # straight sRGB RGBA

    inst = instance(host)
    attach_source(inst, enc, dtype=np.uint8, negative_rows=True)  # top-down storage, negative row bytes
    host.set_param(inst, "output", OUTPUT["straight"])
    window = (10, 10, 80, 50)
    out = attach_output(inst, window, dtype=np.uint8, pad=5)
    assert host.render(inst, window) == 0, host.messages
    got = out.top_down().astype(np.float32) / 255
    np.testing.assert_allclose(got, window_of(expected, window), atol=1 / 255 + 1e-6)


def render_at_once(host: OfxTestHost, inst: Effect, windows: list[tuple[int, int, int, int]]) -> list[int]:
    """Render the windows on one thread each, released together as a host's render threads are;
    the status of each render, in the order they finished."""
    results: list[int] = []
    barrier = threading.Barrier(len(windows))

    def render(window):
        barrier.wait()
        results.append(host.render(inst, window))

    threads = [threading.Thread(target=render, args=(w,)) for w in windows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_render_windows_share_one_inference(host: OfxTestHost, tmp_path: Path, worker_env: Path):
    """A host rendering windows of one frame on several threads gets one inference, right pixels."""
    plate = make_plate(H, W, seed=11)
    expected = cli_key(tmp_path, plate)
    inst = instance(host)
    attach_source(inst, make_plate(16, 16, seed=12))
    attach_output(inst, (0, 0, 1, 1))
    assert host.render(inst, (0, 0, 1, 1)) == 0  # the worker is up before the race starts
    attach_source(inst, plate)
    out = attach_output(inst, (0, 0, W, H), pad=24)  # one output image, disjoint windows
    before = worker_stats(worker_env)
    windows = [(0, 0, W, H // 2), (0, H // 2, W // 2, H), (W // 2, H // 2, W, H)]
    results = render_at_once(host, inst, windows)
    assert results == [0, 0, 0], host.messages
    np.testing.assert_allclose(out.top_down(), expected, atol=ATOL)
    after = worker_stats(worker_env)
    assert after["renders"] - before["renders"] == 3
    assert after["keyed"] - before["keyed"] == 1  # one inference for the three windows
    assert after["cache_hits"] - before["cache_hits"] == 2
    assert host.images_out == 0


# ---------------------------------------------------------------- worker failures


@pytest.fixture
def private_worker(monkeypatch):
    """A worker of this test's own, so killing it does not disturb the shared one."""
    sock = new_socket()
    monkeypatch.setenv("GSRENDER_SOCKET", str(sock))
    yield sock
    stop_worker(sock)


def test_killed_worker_is_restarted(host: OfxTestHost, tmp_path: Path, private_worker: Path):
    """The worker crashing between renders (SIGKILL) is survived: the next render restarts it."""
    plate = make_plate(H, W, seed=13)
    inst = instance(host)
    attach_source(inst, plate)
    window = (4, 4, 60, 40)
    out = attach_output(inst, window)
    assert host.render(inst, window) == 0, host.messages
    first = out.top_down().copy()
    pid = worker_stats(private_worker)["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)

    out = attach_output(inst, window)
    assert host.render(inst, window) == 0, host.messages
    np.testing.assert_array_equal(out.top_down(), first)
    assert worker_stats(private_worker)["pid"] != pid
    np.testing.assert_allclose(first, window_of(cli_key(tmp_path, plate), window), atol=ATOL)


def _crashy(marker: Path, mode: str) -> str:
    return (
        f"{sys.executable} {ROOT / 'tests' / 'ofx_bridge' / 'crashy_worker.py'} {marker} {mode} {WORKER_CMD}"
    )


def test_worker_dying_mid_render_is_restarted_once(host, tmp_path, private_worker, monkeypatch):
    marker = tmp_path / "starts"
    monkeypatch.setenv("GSRENDER_WORKER", _crashy(marker, "once"))
    plate = make_plate(H, W, seed=13)
    inst = instance(host)
    attach_source(inst, plate)
    window = (0, 0, W, H)
    out = attach_output(inst, window)
    assert host.render(inst, window) == 0, host.messages
    assert marker.read_text().count("start") == 2  # crashed mid-request, then restarted once
    np.testing.assert_allclose(out.top_down(), cli_key(tmp_path, plate), atol=ATOL)
    assert host.messages == []


def test_worker_dying_twice_gives_a_clear_error(host, tmp_path, private_worker, monkeypatch):
    marker = tmp_path / "starts"
    monkeypatch.setenv("GSRENDER_WORKER", _crashy(marker, "always"))
    inst = instance(host)
    attach_source(inst, make_plate(H, W, seed=1))
    out = attach_output(inst, (0, 0, W, H))
    assert host.render(inst, (0, 0, W, H)) == 1  # kOfxStatFailed
    assert marker.read_text().count("start") == 2  # one restart, no more
    errors = [m for m in host.messages if m.kind == "OfxMessageError"]
    assert (
        len(errors) == 1
        and "stopped while rendering" in errors[0].text
        and "again after a restart" in errors[0].text
    )
    assert (out.top_down() == 0).all()  # no garbage left in the window
    assert host.images_out == 0


def test_worker_that_cannot_start_is_reported(ofx_binary, tmp_path, private_worker, monkeypatch):
    monkeypatch.setenv("GSRENDER_WORKER", "/nonexistent/bin/gsrender serve")
    host = OfxTestHost(ofx_binary, message_suite=1)  # a host with only the v1 message suite
    assert host.load() == 0
    inst = instance(host)
    attach_source(inst, make_plate(24, 32))
    attach_output(inst, (0, 0, 32, 24))
    assert host.render(inst, (0, 0, 32, 24)) == 1
    (msg,) = host.messages
    assert msg.kind == "OfxMessageError" and not msg.persistent
    assert "exited during start-up" in msg.text and "GSRENDER_WORKER" in msg.text
    assert "not found" in msg.text  # the last line of the worker log says why
    assert host.errors == []


def test_bad_settings_are_reported_through_the_message_suite(host: OfxTestHost):
    inst = instance(host)
    attach_source(inst, make_plate(24, 32))
    attach_output(inst, (0, 0, 32, 24))
    host.set_param(inst, "colourspace", 7)  # Other, with no name
    assert host.render(inst, (0, 0, 32, 24)) == 1
    assert "Colour Space Name is empty" in host.messages[-1].text
    host.set_param(inst, "colourspaceName", "no such space")
    assert host.render(inst, (0, 0, 32, 24)) == 1
    assert "unknown colour space 'no such space'" in host.messages[-1].text
    assert host.messages[-1].persistent
    host.set_param(inst, "colourspace", 0)
    assert host.render(inst, (0, 0, 32, 24)) == 0
    assert host.messages == []  # a good render clears the persistent error
