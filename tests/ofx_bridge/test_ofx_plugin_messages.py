"""The plugin is never silent: every failed render leaves a host message with its true cause,
and hostile environment values are refused with one clear line instead of hanging the host."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_plate
from tests.ofx_bridge.conftest import ROOT, WORKER_CMD, new_socket, stop_worker
from tests.ofx_bridge.ofx_host import OfxTestHost
from tests.ofx_bridge.test_ofx_plugin import (
    ATOL,
    H,
    W,
    attach_output,
    attach_source,
    cli_key,
    instance,
    render_at_once,
)

MODEL = ROOT / "models" / "gskey.onnx"


def errors_of(host: OfxTestHost) -> list[str]:
    return [m.text for m in host.messages if m.kind == "OfxMessageError"]


def test_a_failed_window_keeps_its_message_when_another_window_succeeds(host: OfxTestHost):
    """Window A fails (the host gave no output image), window B of the same frame renders: A's
    message must stay, or the host shows a failed render with no reason."""
    inst = instance(host)
    attach_source(inst, make_plate(24, 32, seed=3))
    assert host.render(inst, (0, 0, 16, 24)) == 1  # no Output image attached yet
    assert errors_of(host) == ["the host gave no output image"]
    attach_output(inst, (0, 0, 32, 24))
    assert host.render(inst, (16, 0, 32, 24)) == 0
    assert errors_of(host) == ["the host gave no output image"], "the success cleared another window's error"
    host.set_param(inst, "despill", 0.5)  # something changed: a clean render clears it
    assert host.render(inst, (0, 0, 32, 24)) == 0
    assert host.messages == []


def test_a_failure_at_one_frame_is_cleared_by_a_clean_render_of_another(host: OfxTestHost):
    inst = instance(host)
    attach_source(inst, make_plate(24, 32, seed=4))
    assert host.render(inst, (0, 0, 32, 24), time=1.0) == 1
    attach_output(inst, (0, 0, 32, 24))
    assert host.render(inst, (0, 0, 32, 24), time=2.0) == 0
    assert host.messages == []


def test_a_model_path_that_is_not_utf8_is_named(host: OfxTestHost, tmp_path: Path):
    """A Latin-1 file name cannot travel in the protocol's UTF-8 JSON: the message says so, not
    that the worker stopped."""
    inst = instance(host)
    attach_source(inst, make_plate(24, 32, seed=5))
    attach_output(inst, (0, 0, 32, 24))
    host.set_param(inst, "model", str(tmp_path).encode() + b"/mod\xe8le.onnx")
    assert host.render(inst, (0, 0, 32, 24)) == 1
    (text,) = errors_of(host)
    assert "Model path" in text and "not valid UTF-8" in text, text
    assert "stopped" not in text


def test_concurrent_windows_with_a_model_path_stress(host: OfxTestHost, tmp_path: Path, worker_env: Path):
    """Sixteen render threads read the Model parameter at once, 400 times over: every window
    renders the right pixels. (The test host once freed a string value while another thread still
    read it: 1 to 4 rounds in 200 failed with a garbled model path.)"""
    plate = make_plate(H, W, seed=21)
    expected = cli_key(tmp_path, plate, "--model", str(MODEL))
    inst = instance(host)
    host.set_param(inst, "model", str(MODEL))
    attach_source(inst, plate)
    out = attach_output(inst, (0, 0, W, H))
    assert host.render(inst, (0, 0, W, H)) == 0, host.messages  # warm: the frame is keyed once
    n = 16
    step = W // n
    windows = [(i * step, 0, (i + 1) * step if i < n - 1 else W, H) for i in range(n)]
    failed_rounds = 0
    for _ in range(400):
        out.buffer[:] = 0xAB
        results = render_at_once(host, inst, windows)
        if results != [0] * len(windows):
            failed_rounds += 1
            continue
        np.testing.assert_allclose(out.top_down(), expected, atol=ATOL)
    assert failed_rounds == 0, (failed_rounds, errors_of(host)[:3])
    assert host.images_out == 0


# ---------------------------------------------------------------- environment values


@pytest.fixture
def private_env(monkeypatch):
    sock = new_socket()
    monkeypatch.setenv("GSRENDER_SOCKET", str(sock))
    monkeypatch.setenv("GSRENDER_WORKER", WORKER_CMD)
    monkeypatch.setenv("GSRENDER_WORKER_TIMEOUT", "60")
    yield sock
    stop_worker(sock)


def _render_once(ofx_binary: Path) -> tuple[int, list[str], float]:
    host = OfxTestHost(ofx_binary)
    assert host.load() == 0
    inst = instance(host)
    attach_source(inst, make_plate(24, 32, seed=6))
    attach_output(inst, (0, 0, 32, 24))
    t0 = time.monotonic()
    status = host.render(inst, (0, 0, 32, 24))
    assert host.errors == []
    return status, errors_of(host), time.monotonic() - t0


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("GSRENDER_WORKER_TIMEOUT", "inf", "GSRENDER_WORKER_TIMEOUT"),
        ("GSRENDER_WORKER_TIMEOUT", "nan", "GSRENDER_WORKER_TIMEOUT"),
        ("GSRENDER_WORKER_TIMEOUT", "-5", "GSRENDER_WORKER_TIMEOUT"),
        ("GSRENDER_WORKER_TIMEOUT", "10 minutes", "GSRENDER_WORKER_TIMEOUT"),
        ("GSRENDER_WORKER_TIMEOUT", "0x10", "GSRENDER_WORKER_TIMEOUT"),
        ("GSRENDER_RENDER_TIMEOUT", "1e999", "GSRENDER_RENDER_TIMEOUT"),
        ("GSRENDER_RENDER_TIMEOUT", "soon", "GSRENDER_RENDER_TIMEOUT"),
        ("GSRENDER_SOCKET", "relative/w.sock", "GSRENDER_SOCKET"),
        ("GSRENDER_SOCKET", "/tmp/a\nb/w.sock", "GSRENDER_SOCKET"),
        ("GSRENDER_SOCKET", "/tmp/" + "x" * 200 + "/w.sock", "GSRENDER_SOCKET"),
        ("GSRENDER_WORKER", "   ", "GSRENDER_WORKER"),
    ],
)
def test_bad_environment_values_are_one_clear_message(
    ofx_binary, private_env, monkeypatch, name, value, words
):
    monkeypatch.setenv(name, value)
    status, errors, seconds = _render_once(ofx_binary)
    assert status == 1
    (text,) = errors
    assert words in text and repr(value)[1:-1][:40] in text.replace("\\\\", "\\"), text
    assert seconds < 5, f"took {seconds:.1f} s to refuse {name}={value!r}"


def test_a_newline_in_the_worker_command_never_blocks_the_host(
    ofx_binary, private_env, monkeypatch, tmp_path
):
    """A newline used to run the first line in the foreground: the plugin then waited in waitpid
    for the worker's whole life. Now it is refused at once, with the variable named."""
    marker = tmp_path / "ran"
    monkeypatch.setenv("GSRENDER_WORKER", f"touch {marker}; sleep 30\n{WORKER_CMD}")
    result: list = []
    t = threading.Thread(target=lambda: result.append(_render_once(ofx_binary)), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "the plugin blocked on the worker command"
    status, errors, _ = result[0]
    assert status == 1
    (text,) = errors
    assert "GSRENDER_WORKER" in text and "newline" in text, text
    assert not marker.exists()  # nothing of the command ran


def test_a_worker_command_that_stays_in_the_foreground_never_blocks_the_host(
    ofx_binary, private_env, monkeypatch, tmp_path
):
    """Shell text such as '#' or ';' can keep a command out of the background: the plugin's own
    start-up shell must still exit at once, and the start-up timeout apply."""
    monkeypatch.setenv("GSRENDER_WORKER", "sleep 30 #")
    monkeypatch.setenv("GSRENDER_WORKER_TIMEOUT", "2")
    result: list = []
    t = threading.Thread(target=lambda: result.append(_render_once(ofx_binary)), daemon=True)
    t.start()
    t.join(15)
    assert not t.is_alive(), "the plugin blocked in waitpid on a foreground worker command"
    status, errors, seconds = result[0]
    assert status == 1 and seconds < 10
    (text,) = errors
    assert "did not open" in text, text


def test_good_environment_values_still_render(ofx_binary, private_env, monkeypatch, tmp_path):
    monkeypatch.setenv("GSRENDER_WORKER_TIMEOUT", " 30.5 ")
    monkeypatch.setenv("GSRENDER_RENDER_TIMEOUT", "0")
    host = OfxTestHost(ofx_binary)
    assert host.load() == 0
    inst = instance(host)
    plate = make_plate(24, 32, seed=8)
    attach_source(inst, plate)
    out = attach_output(inst, (0, 0, 32, 24))
    assert host.render(inst, (0, 0, 32, 24)) == 0, host.messages
    np.testing.assert_allclose(out.top_down(), cli_key(tmp_path, plate), atol=ATOL)
