"""`gsrender serve`: the local worker process behind the GsKey OpenFX plugin.

Why a separate process: a compositing host must never load Python, torch or CUDA into
itself (version clashes with its own, and a crash there takes the artist's session
down). The plugin starts this worker on demand, sends whole frames through shared
memory and a Unix socket (PROTOCOL.md), and gets back only the render window.

Why whole frames: the keyer's per-frame guides (screen estimate) need the full frame,
and keying it with the same engine calls as the CLI (prepare_frame -> infer_frame ->
finish_frame, same colour conversions, same output composition) is what makes the
plugin's pixels equal the CLI's. The last keyed frames are cached by FrameKey (the whole
frame's inputs and the settings that change the key, never the window), so the several
render windows and threads a host uses for one frame cost one inference; models stay
loaded across frames, instances and hosts until the worker has been idle for
--idle-timeout seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import logging
import math
import os
import re
import resource
import signal
import socket
import stat
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine import allocator, colour, overwrite_guard
from ..engine.compositor_inputs import FrameInputs, frame_inputs
from ..engine.errors import BackendError, GsRenderError, InputError
from ..engine.keyer import KeyedFrame, finish_frame, infer_frame, prepare_frame
from ..engine.output import OutputSettings, compose_output
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
    default_socket_path,
    extra_offsets,
    recv_message,
    request,
    send_message,
    whole,
)

log = logging.getLogger("gsrender.serve")

SHM_DIR = Path("/dev/shm")
# Names the plugin creates: /gsrender-<host pid>-<counter>-<nonce>
SHM_NAME = re.compile(r"^/?(gsrender-(\d+)-[A-Za-z0-9-]+)$")
DEFAULT_IDLE_TIMEOUT = 900.0
SWEEP_SECONDS = 60.0
# A client that connects and then sends nothing (or half a message) is dropped after this:
# the plugin writes each request at once, and an open connection keeps the worker from idling out.
READ_TIMEOUT = 30.0
# accept() failing for want of descriptors or memory: the worker sheds connections and serves on.
OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class AlreadyRunning(Exception):
    """Another worker holds the socket's lock file: it serves the plugin already."""


# ---------------------------------------------------------------- shared memory


@contextlib.contextmanager
def open_shared(name: str) -> Iterator[int]:
    """Open the plugin's shared-memory file; only files of this user under /dev/shm.

    The file is read and written with pread/pwrite, never mapped: a client that truncates
    it mid-render then gets a short read (an error reply) instead of killing the worker
    with SIGBUS.
    """
    match = SHM_NAME.match(name or "")
    if not match:
        raise ValueError(f"bad shared-memory name '{name}'")
    path = SHM_DIR / match.group(1)
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(None, f"shared memory {path} is gone (the host cancelled the render?)") from None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid():
            raise ValueError(f"shared memory {path} belongs to another user")
        yield fd
    finally:
        os.close(fd)


def read_shared(fd: int, offset: int, out: np.ndarray) -> None:
    """Fill ``out`` from the file at ``offset``; a short file is the client's error, not a crash."""
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n <= 0:
            raise InputError(None, "shared memory is shorter than the frame (the host truncated it?)")
        done += n


def write_shared(fd: int, offset: int, data: np.ndarray) -> None:
    """Write the answer; refuses a file truncated below the answer's end instead of growing it."""
    view = memoryview(np.ascontiguousarray(data)).cast("B")
    if os.fstat(fd).st_size < offset + len(view):
        raise InputError(None, "shared memory is shorter than the answer (the host truncated it?)")
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_shm(directory: Path = SHM_DIR) -> int:
    """Remove shared-memory files left by host processes that died mid-render."""
    removed = 0
    if not directory.is_dir():
        return 0
    uid = os.getuid()
    for entry in os.scandir(directory):
        match = SHM_NAME.match(entry.name)
        if not match:
            continue
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_uid == uid and not _pid_alive(int(match.group(2))):
                os.unlink(entry.path)
                removed += 1
    return removed


# ---------------------------------------------------------------- keying


