"""The keyer the worker keeps warm: backends loaded once, keyed frames cached by content.

A host asks for several render windows (and threads) of one frame; the whole frame is keyed
once through the render's Keyer (engine/keyer.py) and each window composed from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..engine import colour
from ..engine.compositor_inputs import FrameInputs, frame_inputs
from ..engine.errors import BackendError, GsRenderError, InputError
from ..engine.formats import AlphaMode, OutputFormat
from ..engine.keyer import KeyedFrame, Keyer, KeySettings
from ..engine.output import OutputSettings, compose_output
from .protocol import (
    Settings,
)

log = logging.getLogger("gsrender.serve")


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
        fmt = OutputFormat.PNG if bits else OutputFormat.EXR
        out = OutputSettings(alpha_mode=AlphaMode(settings.output), png_bits=bits or 8)
        pixels, _ = compose_output(part, fmt, in_space, out)
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
    despot: int
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
                backend = create_backend(
                    key.backend if key.keyer == "neural" else "auto",
                    model=key.model or None,
                    keyer=key.keyer,
                    threads=self.threads,
                )
                note = backend.auto_note
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
            despot=settings.despot,
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
        """The render's Keyer on one frame (engine/keyer.py), inference under the backend's lock."""
        _check_finite(rgb, "source")
        backend, lock = self.backend(bkey)
        key_settings = KeySettings(settings.screen_colour, 0, settings.despill, settings.despot)  # type: ignore[arg-type]
        keyer = Keyer(backend, key_settings)
        plate = keyer.to_working(rgb, in_space)
        inputs = _frame_inputs(plate, extras, in_space, settings) if extras else None
        frame = keyer.prepare(plate, inputs)
        try:
            with lock:
                alpha, bg = keyer.infer(frame)
        except GsRenderError:
            raise
        except Exception as exc:
            raise BackendError(
                None, f"inference failed: {str(exc).splitlines()[0] if str(exc) else exc}"
            ) from None
        return keyer.finish(frame, alpha, bg)

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
