"""The worker against hostile same-user clients and mistakes."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gsrender.cli import serve
from gsrender.ofx_bridge import protocol, worker
from gsrender.ofx_bridge.protocol import Settings
from tests.conftest import make_plate
from tests.ofx_bridge.test_ofx_worker import render_request, running, shared


@pytest.fixture
def sock_path(tmp_path_factory) -> Path:
    return Path(os.path.realpath(tmp_path_factory.mktemp("w"))) / "w.sock"


def test_serve_refuses_to_delete_a_regular_file(tmp_path, capsys):
    victim = tmp_path / "notes.txt"
    victim.write_text("keep me\n")
    assert serve.main(["--socket", str(victim), "--idle-timeout", "1"]) == 1
    assert victim.read_text() == "keep me\n"
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "error" in x]
    assert "is not a socket" in line


def test_serve_refuses_a_folder_others_can_write(tmp_path, capsys):
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o777)
    assert serve.main(["--socket", str(folder / "w.sock"), "--idle-timeout", "1"]) == 1
    assert "can be written by other users" in capsys.readouterr().err
    assert not (folder / "w.sock").exists()


def test_shm_truncated_mid_render_is_an_error_reply_not_sigbus(sock_path):
    """The file is truncated after the request is built: the worker answers an error and lives on."""
    h, w = 40, 64
    window = (0, 0, w, h)
    with running(sock_path), shared(w, h, window) as (name, mm, out_off):
        np.frombuffer(mm, np.float32, count=h * w * 3)[:] = make_plate(h, w).ravel()
        os.truncate(worker.SHM_DIR / name.lstrip("/"), 100)
        reply = protocol.request(sock_path, render_request(name, w, h, window, out_off, Settings()))
        assert not reply["ok"] and "shared memory" in reply["error"]
        assert protocol.request(sock_path, {"op": "ping"})["ok"]


def test_shm_truncated_while_the_worker_reads_it_never_kills_it(sock_path):
    """A real `gsrender serve` process; the client truncates its file at several moments mid-request."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gsrender.cli",
            "serve",
            "--socket",
            str(sock_path),
            "--idle-timeout",
            "60",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not sock_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        h, w = 1200, 1600
        settings = Settings(keyer="classic")
        for delay in (0.0, 0.001, 0.003, 0.01, 0.03):
            with shared(w, h, (0, 0, 8, 8)) as (name, mm, out_off):
                np.frombuffer(mm, np.float32, count=h * w * 3)[:] = 0.25
                req = {
                    "version": protocol.VERSION,
                    **render_request(name, w, h, (0, 0, 8, 8), out_off, settings),
                }
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(60)
                    s.connect(str(sock_path))
                    protocol.send_message(s, req)
                    time.sleep(delay)
                    os.truncate(worker.SHM_DIR / name.lstrip("/"), 0)
                    with contextlib.suppress(OSError, protocol.ProtocolError):
                        protocol.recv_message(s)
            assert proc.poll() is None, (
                f"the worker died (exit {proc.returncode}) after a truncation at {delay}s"
            )
        assert protocol.request(sock_path, {"op": "ping"})["ok"]
    finally:
        proc.kill()
        proc.wait()


def test_read_shared_reports_a_short_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"\0" * 100)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(Exception, match="shorter than the frame"):
            worker.read_shared(fd, 0, np.empty((10, 10, 3), np.float32))
    finally:
        os.close(fd)


def test_half_a_header_does_not_keep_the_worker_alive(sock_path):
    w = worker.Worker(sock_path, worker.WarmKeyer(), idle_timeout=0.5, read_timeout=0.5)
    w.bind()
    t = threading.Thread(target=w.serve, daemon=True)
    t.start()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(sock_path))
    client.sendall(b"\0\0")  # half a header, then silence
    t.join(15)
    alive = t.is_alive()
    client.close()
    w.stop()
    t.join(5)
    assert not alive, "a silent client kept the worker past its idle timeout"


