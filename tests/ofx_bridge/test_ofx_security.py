"""A hostile local user against the plugin's worker folder and socket .

Without XDG_RUNTIME_DIR the plugin uses $TMPDIR/gsrender-UID, a name any local user can
create first. These tests play that user with uid 65534 (needs root to switch to it) and
check that the plugin refuses the folder and a worker of another user before it sends
anything, and never follows a worker.log symlink.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from tests.conftest import make_plate
from tests.ofx_bridge.ofx_host import OfxTestHost
from tests.ofx_bridge.test_ofx_plugin import attach_output, attach_source, instance

OTHER_UID = 65534  # "nobody": the hostile neighbour

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="playing another local user needs root (to run a process as uid 65534)"
)

# A fake worker: records every request it gets and answers "ok" (black pixels for the plugin).
FAKE_WORKER = """
import socket, struct, sys
path, log = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(8)
print("listening", flush=True)
while True:
    conn, _ = srv.accept()
    with conn:
        while True:
            head = conn.recv(4, socket.MSG_WAITALL)
            if len(head) < 4:
                break
            body = conn.recv(struct.unpack(">I", head)[0], socket.MSG_WAITALL)
            with open(log, "ab") as f:
                f.write(body + b"\\n")
            reply = b'{"ok":true,"pid":1,"version":1}'
            conn.sendall(struct.pack(">I", len(reply)) + reply)
"""


@pytest.fixture
def shared_tmp():
    """A /tmp-like folder both users can reach (short: AF_UNIX paths are limited)."""
    path = Path(tempfile.mkdtemp(prefix="gsx-", dir="/tmp"))
    os.chmod(path, 0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fallback_env(monkeypatch, shared_tmp: Path) -> Path:
    """The plugin's own default path: no GSRENDER_SOCKET, no XDG_RUNTIME_DIR, TMPDIR shared."""
    monkeypatch.delenv("GSRENDER_SOCKET", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(shared_tmp))
    monkeypatch.setenv("GSRENDER_WORKER", "/bin/false")  # a real worker must never be needed here
    monkeypatch.setenv("GSRENDER_WORKER_TIMEOUT", "5")
    return shared_tmp / f"gsrender-{os.getuid()}"


def _python_for_other_user() -> str:
    """A Python the other user can run (this venv may sit in root's home): the fake needs only stdlib."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate) and os.stat(candidate).st_mode & 0o001:
            return candidate
    pytest.skip("no world-executable python3 for the other user")


def _start_fake_worker(sock: Path, log: Path) -> subprocess.Popen:
    log.touch()
    os.chown(log, OTHER_UID, OTHER_UID)
    proc = subprocess.Popen(
        [_python_for_other_user(), "-c", FAKE_WORKER, str(sock), str(log)],
        user=OTHER_UID,
        group=OTHER_UID,
        extra_groups=[],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "listening"
    return proc


def _render(ofx_binary: Path) -> tuple[int, list[str]]:
    host = OfxTestHost(ofx_binary)
    assert host.load() == 0
    inst = instance(host)
    attach_source(inst, make_plate(24, 32))
    attach_output(inst, (0, 0, 32, 24))
    status = host.render(inst, (0, 0, 32, 24))
    assert host.errors == []
    return status, [m.text for m in host.messages]


@needs_root
def test_folder_of_another_user_is_refused(ofx_binary, fallback_env: Path, tmp_path: Path):
    folder = fallback_env
    folder.mkdir(mode=0o755)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (folder / "worker.log").symlink_to(victim)
    requests = tmp_path / "requests.log"
    os.chown(folder, OTHER_UID, OTHER_UID)
    os.lchown(folder / "worker.log", OTHER_UID, OTHER_UID)
    fake = _start_fake_worker(folder / "worker.sock", requests)
    try:
        status, messages = _render(ofx_binary)
    finally:
        fake.kill()
        fake.wait()
    assert status == 1
    assert any("refusing the worker folder" in m and "belongs to user 65534" in m for m in messages), messages
    assert requests.read_bytes() == b""  # the fake worker got nothing: no shm name, no settings
    assert victim.read_text() == "precious\n"


def test_folder_others_can_write_is_refused(ofx_binary, fallback_env: Path):
    fallback_env.mkdir()
    os.chmod(fallback_env, 0o777)
    status, messages = _render(ofx_binary)
    assert status == 1
    assert any("other users can write to it" in m for m in messages), messages


def test_symlink_folder_is_refused(ofx_binary, fallback_env: Path, tmp_path: Path):
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    fallback_env.symlink_to(real)
    status, messages = _render(ofx_binary)
    assert status == 1
    assert any("not a folder" in m for m in messages), messages


@needs_root
def test_worker_of_another_user_is_refused(ofx_binary, fallback_env: Path, tmp_path: Path, shared_tmp: Path):
    """Our own folder, but the socket in it is served by another user: SO_PEERCRED says so."""
    fallback_env.mkdir(mode=0o700)
    staging = shared_tmp / "s"
    staging.mkdir(mode=0o777)
    os.chmod(staging, 0o777)
    requests = tmp_path / "requests.log"
    fake = _start_fake_worker(staging / "w.sock", requests)
    try:
        os.rename(staging / "w.sock", fallback_env / "worker.sock")
        status, messages = _render(ofx_binary)
    finally:
        fake.kill()
        fake.wait()
    assert status == 1
    assert any("runs as another user" in m for m in messages), messages
    assert requests.read_bytes() == b""


def test_worker_log_symlink_is_never_followed(ofx_binary, fallback_env: Path, tmp_path: Path):
    fallback_env.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"x" * (2 << 20))  # over the 1 MiB at which the log is started afresh
    (fallback_env / "worker.log").symlink_to(victim)
    status, _ = _render(ofx_binary)
    assert status == 1  # /bin/false never serves
    assert victim.read_bytes() == b"x" * (2 << 20)


def test_own_private_folder_still_works(ofx_binary, fallback_env: Path):
    """The checks do not refuse the normal case: a worker of ours in our 0700 folder answers."""
    fallback_env.mkdir(mode=0o700)
    sock_path = fallback_env / "worker.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(sock_path))
    srv.listen(1)
    srv.settimeout(10)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            for _ in range(2):  # the ping after a fresh connect, then the render
                head = conn.recv(4, socket.MSG_WAITALL)
                if len(head) < 4:
                    return
                got.append(conn.recv(struct.unpack(">I", head)[0], socket.MSG_WAITALL))
                reply = b'{"ok":true}'
                conn.sendall(struct.pack(">I", len(reply)) + reply)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    status, messages = _render(ofx_binary)
    t.join(10)
    srv.close()
    assert status == 0, messages
    assert any(b'"op":"render"' in m for m in got)
