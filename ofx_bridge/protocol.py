"""The wire format between the OpenFX plugin (C) and the gsrender worker (Python).

One request and one reply per connection turn, each a 4-byte big-endian length followed
by a UTF-8 JSON object. Pixels never travel on the socket: they sit in a shared-memory
file under /dev/shm that the plugin creates, fills and unlinks (PROTOCOL.md). Keeping the
header tiny and the framing trivial is what lets the C side stay a few hundred lines
with no JSON library.

This module is the Python half of that contract (the worker and the tests use it); the
C half lives in ofx_bridge/plugin/src/gskey_client.c. Change both together and bump VERSION.
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from ..engine.despot import DEFAULT_SIZE as DESPOT_DEFAULT
from ..engine.despot import checked_size as checked_despot
from ..engine.encoding import HALF_MAX
from ..engine.environment import env_folder, env_path

VERSION = 2  # 2: optional garbage matte, core matte and clean plate
HEADER = struct.Struct(">I")
MAX_MESSAGE = 1 << 20  # JSON headers only; pixels go through shared memory
MAX_DEPTH = 8  # requests nest three deep; deeper JSON is refused before it is parsed
MAX_SIDE = 1 << 16  # frame width/height limit (a 64K frame is 48 GiB of float RGB)
MAX_COLOUR = HALF_MAX  # colours beyond the largest half float are typos (and overflow float32 maths)
MAX_SOCKET_PATH = 107  # bytes of an AF_UNIX socket address (sun_path), less its NUL
FLOAT_BYTES = 4
IN_CHANNELS = 3  # the plugin sends straight RGB, float32, rows top-down
OUT_CHANNELS = 4  # the worker answers RGBA, float32, rows top-down, render window only

# Optional inputs of a render request (the plugin's optional clips): name -> float32 channels
# per pixel in the shared memory, W x H, rows top-down like the source.
EXTRA_INPUTS = {"garbage": 1, "core": 1, "clean_plate": 3}

OUTPUT_MODES = ("premultiplied", "straight", "matte", "composite")
SOURCE_DEPTHS = ("float", "half", "short", "byte")


class ProtocolError(Exception):
    """The peer sent something that is not a well-formed message of this protocol."""


class BadMessage(ProtocolError):
    """A whole message arrived, but its body is not a UTF-8 JSON object: the framing still holds,
    so the worker answers it with an error reply instead of dropping the connection."""


def default_socket_path() -> Path:
    """Per-user socket: $GSRENDER_SOCKET, else $XDG_RUNTIME_DIR/gsrender, else $TMPDIR|/tmp/gsrender-UID.

    The plugin computes the same path (gskey_client.c) so both find each other without
    configuration; a per-user folder (mode 0700) keeps other users off the worker. The same
    rules on both sides: GSRENDER_SOCKET must be an absolute path of at most 107 bytes without
    control characters (UsageError otherwise); XDG_RUNTIME_DIR and TMPDIR count only when they
    are absolute paths to folders.
    """
    explicit = env_path("GSRENDER_SOCKET", max_bytes=MAX_SOCKET_PATH)
    if explicit is not None:
        return explicit
    runtime = env_folder("XDG_RUNTIME_DIR")
    if runtime is not None and runtime.is_dir():
        return runtime / "gsrender" / "worker.sock"
    tmp = env_folder("TMPDIR")
    if tmp is None or not tmp.is_dir():
        tmp = Path("/tmp")
    return tmp / f"gsrender-{os.getuid()}" / "worker.sock"


def encode(message: dict) -> bytes:
    """Length-prefixed compact JSON; replies put "ok" first (the C side checks `{"ok":true`)."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    if len(body) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE}")
    return HEADER.pack(len(body)) + body


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def send_message(sock: socket.socket, message: dict) -> None:
    sock.sendall(encode(message))


