"""The worker (`gsrender serve`) and its wire format, in process: no plugin, no CMake."""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gsrender.engine.backends import create_backend
from gsrender.engine.keyer import key_frame
from gsrender.engine.output import OutputSettings, compose_output
from gsrender.ofx_bridge import protocol, worker
from gsrender.ofx_bridge.protocol import Settings
from tests.conftest import SCREEN, make_plate


@pytest.fixture
def sock_path(tmp_path_factory) -> Path:
    return Path(os.path.realpath(tmp_path_factory.mktemp("w"))) / "w.sock"


@contextlib.contextmanager
def running(path: Path, idle_timeout: float = 0.0):
    w = worker.Worker(path, worker.WarmKeyer(), idle_timeout)
    w.bind()
    t = threading.Thread(target=w.serve, daemon=True)
    t.start()
    try:
        yield w
    finally:
        w.stop()
        t.join(10)
        assert not t.is_alive()


def input_layout(width: int, height: int, inputs: tuple[str, ...]) -> tuple[dict[str, int], int]:
    """Offsets of the optional inputs after the frame, and of the answer after them (64-byte
    aligned), as the plugin lays them out."""
    offsets, off = {}, protocol.out_offset(width, height)
    for name in inputs:
        offsets[name] = off
        off += (width * height * protocol.EXTRA_INPUTS[name] * protocol.FLOAT_BYTES + 63) // 64 * 64
    return offsets, off


@contextlib.contextmanager
def shared(width: int, height: int, window: tuple[int, int, int, int], inputs: tuple[str, ...] = ()):
    """A shared-memory file as the plugin makes it: input frame, optional inputs, the window's answer."""
    x0, y0, x1, y1 = window
    out_off = input_layout(width, height, inputs)[1]
    size = out_off + (x1 - x0) * (y1 - y0) * 16
    name = f"gsrender-{os.getpid()}-{time.monotonic_ns()}-t"
    path = worker.SHM_DIR / name
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, size)
        mm = mmap.mmap(fd, size)
    finally:
        os.close(fd)
    try:
        yield "/" + name, mm, out_off
    finally:
        mm.close()
        path.unlink()


def render_request(name: str, w: int, h: int, window, out_off: int, settings: Settings) -> dict:
    return {
        "op": "render",
        "shm": name,
        "width": w,
        "height": h,
        "window": list(window),
        "in_offset": 0,
        "out_offset": out_off,
        "settings": settings.to_json(),
    }


def test_framing_round_trip_and_settings_validation():
    a, b = socket.socketpair()
    with a, b:
        protocol.send_message(a, {"op": "ping", "text": "ünïcode"})
        assert protocol.recv_message(b) == {"op": "ping", "text": "ünïcode"}
        a.sendall(protocol.HEADER.pack(protocol.MAX_MESSAGE + 1))
        with pytest.raises(protocol.ProtocolError):
            protocol.recv_message(b)
    assert protocol.encode({"ok": True}).endswith(b'{"ok":true}')  # what the C side looks for
    s = Settings.from_json({"output": "matte", "screen_colour": [0.1, 0.5, 0.1], "despill": 0.5})
    assert s.screen_colour == (0.1, 0.5, 0.1) and Settings.from_json(s.to_json()) == s
    with pytest.raises(ValueError, match="unknown output mode"):
        Settings.from_json({"output": "nope"})
    with pytest.raises(ValueError, match="three numbers"):
        Settings.from_json({"screen_colour": [1, 2]})


