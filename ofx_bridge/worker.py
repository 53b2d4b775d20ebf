"""The local worker process behind the GsKey OpenFX plugin (`gsrender serve`, gsrender.cli.serve).

Why a separate process: a compositing host must never load Python, torch or CUDA into
itself (version clashes with its own, and a crash there takes the artist's session
down). The plugin starts this worker on demand, sends whole frames through shared
memory and a Unix socket (PROTOCOL.md), and gets back only the render window.

Why whole frames: the keyer's per-frame guides (screen estimate) need the full frame,
and keying it through the CLI's Keyer (engine/keyer.py: same colour conversion, guides,
inference and unmix) with the same output composition is what makes the plugin's pixels
equal the CLI's. The last keyed frames are cached by FrameKey (the whole
frame's inputs and the settings that change the key, never the window), so the several
render windows and threads a host uses for one frame cost one inference; models stay
loaded across frames, instances and hosts until the worker has been idle for
--idle-timeout seconds.

This module is the server (socket, lock, requests); the keyer it keeps warm is warm_keyer.py,
the shared-memory files shared_memory.py, the command line gsrender.cli.serve.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import resource
import socket
import stat
import threading
import time
from pathlib import Path

import numpy as np

from ..engine import overwrite_guard
from ..engine.errors import GsRenderError
from .protocol import (
    EXTRA_INPUTS,
    FLOAT_BYTES,
    IN_CHANNELS,
    MAX_MESSAGE,
    MAX_SIDE,
    OUT_CHANNELS,
    VERSION,
    BadMessage,
    ProtocolError,
    Settings,
    extra_offsets,
    recv_message,
    request,
    send_message,
    whole,
)
from .shared_memory import SHM_DIR, open_shared, read_shared, sweep_stale_shm, write_shared
from .warm_keyer import (
    WarmKeyer,
    compose_window,
    inputs_digest,
)

log = logging.getLogger("gsrender.serve")

DEFAULT_IDLE_TIMEOUT = 900.0
SWEEP_SECONDS = 60.0
# A client that connects and then sends nothing (or half a message) is dropped after this:
# the plugin writes each request at once, and an open connection keeps the worker from idling out.
READ_TIMEOUT = 30.0
# accept() failing for want of descriptors or memory: the worker sheds connections and serves on.
OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class AlreadyRunning(Exception):
    """Another worker holds the socket's lock file: it serves the plugin already."""


def _check_model_not_written(settings: Settings, shm: str) -> None:
    """The CLI's rule (engine/overwrite_guard.py): the answer is written into the shared-memory
    file, so that file must not be the model this render reads."""
    if settings.keyer == "neural" and settings.model:
        reads = [overwrite_guard.single("Model", settings.model)]
        writes = [overwrite_guard.single("shared memory", SHM_DIR / shm.lstrip("/"))]
        overwrite_guard.check_no_overwrite(reads, writes)


# ---------------------------------------------------------------- server