def input_space(settings: Settings) -> str:
    """The plugin's colour rule: an explicit name wins; float input is scene-linear
    Rec.709 (like EXR input to the CLI), 8/16-bit input is sRGB (like PNG input)."""
    if settings.colorspace:
        return colour.resolve_colorspace(settings.colorspace)
    return colour.WORKING_SPACE if settings.source_depth in ("float", "half") else colour.SRGB_SPACE


def compose_window(
    keyed: KeyedFrame, window: tuple[int, int, int, int], in_space: str, settings: Settings
) -> np.ndarray:
    """RGBA float32 for the window (x0, y0, x1, y1; top-down), in the input colour space.

    Premultiplied and straight go through the CLI's own compose_output, so they are the
    CLI's EXR (premultiplied) and PNG-style (straight) pixels; every step is per pixel,
    so composing a window equals cropping the composed frame.
    """
    x0, y0, x1, y1 = window
    alpha = keyed.alpha[y0:y1, x0:x1]
    premult = keyed.premult[y0:y1, x0:x1]
    if settings.output in ("premultiplied", "straight"):
        part = KeyedFrame(alpha=alpha, premult=premult, screen=keyed.screen)
        # integer hosts get the CLI's PNG rule: RGB 0 where alpha rounds to code 0
        bits = {"byte": 8, "short": 16}.get(settings.source_depth)
        target = Path("plugin.png" if bits else "plugin.exr")
        out = OutputSettings(alpha_mode=settings.output, png_bits=bits or 8)
        pixels, _ = compose_output(part, target, in_space, out)
        return pixels
    if settings.output == "matte":
        return np.ascontiguousarray(np.repeat(alpha[..., None], 4, axis=2), dtype=np.float32)
    # composite over a colour given in the input space; mixed in linear light
    bg_in = np.asarray(settings.composite_colour, np.float32).reshape(1, 1, 3)
    bg = colour.convert(bg_in, in_space, colour.WORKING_SPACE)
    comp = premult + (1.0 - alpha[..., None]) * bg
    rgb = colour.convert(np.ascontiguousarray(comp, dtype=np.float32), colour.WORKING_SPACE, in_space)
    return np.concatenate([rgb, np.ones_like(alpha)[..., None]], axis=2).astype(np.float32)


@dataclass(frozen=True)
class BackendKey:
    model: str
    backend: str
    keyer: str


@dataclass(frozen=True)
class FrameKey:
    """What a keyed frame depends on, and nothing else.

    The render window, the output mode and the composite colour are left out (they apply
    after keying), so every window and output mode of one frame shares one inference; every
    input pixel and every setting that changes the key is in, so a change to any of them
    keys again. invert_garbage counts only with a garbage matte connected.
    """

    inputs: str  # inputs_digest: the whole frame of every connected input
    shape: tuple[int, int]
    backend: BackendKey
    in_space: str
    despill: float
    screen_colour: tuple[float, float, float] | None
    invert_garbage: bool


def inputs_digest(rgb: np.ndarray, extras: dict[str, np.ndarray]) -> str:
    """BLAKE2b of the whole-frame pixels of the source and of every connected optional input,
    each under its name, shape and type: computed once per request, over all of each frame."""
    digest = hashlib.blake2b(digest_size=16)
    for name, pixels in [("source", rgb), *sorted(extras.items())]:
        pixels = np.ascontiguousarray(pixels)
        digest.update(f"{name} {pixels.shape} {pixels.dtype.str};".encode())
        digest.update(memoryview(pixels).cast("B"))
    return digest.hexdigest()


@dataclass
class _Pending:
    """A keyed frame being computed; later requests for it wait instead of recomputing."""

    event: threading.Event = field(default_factory=threading.Event)
    result: KeyedFrame | None = None
    error: BaseException | None = None