def _raw_request(sock_path: Path, body: bytes) -> dict | None:
    """Send one framed body as it is; the reply, or None when the worker dropped the connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(sock_path))
        s.sendall(protocol.HEADER.pack(len(body)) + body)
        return protocol.recv_message(s)


def test_deeply_nested_json_is_refused_and_the_worker_keeps_serving(sock_path):
    body = b'{"op":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with running(sock_path):
        reply = _raw_request(sock_path, body)  # an error reply, not a thread dying with a traceback
        assert reply == {"ok": False, "error": "bad request: JSON nested deeper than 8 levels"}
        assert protocol.request(sock_path, {"op": "ping"})["ok"]
    a, b = socket.socketpair()
    with a, b:
        a.sendall(protocol.HEADER.pack(len(body)) + body)
        with pytest.raises(protocol.ProtocolError, match="nested deeper"):
            protocol.recv_message(b)


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"despill": math.nan}, "finite"),
        ({"despill": 5}, "between 0 and 1"),
        ({"despill": "0.5"}, "finite number"),
        ({"despot": 4097}, "to 4096 pixels"),
        ({"despot": -1}, "to 4096 pixels"),
        ({"despot": 2.5}, "whole number"),
        ({"screen_colour": [math.nan] * 3}, "finite"),
        ({"screen_colour": [0, 0, 0]}, "not all 0"),
        ({"composite_colour": [math.inf, 0, 0]}, "finite"),
        ({"screen_colour": [1e308, 1e308, 1e308]}, "65504"),
    ],
)
def test_request_settings_must_be_finite_and_in_range(settings, words):
    with pytest.raises(ValueError, match=words):
        Settings.from_json(settings)


def test_bad_request_numbers_get_error_replies(sock_path):
    h, w = 8, 8
    with running(sock_path), shared(w, h, (0, 0, w, h)) as (name, _mm, out_off):
        good = render_request(name, w, h, (0, 0, w, h), out_off, Settings())
        good["settings"]["despill"] = math.nan  # Python's json writes NaN; the worker must refuse it
        for change in ({"width": 8.5}, {"width": True}, {"window": [0, 0, 8]}, {"width": 1 << 20}, {}):
            req = {**good, **change}
            reply = protocol.request(sock_path, req)
            assert not reply["ok"] and reply["error"].startswith("bad request"), (change, reply)


@pytest.mark.parametrize(
    "body, words",
    [
        (
            '{"version":2,"op":"render","settings":{"model":"/shots/mod\u00e8le.onnx"}}'.encode("latin-1"),
            "not valid UTF-8 (byte 0xE8 at byte 59)",
        ),
        (b"\xff\xfe{}", "not valid UTF-8 (byte 0xFF at byte 1)"),
        (b'{"op": ', "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
    ],
)
def test_a_request_that_cannot_be_read_gets_an_error_reply(sock_path, body, words):
    """A whole message that is not a UTF-8 JSON object is answered (the plugin then shows the true
    cause), not dropped (the plugin took that for a crash, restarted the worker and blamed it)."""
    with running(sock_path) as w:
        reply = _raw_request(sock_path, body)
        assert reply is not None and reply["ok"] is False, reply
        assert reply["error"].startswith("bad request: ") and words in reply["error"], reply
        assert protocol.request(sock_path, {"op": "ping"})["ok"]
        assert w.warm_keyer.counts["errors"] == 1


def _serve_process(sock_path: Path, max_files: int):
    """`gsrender serve` as the plugin starts it, with at most ``max_files`` open file descriptors."""
    import resource
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "gsrender.cli", "serve", "--socket", str(sock_path), "--idle-timeout", "60"],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files)),
    )
    deadline = time.monotonic() + 60
    while not sock_path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc


def test_worker_keeps_serving_when_it_runs_out_of_file_descriptors(sock_path):
    """300 connections against a limit of 256 descriptors: the excess is answered with an error
    reply and closed, one line is logged, and the worker serves on (it used to die on EMFILE)."""
    proc = _serve_process(sock_path, 256)
    conns: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        while len(conns) < 300 and time.monotonic() < deadline:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            try:
                s.connect(str(sock_path))
            except BlockingIOError:  # the listen backlog is full: wait for the worker to accept
                s.close()
                time.sleep(0.01)
                continue
            except OSError:  # refused: nobody listens any more
                s.close()
                break
            conns.append(s)
        assert len(conns) == 300
        replies = []
        for s in conns:
            with contextlib.suppress(OSError):
                protocol.send_message(s, {"version": protocol.VERSION, "op": "ping"})
        for s in conns:
            try:
                replies.append(protocol.recv_message(s))
            except (OSError, protocol.ProtocolError):
                replies.append(None)
        served = [r for r in replies if r and r.get("ok")]
        shed = [r for r in replies if r and not r.get("ok")]
        assert proc.poll() is None, "the worker died"
        assert served and shed and len(served) + len(shed) == 300, (len(served), len(shed))
        assert all("file descriptors" in r["error"] for r in shed), shed[0]
        for s in conns:
            s.close()
        conns.clear()
        time.sleep(0.5)
        assert protocol.request(sock_path, {"op": "ping"}, timeout=10)["ok"]
        assert protocol.request(sock_path, {"op": "stats"}, timeout=10)["shed"] == len(shed)
        protocol.request(sock_path, {"op": "shutdown"}, timeout=10)
        assert proc.wait(30) == 0
        log = proc.stderr.read()
        assert len([line for line in log.splitlines() if "file descriptors" in line]) == 1, log
        assert "Traceback" not in log
    finally:
        for s in conns:
            s.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