class Worker:
    """Accepts plugin connections on a Unix socket; one thread per connection."""

    def __init__(
        self,
        path: Path,
        warm_keyer: WarmKeyer,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ):
        self.path = path
        self.warm_keyer = warm_keyer
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._active = 0
        self._last_activity = time.monotonic()
        self._lock_fd = -1
        self._sock: socket.socket | None = None
        self._inode = 0
        # One descriptor held back: closed when accept() runs out of them, so that the connection
        # waiting can still be accepted, answered "busy" and closed instead of piling up.
        self._reserve_fd = -1
        self._shedding = False
        self.shed = 0

    def _answers(self) -> bool:
        try:
            return bool(request(self.path, {"op": "ping"}, timeout=2.0).get("ok"))
        except (OSError, ProtocolError):
            return False

    def bind(self, lock_wait: float = 10.0) -> None:
        """Take the per-socket lock, then (re)create the socket; AlreadyRunning if another serves."""
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.lstat()
        if not stat.S_ISDIR(st.st_mode):
            raise PermissionError(f"socket folder {folder} is not a folder (a symlink?)")
        if st.st_uid != os.getuid():
            raise PermissionError(f"socket folder {folder} belongs to another user")
        if st.st_mode & 0o022:  # the plugin refuses such a folder too (gskey_client.c)
            raise PermissionError(f"socket folder {folder} can be written by other users; chmod 700 it")
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        deadline = time.monotonic() + lock_wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # Held by a live worker (it answers), one starting, or one dying after a crash:
                # wait for the latter two instead of leaving the plugin with nobody.
                if self._answers() or time.monotonic() > deadline:
                    os.close(fd)
                    raise AlreadyRunning(str(self.path)) from None
                time.sleep(0.1)
        self._lock_fd = fd
        try:
            st = self.path.lstat()
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(st.st_mode):  # never delete a file someone typed by mistake
                os.close(fd)
                self._lock_fd = -1
                raise FileExistsError(f"{self.path} exists and is not a socket; refusing to replace it")
            self.path.unlink()  # a socket left by a worker that crashed
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        sock.listen(64)
        sock.settimeout(0.5)
        self._inode = self.path.stat().st_ino
        self._sock = sock
        log.info("listening on %s (pid %d, idle timeout %gs)", self.path, os.getpid(), self.idle_timeout)

    def stop(self) -> None:
        self._stop.set()

    def _idle_expired(self) -> bool:
        if self.idle_timeout <= 0:
            return False
        with self._lock:
            return self._active == 0 and time.monotonic() - self._last_activity > self.idle_timeout

    def serve(self) -> None:
        """Accept until stopped or idle; then remove the socket so the plugin starts a new worker."""
        assert self._sock is not None, "bind() first"
        next_sweep = 0.0
        self._hold_reserve()
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_sweep:
                    with contextlib.suppress(OSError):  # out of descriptors: sweep next time
                        if removed := sweep_stale_shm():
                            log.info("removed %d shared-memory file(s) of hosts that died", removed)
                    next_sweep = time.monotonic() + SWEEP_SECONDS
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    if self._idle_expired():
                        log.info("idle for %gs, exiting", self.idle_timeout)
                        break
                    continue
                except OSError as exc:
                    if exc.errno not in OUT_OF_RESOURCES:
                        raise
                    self._shed_one(exc)
                    continue
                self._shedding = False
                self._hold_reserve()
                conn.settimeout(self.read_timeout)
                with self._lock:
                    self._active += 1
                try:
                    threading.Thread(target=self._serve_connection, args=(conn,), daemon=True).start()
                except RuntimeError as exc:  # "can't start new thread": shed it too
                    with self._lock:
                        self._active -= 1
                    self._refuse(conn, f"cannot start a thread ({exc})")
        finally:
            self.close()

    def _hold_reserve(self) -> None:
        if self._reserve_fd < 0:
            with contextlib.suppress(OSError):
                self._reserve_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    def _shed_one(self, exc: OSError) -> None:
        """accept() ran out of descriptors (or memory): log once per episode, then accept the
        waiting connection on the reserve descriptor and answer it "busy", or wait a moment.
        Nothing here may need a descriptor of its own (not even a lazy import)."""
        if not self._shedding:
            self._shedding = True
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            with self._lock:
                active = self._active
            log.warning(
                "out of file descriptors (%s; limit %d, %d connections open): answering new "
                "connections 'busy' until some close",
                exc.strerror or exc,
                soft,
                active,
            )
        if self._reserve_fd < 0:
            time.sleep(0.05)  # nothing to accept with: let connections close
            return
        os.close(self._reserve_fd)
        self._reserve_fd = -1
        try:
            conn, _ = self._sock.accept()  # type: ignore[union-attr]
        except OSError:
            conn = None
        if conn is not None:
            self._refuse(conn, "out of file descriptors")
        self._hold_reserve()

    def _refuse(self, conn: socket.socket, why: str) -> None:
        """Answer a connection the worker cannot serve now with an error reply, and close it."""
        self.shed += 1
        with conn:
            with contextlib.suppress(OSError):
                conn.setblocking(False)
                conn.recv(MAX_MESSAGE + 4)  # the request, if sent: closing with it unread resets the reply
            with contextlib.suppress(OSError, ProtocolError):
                conn.settimeout(1.0)
                send_message(
                    conn,
                    {
                        "ok": False,
                        "error": f"the gsrender worker is busy ({why}): too many connections at once; "
                        "render again, or raise its limit (ulimit -n)",
                    },
                )

    def close(self) -> None:
        # Unlink first: from here on a plugin gets "no worker" and starts a fresh one.
        with contextlib.suppress(OSError):
            if self._inode and self.path.stat().st_ino == self._inode:
                self.path.unlink()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.warm_keyer.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
        if self._reserve_fd >= 0:
            os.close(self._reserve_fd)
            self._reserve_fd = -1

    def _serve_connection(self, conn: socket.socket) -> None:
        try:
            with conn:
                while True:
                    try:
                        msg = recv_message(conn)
                    except BadMessage as exc:  # a whole message that cannot be read: say why
                        self.warm_keyer.count("errors")
                        reply = {"ok": False, "error": f"bad request: {exc}"}
                    except (ProtocolError, OSError) as exc:  # TimeoutError is an OSError
                        log.warning("dropped a connection: %s", exc or type(exc).__name__)
                        return
                    else:
                        if msg is None:
                            return
                        reply = self.handle(msg)
                    try:
                        send_message(conn, reply)
                    except (OSError, ProtocolError):
                        return  # the plugin went away (render aborted); the result stays cached
        except Exception:  # a thread must never die with a traceback; the worker goes on
            log.exception("connection failed")
        finally:
            with self._lock:
                self._active -= 1
                self._last_activity = time.monotonic()

    def handle(self, msg: dict) -> dict:
        """One request -> one reply; never raises (errors become {"ok": false})."""
        if msg.get("version") != VERSION:
            return {
                "ok": False,
                "error": f"the plugin speaks protocol {msg.get('version')}, this worker {VERSION}: "
                "install matching versions of the plugin and gsrender",
            }
        op = msg.get("op")
        try:
            if op == "ping":
                return {"ok": True, "pid": os.getpid(), "version": VERSION}
            if op == "stats":
                return {"ok": True, "pid": os.getpid(), "shed": self.shed, **self.warm_keyer.stats()}
            if op == "shutdown":
                self.stop()
                return {"ok": True}
            if op == "render":
                return self._render(msg)
            return {"ok": False, "error": f"unknown request '{op}'"}
        except GsRenderError as exc:
            self.warm_keyer.count("errors")
            return {"ok": False, "error": exc.message}
        except (KeyError, TypeError, ValueError) as exc:
            self.warm_keyer.count("errors")
            return {"ok": False, "error": f"bad request: {exc}"}
        except Exception as exc:
            self.warm_keyer.count("errors")
            log.exception("render failed")
            text = str(exc).splitlines()[0] if str(exc) else ""
            return {"ok": False, "error": f"{type(exc).__name__}: {text}"}

    def _render(self, msg: dict) -> dict:
        t0 = time.perf_counter()
        settings = Settings.from_json(msg.get("settings") or {})
        width, height = whole(msg["width"], "width"), whole(msg["height"], "height")
        window = msg["window"]
        if not isinstance(window, list) or len(window) != 4:
            raise ValueError("window wants four whole numbers [x0, y0, x1, y1]")
        x0, y0, x1, y1 = (whole(v, "window") for v in window)
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise ValueError(f"frame size {width}x{height} outside 1..{MAX_SIDE}")
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise ValueError(f"window {[x0, y0, x1, y1]} outside the {width}x{height} frame")
        in_off = whole(msg.get("in_offset", 0), "in_offset")
        out_off = whole(msg["out_offset"], "out_offset")
        offsets = extra_offsets(msg.get("inputs"))
        n_in = width * height * IN_CHANNELS * FLOAT_BYTES
        n_out = (x1 - x0) * (y1 - y0) * OUT_CHANNELS * FLOAT_BYTES
        self.warm_keyer.count("renders")
        with open_shared(str(msg["shm"])) as fd:
            _check_model_not_written(settings, str(msg["shm"]))
            size = os.fstat(fd).st_size
            if min(in_off, out_off) < 0 or in_off + n_in > size or out_off + n_out > size:
                raise ValueError("frame or window does not fit the shared memory")
            if not (out_off >= in_off + n_in or out_off + n_out <= in_off):
                raise ValueError("input and output regions overlap")
            # Copied first (one memcpy's worth): hashing and keying then never touch the file.
            rgb = np.empty((height, width, IN_CHANNELS), np.float32)
            read_shared(fd, in_off, rgb)
            extras = {}
            for name, off in sorted(offsets.items()):
                n_extra = width * height * EXTRA_INPUTS[name] * FLOAT_BYTES
                if off < 0 or off + n_extra > size:
                    raise ValueError(f"input {name} does not fit the shared memory")
                if not (out_off >= off + n_extra or out_off + n_out <= off):
                    raise ValueError(f"input {name} and the output region overlap")
                shape = (height, width) if EXTRA_INPUTS[name] == 1 else (height, width, EXTRA_INPUTS[name])
                extras[name] = np.empty(shape, np.float32)
                read_shared(fd, off, extras[name])
            keyed, in_space, cached = self.warm_keyer.keyed(
                inputs_digest(rgb, extras), (height, width), lambda: rgb, settings, extras
            )
            pixels = compose_window(keyed, (x0, y0, x1, y1), in_space, settings)
            write_shared(fd, out_off, pixels)
        seconds = time.perf_counter() - t0
        log.debug(
            "%dx%d window %s %s in %.3fs",
            width,
            height,
            (x0, y0, x1, y1),
            "cached" if cached else "keyed",
            seconds,
        )
        return {"ok": True, "cached": cached, "seconds": round(seconds, 4)}
