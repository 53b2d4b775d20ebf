"""Fixtures for the OpenFX bridge: the bundle built once per session with CMake, a test
host loading it, and the environment that points the plugin at a private worker."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gsrender.ofx_bridge import protocol
from tests.ofx_bridge.ofx_host import OfxTestHost

ROOT = Path(__file__).resolve().parents[2]
ARCH = "Linux-x86-64"
# The worker as the plugin starts it in production (`gsrender serve`), through this venv.
WORKER_CMD = f"{shlex.quote(sys.executable)} -m gsrender.cli serve --idle-timeout 120"

_sockets: list[Path] = []


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="session")
def ofx_build(tmp_path_factory) -> Path:
    """Configure and build with CMake (warnings are errors), once per session.

    GSKEY_CMAKE_ARGS adds configure arguments, e.g. a sanitizer build:
    GSKEY_CMAKE_ARGS="-DCMAKE_C_FLAGS=-fsanitize=address" LD_PRELOAD=$(gcc -print-file-name=libasan.so)
    """
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed: the OpenFX plugin cannot be built here")
    build = tmp_path_factory.mktemp("ofx_build")
    extra = shlex.split(os.environ.get("GSKEY_CMAKE_ARGS", ""))
    _run(
        [cmake, "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", "-DGSKEY_WERROR=ON", *extra]
    )
    _run([cmake, "--build", str(build), "--parallel", "2"])
    return build


@pytest.fixture(scope="session")
def ofx_binary(ofx_build: Path) -> Path:
    binary = ofx_build / "GsKey.ofx.bundle" / "Contents" / ARCH / "GsKey.ofx"
    assert binary.is_file(), f"the build did not produce {binary}"
    return binary


def new_socket() -> Path:
    """A private, short socket path (AF_UNIX paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="gsk-", dir="/tmp")) / "w.sock"
    _sockets.append(path)
    return path


def process_gone(pid: int) -> bool:
    """Exited (or a zombie: the worker is not our child, and PID 1 may reap it late or never)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_worker(path: Path) -> None:
    """Shut a worker down and wait for it, so no test leaves a process behind."""
    pid = None
    with contextlib.suppress(OSError, protocol.ProtocolError):
        pid = protocol.request(path, {"op": "stats"}, timeout=5)["pid"]
        protocol.request(path, {"op": "shutdown"}, timeout=5)
    if pid and not wait_gone(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def shared_socket() -> Path:
    """One worker for most tests: it stays warm across them, as it would across a host session."""
    path = new_socket()
    yield path
    for sock in _sockets:
        stop_worker(sock)
        shutil.rmtree(sock.parent, ignore_errors=True)


@pytest.fixture
def worker_env(monkeypatch, shared_socket: Path) -> Path:
    monkeypatch.setenv("GSRENDER_SOCKET", str(shared_socket))
    monkeypatch.setenv("GSRENDER_WORKER", WORKER_CMD)
    monkeypatch.setenv("GSRENDER_WORKER_TIMEOUT", "60")
    return shared_socket


@pytest.fixture
def host(ofx_binary: Path, worker_env: Path) -> OfxTestHost:
    """A loaded host (Load action done); its callbacks must never have raised."""
    h = OfxTestHost(ofx_binary)
    assert h.load() == 0
    yield h
    assert h.errors == []