class WarmKeyer:
    """The keyer the worker keeps warm between requests.

    Backends stay loaded per (model, backend, keyer) and keyed frames are cached by content,
    so a host's many render windows of one frame cost one inference.
    """

    def __init__(self, cache_frames: int = 2, threads: int = 0):
        self.cache_frames = max(1, cache_frames)
        self.threads = threads
        self._backends: dict[BackendKey, tuple[object, threading.Lock]] = {}
        self._backends_lock = threading.Lock()
        self._cache: OrderedDict[FrameKey, KeyedFrame] = OrderedDict()
        self._pending: dict[FrameKey, _Pending] = {}
        self._lock = threading.Lock()
        self.counts = {"renders": 0, "keyed": 0, "cache_hits": 0, "errors": 0}

    @staticmethod
    def backend_key(settings: Settings) -> BackendKey:
        if settings.keyer == "classic":
            return BackendKey("", "classic", "classic")  # model and backend do not apply
        return BackendKey(settings.model, settings.backend, settings.keyer)

    def backend(self, key: BackendKey) -> tuple[object, threading.Lock]:
        """Load a backend once; its lock serialises inference (GPU backends are not reentrant)."""
        from ..engine.backends import create_backend

        with self._backends_lock:
            entry = self._backends.get(key)
            if entry is None:
                backend, note = create_backend(
                    key.backend if key.keyer == "neural" else "auto",
                    model=key.model or None,
                    keyer=key.keyer,
                    threads=self.threads,
                )
                log.info("backend %s%s", backend.describe(), f" [auto: {note}]" if note else "")
                entry = (backend, threading.Lock())
                self._backends[key] = entry
        return entry

    def frame_key(
        self, digest: str, shape: tuple[int, int], settings: Settings, extras: dict | None = None
    ) -> FrameKey:
        """The cache key of a frame whose inputs hash to ``digest`` (inputs_digest)."""
        return FrameKey(
            inputs=digest,
            shape=shape,
            backend=self.backend_key(settings),
            in_space=input_space(settings),
            despill=settings.despill,
            screen_colour=settings.screen_colour,
            invert_garbage=settings.invert_garbage and "garbage" in (extras or {}),
        )

    def count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def keyed(
        self,
        digest: str,
        shape: tuple[int, int],
        load: Callable[[], np.ndarray],
        settings: Settings,
        extras: dict[str, np.ndarray] | None = None,
    ) -> tuple[KeyedFrame, str, bool]:
        """The keyed frame for these pixels and settings: (frame, input space, was cached).

        ``extras``: the optional inputs (protocol EXTRA_INPUTS); ``digest`` must cover them
        with the source (inputs_digest).
        """
        key = self.frame_key(digest, shape, settings, extras)
        in_space, bkey = key.in_space, key.backend
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.counts["cache_hits"] += 1
                return hit, in_space, True
            pending = self._pending.get(key)
            owner = pending is None
            if owner:
                pending = self._pending[key] = _Pending()
        if not owner:
            pending.event.wait()
            if pending.error is not None:
                raise pending.error
            self.count("cache_hits")
            return pending.result, in_space, True  # type: ignore[return-value]
        try:
            result = self._compute(load(), in_space, bkey, settings, extras or {})
            pending.result = result
            with self._lock:
                self._cache[key] = result
                while len(self._cache) > self.cache_frames:
                    self._cache.popitem(last=False)
                self.counts["keyed"] += 1
            return result, in_space, False
        except BaseException as exc:
            pending.error = exc
            raise
        finally:
            with self._lock:
                self._pending.pop(key, None)
            pending.event.set()

    def _compute(
        self, rgb: np.ndarray, in_space: str, bkey: BackendKey, settings: Settings, extras: dict
    ) -> KeyedFrame:
        """The CLI's stages in the CLI's order (engine/frame_pipeline.py), on one frame."""
        _check_finite(rgb, "source")
        plate = colour.convert(rgb, in_space, colour.WORKING_SPACE)
        screen = None if settings.screen_colour is None else np.asarray(settings.screen_colour, np.float32)
        backend, lock = self.backend(bkey)
        inputs = _frame_inputs(plate, extras, in_space, settings) if extras else None
        frame = prepare_frame(plate, screen, backend.info.stride, inputs, backend.info.clean_plate_guide)
        try:
            with lock:
                alpha, bg = infer_frame(frame, backend, 0)  # type: ignore[arg-type]
        except GsRenderError:
            raise
        except Exception as exc:
            raise BackendError(
                None, f"inference failed: {str(exc).splitlines()[0] if str(exc) else exc}"
            ) from None
        return finish_frame(frame, alpha, bg, settings.despill)

    def stats(self) -> dict:
        with self._lock:
            counts = dict(self.counts)
            cached = len(self._cache)
        with self._backends_lock:
            backends = [b.describe() for b, _ in self._backends.values()]  # type: ignore[attr-defined]
        return {**counts, "cached_frames": cached, "backends": backends}

    def close(self) -> None:
        with self._backends_lock:
            for backend, _ in self._backends.values():
                with contextlib.suppress(Exception):
                    backend.close()  # type: ignore[attr-defined]
            self._backends.clear()