def test_default_socket_path_is_per_user(monkeypatch, tmp_path):
    monkeypatch.delenv("GSRENDER_SOCKET", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert protocol.default_socket_path() == tmp_path / "gsrender" / "worker.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.delenv("TMPDIR", raising=False)
    assert protocol.default_socket_path() == Path(f"/tmp/gsrender-{os.getuid()}/worker.sock")
    monkeypatch.setenv("GSRENDER_SOCKET", "/x/y.sock")
    assert protocol.default_socket_path() == Path("/x/y.sock")


def test_render_window_equals_the_engine_and_is_cached(sock_path):
    h, w = 40, 64
    plate = make_plate(h, w, seed=2)
    backend, _ = create_backend("auto")
    keyed = key_frame(plate, backend, despill_strength=0.5)
    full, _ = compose_output(keyed, Path("x.exr"), "lin_rec709", OutputSettings(alpha_mode="premultiplied"))
    window = (5, 7, 50, 33)
    with running(sock_path) as wk, shared(w, h, window) as (name, mm, out_off):
        np.frombuffer(mm, np.float32, count=h * w * 3)[:] = plate.ravel()
        settings = Settings(despill=0.5)
        for cached in (False, True):
            reply = protocol.request(sock_path, render_request(name, w, h, window, out_off, settings))
            assert reply["ok"] and reply["cached"] is cached
            got = np.frombuffer(mm, np.float32, count=45 * 26 * 4, offset=out_off).reshape(26, 45, 4)
            np.testing.assert_allclose(got, full[7:33, 5:50], atol=1e-6)
            del got
        stats = protocol.request(sock_path, {"op": "stats"})
        assert stats["keyed"] == 1 and stats["cache_hits"] == 1 and stats["pid"] == os.getpid()
        assert wk.warm_keyer.counts["errors"] == 0


def test_the_frame_key_ignores_the_window_and_follows_every_input_and_setting(sock_path):
    """One inference for every window and output mode of a frame; a new one when any pixel of
    any input, or any setting that changes the key, changes."""
    h, w = 32, 48
    plate = make_plate(h, w, seed=5)
    garbage = np.zeros((h, w), np.float32)
    garbage[:, :8] = 1.0
    core = np.zeros((h, w), np.float32)
    core[10:20, 20:30] = 1.0
    light = 1.0 - 0.35 * np.arange(w, dtype=np.float32) / w  # make_plate's screen, no subject
    clean = np.ascontiguousarray(np.broadcast_to(SCREEN * light[:, None], (h, w, 3)))
    names = ("garbage", "core", "clean_plate")
    offsets, out_off = input_layout(w, h, names)
    with running(sock_path), shared(w, h, (0, 0, w, h), names) as (name, mm, _):
        arrays = {
            "source": np.frombuffer(mm, np.float32, h * w * 3, 0).reshape(h, w, 3),
            **{n: np.frombuffer(mm, np.float32, h * w * protocol.EXTRA_INPUTS[n], offsets[n]) for n in names},
        }
        for n, pixels in zip(arrays, (plate, garbage, core, clean), strict=True):
            arrays[n][:] = pixels.reshape(arrays[n].shape)

        def cached(window=(0, 0, w, h), inputs=offsets, **settings) -> bool:
            req = render_request(name, w, h, window, out_off, Settings(**settings))
            reply = protocol.request(sock_path, {**req, "inputs": inputs})
            assert reply["ok"], reply
            return reply["cached"]

        windows = [(0, 0, w // 2, h), (w // 2, 0, w, h), (5, 7, 40, 30), (0, 0, w, h)]
        assert [cached(win) for win in windows] == [False, True, True, True]
        assert cached(output="matte") and cached(output="composite", composite_colour=(1.0, 0.0, 0.0))
        for n, pixels in arrays.items():
            flat = pixels.reshape(-1)
            flat[len(flat) // 2] += 1e-3  # one value of one pixel
            assert not cached((0, 0, 8, 8)), f"a changed pixel of {n} must key again"
            assert cached((8, 8, 16, 16)), n
        for setting in (
            {"despill": 0.5},
            {"screen_colour": (0.1, 0.5, 0.1)},
            {"invert_garbage": True},
            {"colorspace": "ACEScg"},
            {"source_depth": "short"},  # auto colour space: sRGB
            {"keyer": "classic"},
        ):
            assert not cached(**setting), setting
            assert cached((3, 3, 9, 9), **setting), setting
        without_garbage = {n: offsets[n] for n in ("core", "clean_plate")}
        assert not cached(inputs=without_garbage)
        assert cached(inputs=without_garbage, invert_garbage=True)  # nothing to invert
        del arrays, pixels, flat  # views of the mapping, which closes next
    same = np.ones((4, 4), np.float32)
    rgb = np.zeros((4, 4, 3), np.float32)
    assert worker.inputs_digest(rgb, {"garbage": same}) != worker.inputs_digest(rgb, {"core": same})
    assert worker.inputs_digest(rgb, {}) != worker.inputs_digest(rgb, {"core": np.zeros((4, 4), np.float32)})


def test_bad_requests_get_error_replies_and_the_worker_keeps_serving(sock_path):
    with running(sock_path), shared(8, 8, (0, 0, 8, 8)) as (name, _mm, out_off):
        assert "protocol 99" in protocol.request(sock_path, {"op": "ping", "version": 99}).get("error", "")
        # request() adds the current version; send one without it by hand
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock_path))
            protocol.send_message(s, {"op": "ping"})
            assert protocol.recv_message(s)["ok"] is False
        assert "unknown request" in protocol.request(sock_path, {"op": "dance"})["error"]
        cases = {
            "outside": render_request(name, 8, 8, (0, 0, 9, 8), out_off, Settings()),
            "name": render_request("/etc/passwd", 8, 8, (0, 0, 8, 8), out_off, Settings()),
            "gone": render_request(
                f"/gsrender-{os.getpid()}-0-gone", 8, 8, (0, 0, 8, 8), out_off, Settings()
            ),
            "too big": render_request(name, 80, 80, (0, 0, 8, 8), out_off, Settings()),
            "space": render_request(name, 8, 8, (0, 0, 8, 8), out_off, Settings(colorspace="nope")),
            "model": render_request(name, 8, 8, (0, 0, 8, 8), out_off, Settings(model="/no/such/model.onnx")),
        }
        for what, req in cases.items():
            reply = protocol.request(sock_path, req)
            assert reply["ok"] is False and reply["error"], what
        assert "is gone" in protocol.request(sock_path, cases["gone"])["error"]
        assert protocol.request(sock_path, {"op": "ping"})["ok"]


def test_nan_source_is_refused_like_the_cli(sock_path):
    plate = make_plate(16, 16)
    plate[3, 4, 1] = np.nan
    with running(sock_path), shared(16, 16, (0, 0, 16, 16)) as (name, mm, out_off):
        np.frombuffer(mm, np.float32, count=16 * 16 * 3)[:] = plate.ravel()
        reply = protocol.request(sock_path, render_request(name, 16, 16, (0, 0, 16, 16), out_off, Settings()))
        assert reply["ok"] is False and "NaN or Inf" in reply["error"]


def test_idle_timeout_removes_the_socket(sock_path):
    w = worker.Worker(sock_path, worker.WarmKeyer(), idle_timeout=0.3)
    w.bind()
    t0 = time.monotonic()
    w.serve()  # returns by itself
    assert time.monotonic() - t0 < 5
    assert not sock_path.exists()


def test_one_worker_per_socket_and_stale_sockets_are_replaced(sock_path):
    sock_path.parent.mkdir(parents=True, exist_ok=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock_path))  # left behind by a crashed worker: nobody listens
    stale.close()
    with running(sock_path):
        assert protocol.request(sock_path, {"op": "ping"})["ok"]
        assert worker.main(["--socket", str(sock_path)]) == 0  # says "already running", exits
        assert protocol.request(sock_path, {"op": "ping"})["ok"]


def test_a_starting_worker_waits_for_a_dying_lock_holder(sock_path):
    sock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{sock_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a worker that holds the lock but no longer answers
    threading.Timer(0.4, os.close, args=(fd,)).start()  # ... and then dies
    w = worker.Worker(sock_path, worker.WarmKeyer())
    w.bind(lock_wait=5.0)
    try:
        assert sock_path.exists()
    finally:
        w.close()
    fd = os.open(f"{sock_path}.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held for good this time
    try:
        with pytest.raises(worker.AlreadyRunning):
            worker.Worker(sock_path, worker.WarmKeyer()).bind(lock_wait=0.3)
    finally:
        os.close(fd)


def test_sweep_removes_only_files_of_dead_hosts(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f"gsrender-{dead.pid}-1-abc").write_bytes(b"x")
    (tmp_path / f"gsrender-{os.getpid()}-1-abc").write_bytes(b"x")
    (tmp_path / "other-file").write_bytes(b"x")
    assert worker.sweep_stale_shm(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"gsrender-{os.getpid()}-1-abc", "other-file"]