def recv_message(sock: socket.socket) -> dict | None:
    """Next message, or None when the peer closed the connection between messages."""
    head = _recv_exact(sock, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_MESSAGE:
        raise ProtocolError(f"message length {size} exceeds {MAX_MESSAGE}")
    body = _recv_exact(sock, size)
    if body is None:
        raise ProtocolError("connection closed in the middle of a message")
    return decode_body(body)


def decode_body(body: bytes) -> dict:
    """A message body as a JSON object; BadMessage naming what is wrong with it otherwise."""
    if _nesting(body) > MAX_DEPTH:
        raise BadMessage(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadMessage(
            f"the request is not valid UTF-8 (byte 0x{body[exc.start]:02X} at byte {exc.start + 1}): "
            "a file name or setting in another encoding? rename it"
        ) from None
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BadMessage(f"not JSON: {str(exc)[:200] or type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise BadMessage("a message must be a JSON object")
    return message


def _nesting(body: bytes) -> int:
    """Upper bound of the JSON nesting depth (brackets inside strings count too: that only errs safe)."""
    depth = deepest = 0
    for byte in body.translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                break
    return deepest


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def out_offset(width: int, height: int) -> int:
    """Where the answer starts in the shared file: after the input, 64-byte aligned."""
    size = width * height * IN_CHANNELS * FLOAT_BYTES
    return (size + 63) // 64 * 64


@dataclass(frozen=True)
class Settings:
    """Everything in a render request that changes pixels (the plugin's parameters)."""

    model: str = ""  # "" = the bundled model
    backend: str = "auto"
    keyer: str = "neural"
    despill: float = 1.0
    despot: int = DESPOT_DEFAULT  # largest island on the screen keyed out, pixels; 0 off
    output: str = "premultiplied"
    composite_colour: tuple[float, float, float] = (0.0, 0.0, 0.0)
    screen_colour: tuple[float, float, float] | None = None  # None = estimated per frame
    colorspace: str = ""  # "" = auto from source_depth (float: linear Rec.709, integer: sRGB)
    source_depth: str = "float"
    invert_garbage: bool = False  # the garbage matte is 0 on the screen (--invert-garbage)

    @classmethod
    def from_json(cls, data: dict) -> Settings:
        """Validate a request's settings; raises ValueError with a message for the user."""
        if not isinstance(data, dict):
            raise ValueError("settings must be an object")
        output = str(data.get("output", "premultiplied"))
        if output not in OUTPUT_MODES:
            raise ValueError(f"unknown output mode '{output}' ({', '.join(OUTPUT_MODES)})")
        depth = str(data.get("source_depth", "float"))
        if depth not in SOURCE_DEPTHS:
            raise ValueError(f"unknown source depth '{depth}'")
        screen = data.get("screen_colour")
        despill = _number(data.get("despill", 1.0), "despill")
        if not 0.0 <= despill <= 1.0:
            raise ValueError(f"despill must be between 0 and 1, got {despill:g}")
        despot = whole(data.get("despot", DESPOT_DEFAULT), "despot")
        try:
            checked_despot(despot)
        except ValueError as exc:
            raise ValueError(f"despot {exc}") from None
        screen_rgb = None if screen is None else _rgb(screen, "screen_colour")
        if screen_rgb is not None and (min(screen_rgb) < 0 or not 0 < max(screen_rgb) <= MAX_COLOUR):
            raise ValueError(f"screen_colour wants linear values from 0 to {MAX_COLOUR:g}, not all 0")
        return cls(
            model=str(data.get("model") or ""),
            backend=str(data.get("backend") or "auto"),
            keyer=str(data.get("keyer") or "neural"),
            despill=despill,
            despot=despot,
            output=output,
            composite_colour=_rgb(data.get("composite_colour", (0.0, 0.0, 0.0)), "composite_colour"),
            screen_colour=screen_rgb,
            colorspace=str(data.get("colorspace") or ""),
            source_depth=depth,
            invert_garbage=_flag(data.get("invert_garbage", False), "invert_garbage"),
        )

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "backend": self.backend,
            "keyer": self.keyer,
            "despill": self.despill,
            "despot": self.despot,
            "output": self.output,
            "composite_colour": list(self.composite_colour),
            "screen_colour": None if self.screen_colour is None else list(self.screen_colour),
            "colorspace": self.colorspace,
            "source_depth": self.source_depth,
            "invert_garbage": self.invert_garbage,
        }


def extra_offsets(value: object) -> dict[str, int]:
    """A render request's `inputs`: {name: offset} of the optional inputs sent (EXTRA_INPUTS)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("inputs must be an object")
    unknown = set(value) - set(EXTRA_INPUTS)
    if unknown:
        raise ValueError(f"unknown inputs {sorted(unknown)} ({', '.join(EXTRA_INPUTS)})")
    return {name: whole(offset, f"inputs.{name}") for name, offset in value.items()}


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} wants true or false, got {value!r}"[:200])
    return value


def _number(value: object, name: str) -> float:
    """A finite JSON number (NaN/Inf would end up in every output pixel)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} wants a finite number, got {value!r}"[:200])
    return float(value)


def whole(value: object, name: str) -> int:
    """A JSON integer (not a float, bool or string that happens to convert)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} wants a whole number, got {value!r}"[:200])
    return value


def _rgb(value: object, name: str) -> tuple[float, float, float]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError(f"{name} wants three numbers R,G,B")
    rgb = tuple(_number(v, name) for v in value)
    if max(abs(v) for v in rgb) > MAX_COLOUR:
        raise ValueError(f"{name} values must be within +-{MAX_COLOUR:g}")
    return rgb  # type: ignore[return-value]


def request(path: str | os.PathLike, message: dict, timeout: float | None = 30.0) -> dict:
    """One request/reply turn on a fresh connection (tests and tools; the plugin is in C)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(os.fspath(path))
        send_message(sock, {"version": VERSION, **message})
        reply = recv_message(sock)
    if reply is None:
        raise ProtocolError("worker closed the connection without answering")
    return reply