def _check_finite(pixels: np.ndarray, what: str) -> None:
    finite = np.isfinite(pixels) if pixels.ndim == 2 else np.isfinite(pixels).all(axis=2)
    if not finite.all():
        y, x = (int(v) for v in np.argwhere(~finite)[0])
        raise InputError(
            None, f"{int(np.count_nonzero(~finite))} {what} pixels are NaN or Inf (first at x={x}, row {y})"
        )


def _frame_inputs(plate: np.ndarray, extras: dict, in_space: str, settings: Settings) -> FrameInputs:
    """The plugin's optional clips as the CLI's FrameInputs: mattes clipped to [0, 1], the clean
    plate converted from the input colour space like the source, both checked as the CLI checks them."""
    names = {"garbage": "GarbageMatte", "core": "CoreMatte", "clean_plate": "CleanPlate"}
    for name, pixels in extras.items():
        _check_finite(pixels, names[name])
    garbage, core, clean = (extras.get(n) for n in ("garbage", "core", "clean_plate"))
    garbage = None if garbage is None else np.clip(garbage, 0.0, 1.0)
    core = None if core is None else np.clip(core, 0.0, 1.0)
    if clean is not None:
        clean = colour.convert(clean, in_space, colour.WORKING_SPACE)
    return frame_inputs(plate, garbage, core, clean, settings.invert_garbage, "CleanPlate")


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


# ---------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gsrender serve",
        description="Run the local gsrender worker that the GsKey OpenFX plugin talks to. The plugin "
        "starts it on demand; run it by hand (-v) to watch requests in the terminal.",
    )
    p.add_argument("--socket", help=f"Unix socket path (default: {default_socket_path()})")
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        help=f"exit after this many seconds without requests (0 = never; default {DEFAULT_IDLE_TIMEOUT:g})",
    )
    p.add_argument(
        "--cache-frames",
        type=int,
        default=2,
        help="keyed frames kept for further render windows of the same frame (default 2)",
    )
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = auto)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return p


def main(argv: list[str] | None = None) -> int:
    """`gsrender serve`: run the worker until idle or signalled; errors end as every verb's do."""
    from gsrender.engine.command import run_command

    return run_command(_main, argv, "serve")


def _main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not math.isfinite(args.idle_timeout) or args.idle_timeout < 0:
        parser.error(f"--idle-timeout must be a finite number of seconds, 0 or more, got {args.idle_timeout}")
    if args.cache_frames < 1 or args.threads < 0:
        parser.error("--cache-frames must be 1 or more and --threads 0 (auto) or more")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s gsrender serve[%(process)d]: %(message)s",
        stream=sys.stderr,
    )
    path = Path(args.socket).expanduser() if args.socket else default_socket_path()
    allocator.tune_for_frames()
    worker = Worker(path, WarmKeyer(args.cache_frames, args.threads), args.idle_timeout)
    try:
        worker.bind()
    except AlreadyRunning:
        log.info("another worker already serves %s", path)
        return 0
    except OSError as exc:
        print(f"gsrender serve: error: cannot listen on {path}: {exc}", file=sys.stderr)
        return 1

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d, exiting", signum)
        worker.stop()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
