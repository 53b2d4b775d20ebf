"""A small OpenFX image-effect host in Python ctypes, to load and drive the GsKey bundle.

It implements what a real host gives a plugin (property, image-effect, parameter,
memory, multi-thread and message suites) with Python objects behind opaque handles,
so the tests exercise the plugin through its real binary interface: dlopen, the two
exported symbols, setHost, and the actions a host sends.

Variadic suite functions (paramGetValue*, message*) are implemented as fixed-argument
callbacks: on x86-64 System V, variadic arguments travel in the same registers as
fixed ones, which is what every C host relies on too.
"""

from __future__ import annotations

import ctypes
import math
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_double,
    c_int,
    c_size_t,
    c_uint,
    c_void_p,
)
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

OK, FAILED, ERR_UNKNOWN, ERR_BAD_HANDLE, ERR_BAD_INDEX, ERR_UNSUPPORTED = 0, 1, 3, 9, 10, 5
REPLY_DEFAULT = 14

# ---------------------------------------------------------------- C declarations

H = c_void_p
P_SET_PTR = CFUNCTYPE(c_int, H, c_char_p, c_int, c_void_p)
P_SET_STR = CFUNCTYPE(c_int, H, c_char_p, c_int, c_char_p)
P_SET_DBL = CFUNCTYPE(c_int, H, c_char_p, c_int, c_double)
P_SET_INT = CFUNCTYPE(c_int, H, c_char_p, c_int, c_int)
P_SET_PTRN = CFUNCTYPE(c_int, H, c_char_p, c_int, POINTER(c_void_p))
P_SET_STRN = CFUNCTYPE(c_int, H, c_char_p, c_int, POINTER(c_char_p))
P_SET_DBLN = CFUNCTYPE(c_int, H, c_char_p, c_int, POINTER(c_double))
P_SET_INTN = CFUNCTYPE(c_int, H, c_char_p, c_int, POINTER(c_int))
P_GET_PTR = CFUNCTYPE(c_int, H, c_char_p, c_int, POINTER(c_void_p))
P_GET_DBL = CFUNCTYPE(c_int, H, c_char_p, c_int, POINTER(c_double))
P_GET_INT = CFUNCTYPE(c_int, H, c_char_p, c_int, POINTER(c_int))
P_RESET = CFUNCTYPE(c_int, H, c_char_p)
P_DIM = CFUNCTYPE(c_int, H, c_char_p, POINTER(c_int))


class PropertySuiteV1(Structure):
    _fields_ = [
        ("propSetPointer", P_SET_PTR),
        ("propSetString", P_SET_STR),
        ("propSetDouble", P_SET_DBL),
        ("propSetInt", P_SET_INT),
        ("propSetPointerN", P_SET_PTRN),
        ("propSetStringN", P_SET_STRN),
        ("propSetDoubleN", P_SET_DBLN),
        ("propSetIntN", P_SET_INTN),
        ("propGetPointer", P_GET_PTR),
        ("propGetString", P_GET_PTR),  # char **: the address of a host-owned string
        ("propGetDouble", P_GET_DBL),
        ("propGetInt", P_GET_INT),
        ("propGetPointerN", P_GET_PTR),
        ("propGetStringN", P_GET_PTR),
        ("propGetDoubleN", P_GET_DBL),
        ("propGetIntN", P_GET_INT),
        ("propReset", P_RESET),
        ("propGetDimension", P_DIM),
    ]


class RectD(Structure):
    _fields_ = [("x1", c_double), ("y1", c_double), ("x2", c_double), ("y2", c_double)]


E_HANDLE_OUT = CFUNCTYPE(c_int, H, POINTER(c_void_p))
E_CLIP_DEFINE = CFUNCTYPE(c_int, H, c_char_p, POINTER(c_void_p))
E_CLIP_HANDLE = CFUNCTYPE(c_int, H, c_char_p, POINTER(c_void_p), POINTER(c_void_p))
E_CLIP_IMAGE = CFUNCTYPE(c_int, H, c_double, POINTER(RectD), POINTER(c_void_p))
E_RELEASE = CFUNCTYPE(c_int, H)
E_CLIP_ROD = CFUNCTYPE(c_int, H, c_double, POINTER(RectD))
E_ABORT = CFUNCTYPE(c_int, H)
E_MEM_ALLOC = CFUNCTYPE(c_int, H, c_size_t, POINTER(c_void_p))


class ImageEffectSuiteV1(Structure):
    _fields_ = [
        ("getPropertySet", E_HANDLE_OUT),
        ("getParamSet", E_HANDLE_OUT),
        ("clipDefine", E_CLIP_DEFINE),
        ("clipGetHandle", E_CLIP_HANDLE),
        ("clipGetPropertySet", E_HANDLE_OUT),
        ("clipGetImage", E_CLIP_IMAGE),
        ("clipReleaseImage", E_RELEASE),
        ("clipGetRegionOfDefinition", E_CLIP_ROD),
        ("abort", E_ABORT),
        ("imageMemoryAlloc", E_MEM_ALLOC),
        ("imageMemoryFree", E_RELEASE),
        ("imageMemoryLock", E_HANDLE_OUT),
        ("imageMemoryUnlock", E_RELEASE),
    ]


PA_DEFINE = CFUNCTYPE(c_int, H, c_char_p, c_char_p, POINTER(c_void_p))
PA_GET_HANDLE = CFUNCTYPE(c_int, H, c_char_p, POINTER(c_void_p), POINTER(c_void_p))
# variadic value accessors: up to four pointers after the handle (and the time)
PA_GET_VALUE = CFUNCTYPE(c_int, H, c_void_p, c_void_p, c_void_p, c_void_p)
PA_GET_VALUE_T = CFUNCTYPE(c_int, H, c_double, c_void_p, c_void_p, c_void_p, c_void_p)


class ParameterSuiteV1(Structure):
    _fields_ = [
        ("paramDefine", PA_DEFINE),
        ("paramGetHandle", PA_GET_HANDLE),
        ("paramSetGetPropertySet", E_HANDLE_OUT),
        ("paramGetPropertySet", E_HANDLE_OUT),
        ("paramGetValue", PA_GET_VALUE),
        ("paramGetValueAtTime", PA_GET_VALUE_T),
        ("paramGetDerivative", c_void_p),
        ("paramGetIntegral", c_void_p),
        ("paramSetValue", c_void_p),
        ("paramSetValueAtTime", c_void_p),
        ("paramGetNumKeys", c_void_p),
        ("paramGetKeyTime", c_void_p),
        ("paramGetKeyIndex", c_void_p),
        ("paramDeleteKey", c_void_p),
        ("paramDeleteAllKeys", c_void_p),
        ("paramCopy", c_void_p),
        ("paramEditBegin", c_void_p),
        ("paramEditEnd", c_void_p),
    ]


M_ALLOC = CFUNCTYPE(c_int, c_void_p, c_size_t, POINTER(c_void_p))
M_FREE = CFUNCTYPE(c_int, c_void_p)


class MemorySuiteV1(Structure):
    _fields_ = [("memoryAlloc", M_ALLOC), ("memoryFree", M_FREE)]


THREAD_FN = CFUNCTYPE(None, c_uint, c_uint, c_void_p)
T_MULTI = CFUNCTYPE(c_int, c_void_p, c_uint, c_void_p)
T_UINT_OUT = CFUNCTYPE(c_int, POINTER(c_uint))
T_SPAWNED = CFUNCTYPE(c_int)


class MultiThreadSuiteV1(Structure):
    _fields_ = [
        ("multiThread", T_MULTI),
        ("multiThreadNumCPUs", T_UINT_OUT),
        ("multiThreadIndex", T_UINT_OUT),
        ("multiThreadIsSpawnedThread", T_SPAWNED),
        ("mutexCreate", c_void_p),
        ("mutexDestroy", c_void_p),
        ("mutexLock", c_void_p),
        ("mutexUnLock", c_void_p),
        ("mutexTryLock", c_void_p),
    ]


MSG_FN = CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_p, c_char_p, c_char_p)
MSG_CLEAR = CFUNCTYPE(c_int, c_void_p)


class MessageSuiteV2(Structure):
    _fields_ = [("message", MSG_FN), ("setPersistentMessage", MSG_FN), ("clearPersistentMessage", MSG_CLEAR)]


FETCH_SUITE = CFUNCTYPE(c_void_p, c_void_p, c_char_p, c_int)


class OfxHostStruct(Structure):
    _fields_ = [("host", c_void_p), ("fetchSuite", FETCH_SUITE)]


ENTRY = CFUNCTYPE(c_int, c_char_p, c_void_p, c_void_p, c_void_p)
SET_HOST = CFUNCTYPE(None, POINTER(OfxHostStruct))


class OfxPlugin(Structure):
    _fields_ = [
        ("pluginApi", c_char_p),
        ("apiVersion", c_int),
        ("pluginIdentifier", c_char_p),
        ("pluginVersionMajor", c_uint),
        ("pluginVersionMinor", c_uint),
        ("setHost", SET_HOST),
        ("mainEntry", ENTRY),
    ]


# ---------------------------------------------------------------- host objects


class PropertySet:
    """Named multi-dimensional values; strings kept alive as C buffers for propGetString."""

    def __init__(self, values: dict | None = None):
        self.values: dict[str, list] = {}
        self._cstrings: dict[tuple[str, int, bytes], ctypes.Array] = {}
        for k, v in (values or {}).items():
            self.values[k] = list(v) if isinstance(v, list | tuple) else [v]

    def set(self, name: str, index: int, value: object) -> None:
        vals = self.values.setdefault(name, [])
        while len(vals) <= index:
            vals.append(None)
        vals[index] = value

    def get(self, name: str, index: int = 0) -> object:
        return self.values[name][index]

    def cstring(self, name: str, index: int) -> int:
        """Each value's buffer lives as long as the set: another thread may still read one handed out."""
        data = (self.values[name][index] or "").encode()
        buf = self._cstrings.get((name, index, data))
        if buf is None:
            buf = self._cstrings.setdefault((name, index, data), ctypes.create_string_buffer(data))
        return ctypes.addressof(buf)


@dataclass
class Param:
    kind: str
    name: str
    props: PropertySet
    value: object = None


@dataclass
class Image:
    """A host image: pixels in a byte buffer with explicit bounds and row bytes."""

    buffer: np.ndarray  # uint8, owns the memory
    data: int  # address of pixel (x1, y1)
    bounds: tuple[int, int, int, int]
    row_bytes: int
    depth: str = "OfxBitDepthFloat"
    components: str = "OfxImageComponentRGBA"

    @classmethod
    def allocate(
        cls,
        bounds: tuple[int, int, int, int],
        channels: int = 4,
        dtype=np.float32,
        pad: int = 0,
        negative_rows: bool = False,
    ) -> Image:
        """Rows `pad` bytes longer than the pixels; bottom row first unless negative_rows."""
        x1, y1, x2, y2 = bounds
        w, h = x2 - x1, y2 - y1
        item = np.dtype(dtype).itemsize
        row = w * channels * item + pad
        buf = np.zeros(row * h + 64, np.uint8)
        base = buf.ctypes.data
        depth = {1: "OfxBitDepthByte", 2: "OfxBitDepthShort", 4: "OfxBitDepthFloat"}[item]
        comps = {1: "OfxImageComponentAlpha", 3: "OfxImageComponentRGB", 4: "OfxImageComponentRGBA"}[channels]
        if negative_rows:  # top-down storage: y1 is the last row in memory
            return cls(buf, base + row * (h - 1), bounds, -row, depth, comps)
        return cls(buf, base, bounds, row, depth, comps)

    def _item(self) -> np.dtype:
        return {"OfxBitDepthByte": np.dtype(np.uint8), "OfxBitDepthShort": np.dtype(np.uint16)}.get(
            self.depth, np.dtype(np.float32)
        )

    @property
    def channels(self) -> int:
        return {"OfxImageComponentAlpha": 1, "OfxImageComponentRGB": 3}.get(self.components, 4)

    def pixels_bottom_up(self) -> np.ndarray:
        """(h, w, c) view with row 0 = y1, honouring the row stride and its sign."""
        x1, y1, x2, y2 = self.bounds
        w, h = x2 - x1, y2 - y1
        item = self._item()
        base = self.buffer.ctypes.data
        offset = self.data - base
        return np.ndarray(
            (h, w, self.channels),
            dtype=item,
            buffer=self.buffer,
            offset=offset,
            strides=(self.row_bytes, self.channels * item.itemsize, item.itemsize),
        )

    def top_down(self) -> np.ndarray:
        return self.pixels_bottom_up()[::-1]

    def crop(self, bounds: tuple[int, int, int, int]) -> Image:
        """A copy of the part inside ``bounds`` (itself when that is all of it), in a fresh buffer
        as a host allocates it, so a plugin reading past what it was handed reads none of the rest."""
        x1, y1, x2, y2 = self.bounds
        cx1, cy1 = min(max(bounds[0], x1), x2), min(max(bounds[1], y1), y2)
        cx2, cy2 = max(min(bounds[2], x2), cx1), max(min(bounds[3], y2), cy1)
        if (cx1, cy1, cx2, cy2) == self.bounds:
            return self
        part = Image.allocate((cx1, cy1, cx2, cy2), self.channels, self._item(), pad=8)
        part.pixels_bottom_up()[:] = self.pixels_bottom_up()[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
        return part


@dataclass
class Clip:
    name: str
    props: PropertySet
    image: Image | None = None  # what clipGetImage returns
    rod: tuple[float, float, float, float] = (0, 0, 0, 0)
    # What clipGetImage hands over during a render: `image` cropped to the region of interest
    # the plugin asked for on this clip (the render window where it asked none), as hosts do
    # that render their upstream graph only where an effect looks. A region named in
    # clipGetImage counts instead only where `honours_region` is set; `limit` (pixels) crops
    # whatever is asked, for a host that hands over less. `regions` records the regions named.
    honours_region: bool = False
    limit: tuple[int, int, int, int] | None = None
    regions: list = field(default_factory=list)


@dataclass
class Effect:
    props: PropertySet
    params: dict[str, Param] = field(default_factory=dict)
    param_order: list[str] = field(default_factory=list)
    param_set_props: PropertySet = field(default_factory=PropertySet)
    clips: dict[str, Clip] = field(default_factory=dict)


@dataclass
class Message:
    kind: str
    id: str
    text: str
    persistent: bool


class OfxTestHost:
    """Loads one OFX binary and drives its first plugin like a host would."""

    def __init__(self, binary: Path, threads: int = 2, message_suite: int = 2):
        self.threads = threads
        self.message_suite = message_suite  # 1: a host without persistent messages
        self.images_out = 0  # images fetched and not yet released
        self.multithread_calls = 0
        self.errors: list[str] = []  # exceptions raised inside callbacks (must stay empty)
        self.messages: list[Message] = []
        # False: a host that never asks the plugin for regions of interest (each clip's is the window)
        self.asks_roi = True
        self.render_scale = [1.0, 1.0]  # the render action's OfxImageEffectPropRenderScale
        self._render_state = threading.local()  # the regions of interest of each thread's render
        self._handed: dict[int, Image] = {}  # cropped copies, alive until released
        self._objects: dict[int, object] = {}
        self._next = 0x1000
        self._lock = threading.RLock()
        self._memory: dict[int, ctypes.Array] = {}
        self._strings: dict[bytes, ctypes.Array] = {}  # string parameter values handed out
        self._suites: dict[tuple[str, int], Structure] = {}
        self._keep: list[object] = []
        self.host_props = PropertySet(
            {
                "OfxPropName": "org.gsrender.testhost",
                "OfxPropLabel": "gsrender test host",
                "OfxImageEffectHostPropIsBackground": 1,
                "OfxImageEffectPropSupportsOverlays": 0,
                "OfxImageEffectPropSupportsMultiResolution": 1,
                "OfxImageEffectPropSupportsTiles": 1,
                "OfxImageEffectPropTemporalClipAccess": 0,
                "OfxImageEffectPropSupportedComponents": ["OfxImageComponentRGBA", "OfxImageComponentRGB"],
                "OfxImageEffectPropSupportedContexts": [
                    "OfxImageEffectContextFilter",
                    "OfxImageEffectContextGeneral",
                ],
                "OfxImageEffectPropSupportedPixelDepths": [
                    "OfxBitDepthFloat",
                    "OfxBitDepthShort",
                    "OfxBitDepthByte",
                ],
                "OfxImageEffectPropMultipleClipDepths": 0,
                "OfxImageEffectPropSupportsMultipleClipPARs": 0,
            }
        )
        self._build_suites()
        self.lib = ctypes.CDLL(str(binary), mode=ctypes.RTLD_LOCAL)
        self.lib.OfxGetNumberOfPlugins.restype = c_int
        self.lib.OfxGetPlugin.restype = POINTER(OfxPlugin)
        self.lib.OfxGetPlugin.argtypes = [c_int]
        self.plugin_count = self.lib.OfxGetNumberOfPlugins()
        self.plugin = self.lib.OfxGetPlugin(0).contents
        self._host_struct = OfxHostStruct(self.handle(self.host_props), self._fetch_cb)
        self.plugin.setHost(ctypes.byref(self._host_struct))
        self.descriptor: Effect | None = None

    # ------------------------------------------------------------ handles

    def handle(self, obj: object) -> int:
        with self._lock:
            for h, o in self._objects.items():
                if o is obj:
                    return h
            h = self._next
            self._next += 16
            self._objects[h] = obj
            return h

    def obj(self, h: int | None) -> object:
        try:
            return self._objects[h or 0]
        except KeyError:
            raise LookupError(f"bad handle {h}") from None

    def props_of(self, h: int | None) -> PropertySet:
        o = self.obj(h)
        if isinstance(o, PropertySet):
            return o
        raise LookupError(f"handle {h} is not a property set")

    # ------------------------------------------------------------ suites

    def _guard(self, fn, ctype):
        """Wrap a callback: a Python exception must become an error status, never OK."""

        def wrapped(*args):
            try:
                result = fn(*args)
                return OK if result is None else result
            except LookupError:
                return ERR_BAD_HANDLE
            except IndexError:
                return ERR_BAD_INDEX
            except Exception as exc:  # pragma: no cover - reported through host.errors
                self.errors.append(f"{fn.__name__}: {type(exc).__name__}: {exc}")
                return FAILED

        cb = ctype(wrapped)
        self._keep.append(cb)
        return cb

    def _build_suites(self) -> None:
        g = self._guard
        prop = PropertySuiteV1(
            g(self._set_one, P_SET_PTR),
            g(self._set_str, P_SET_STR),
            g(self._set_one, P_SET_DBL),
            g(self._set_one, P_SET_INT),
            g(self._set_n, P_SET_PTRN),
            g(self._set_strn, P_SET_STRN),
            g(self._set_n, P_SET_DBLN),
            g(self._set_n, P_SET_INTN),
            g(self._get_ptr, P_GET_PTR),
            g(self._get_str, P_GET_PTR),
            g(self._get_one, P_GET_DBL),
            g(self._get_one, P_GET_INT),
            g(self._get_ptrn, P_GET_PTR),
            g(self._get_strn, P_GET_PTR),
            g(self._get_n, P_GET_DBL),
            g(self._get_n, P_GET_INT),
            g(self._reset, P_RESET),
            g(self._dimension, P_DIM),
        )
        effect = ImageEffectSuiteV1(
            g(self._get_property_set, E_HANDLE_OUT),
            g(self._get_param_set, E_HANDLE_OUT),
            g(self._clip_define, E_CLIP_DEFINE),
            g(self._clip_get_handle, E_CLIP_HANDLE),
            g(self._clip_get_property_set, E_HANDLE_OUT),
            g(self._clip_get_image, E_CLIP_IMAGE),
            g(self._clip_release_image, E_RELEASE),
            g(self._clip_rod, E_CLIP_ROD),
            self._abort_cb(),
            g(lambda *a: ERR_UNSUPPORTED, E_MEM_ALLOC),
            g(lambda *a: ERR_UNSUPPORTED, E_RELEASE),
            g(lambda *a: ERR_UNSUPPORTED, E_HANDLE_OUT),
            g(lambda *a: ERR_UNSUPPORTED, E_RELEASE),
        )
        param = ParameterSuiteV1(
            g(self._param_define, PA_DEFINE),
            g(self._param_get_handle, PA_GET_HANDLE),
            g(self._param_set_props, E_HANDLE_OUT),
            g(self._param_props, E_HANDLE_OUT),
            g(self._param_value, PA_GET_VALUE),
            g(self._param_value_at, PA_GET_VALUE_T),
        )
        memory = MemorySuiteV1(g(self._mem_alloc, M_ALLOC), g(self._mem_free, M_FREE))
        thread = MultiThreadSuiteV1(
            g(self._multi_thread, T_MULTI),
            g(self._num_cpus, T_UINT_OUT),
            g(self._thread_index, T_UINT_OUT),
            self._keep_cb(T_SPAWNED(lambda: 0)),
        )
        message = MessageSuiteV2(
            g(lambda h, t, i, f, a: self._message(t, i, f, a, False), MSG_FN),
            g(lambda h, t, i, f, a: self._message(t, i, f, a, True), MSG_FN),
            g(lambda h: self._clear_persistent(), MSG_CLEAR),
        )
        self._suites = {
            ("OfxPropertySuite", 1): prop,
            ("OfxImageEffectSuite", 1): effect,
            ("OfxParameterSuite", 1): param,
            ("OfxMemorySuite", 1): memory,
            ("OfxMultiThreadSuite", 1): thread,
            ("OfxMessageSuite", 1): message,  # V1 is the first member of V2
        }
        if self.message_suite >= 2:
            self._suites[("OfxMessageSuite", 2)] = message
        self.fetched: list[tuple[str, int]] = []

        def fetch(_host: int, name: bytes, version: int) -> int | None:
            key = (name.decode(), version)
            self.fetched.append(key)
            suite = self._suites.get(key)
            return ctypes.addressof(suite) if suite is not None else None

        self._fetch_cb = FETCH_SUITE(fetch)
        self.abort_flag = False

    def _keep_cb(self, cb):
        self._keep.append(cb)
        return cb

    def _abort_cb(self):
        return self._keep_cb(E_ABORT(lambda h: 1 if self.abort_flag else 0))

    # property suite
    def _set_one(self, h, name, index, value):
        self.props_of(h).set(name.decode(), index, value)

    def _set_str(self, h, name, index, value):
        self.props_of(h).set(name.decode(), index, (value or b"").decode())

    def _set_n(self, h, name, count, values):
        ps = self.props_of(h)
        for i in range(count):
            ps.set(name.decode(), i, values[i])

    def _set_strn(self, h, name, count, values):
        ps = self.props_of(h)
        for i in range(count):
            ps.set(name.decode(), i, (values[i] or b"").decode())

    def _lookup(self, h, name: bytes, index: int):
        ps = self.props_of(h)
        key = name.decode()
        if key not in ps.values:
            return ps, key, None, ERR_UNKNOWN
        if index < 0 or index >= len(ps.values[key]):
            return ps, key, None, ERR_BAD_INDEX
        return ps, key, ps.values[key][index], OK

    def _get_ptr(self, h, name, index, out):
        _, _, value, status = self._lookup(h, name, index)
        if status == OK:
            out[0] = value
        return status

    def _get_str(self, h, name, index, out):
        ps, key, _, status = self._lookup(h, name, index)
        if status == OK:
            out[0] = ps.cstring(key, index)
        return status

    def _get_one(self, h, name, index, out):
        _, _, value, status = self._lookup(h, name, index)
        if status == OK:
            out[0] = value
        return status

    def _get_n(self, h, name, count, out):
        for i in range(count):
            status = self._get_one(h, name, i, _Slot(out, i))
            if status != OK:
                return status
        return OK

    def _get_ptrn(self, h, name, count, out):
        return self._get_n(h, name, count, out)

    def _get_strn(self, h, name, count, out):
        for i in range(count):
            status = self._get_str(h, name, i, _Slot(out, i))
            if status != OK:
                return status
        return OK

    def _reset(self, h, name):
        self.props_of(h).values.pop(name.decode(), None)

    def _dimension(self, h, name, out):
        ps = self.props_of(h)
        out[0] = len(ps.values.get(name.decode(), []))

    # image effect suite
    def _effect(self, h) -> Effect:
        o = self.obj(h)
        if not isinstance(o, Effect):
            raise LookupError("not an effect")
        return o

    def _get_property_set(self, h, out):
        out[0] = self.handle(self._effect(h).props)

    def _get_param_set(self, h, out):
        out[0] = self.handle(self._effect(h))  # the param set handle is the effect itself

    def _clip_define(self, h, name, out):
        eff = self._effect(h)
        clip = Clip(name.decode(), PropertySet({"OfxPropName": name.decode(), "OfxPropType": "OfxTypeClip"}))
        eff.clips[clip.name] = clip
        out[0] = self.handle(clip.props)

    def _clip_get_handle(self, h, name, out_clip, out_props):
        clip = self._effect(h).clips[name.decode()]
        out_clip[0] = self.handle(clip)
        if out_props:
            out_props[0] = self.handle(clip.props)

    def _clip(self, h) -> Clip:
        o = self.obj(h)
        if not isinstance(o, Clip):
            raise LookupError("not a clip")
        return o

    def _clip_get_property_set(self, h, out):
        out[0] = self.handle(self._clip(h).props)

    def _clip_get_image(self, h, time, region, out):
        clip = self._clip(h)
        named = (region[0].x1, region[0].y1, region[0].x2, region[0].y2) if region else None
        clip.regions.append(named)
        if clip.image is None:
            return FAILED
        img = clip.image.crop(self._handed_region(clip, named))
        props = PropertySet(
            {
                "OfxPropType": "OfxTypeImage",
                "OfxImagePropData": img.data,
                "OfxImagePropBounds": list(img.bounds),
                "OfxImagePropRegionOfDefinition": list(img.bounds),
                "OfxImagePropRowBytes": img.row_bytes,
                "OfxImageEffectPropPixelDepth": img.depth,
                "OfxImageEffectPropComponents": img.components,
                "OfxImageEffectPropPreMultiplication": "OfxImageOpaque",
                "OfxImagePropPixelAspectRatio": 1.0,
                "OfxImageEffectPropRenderScale": [1.0, 1.0],
                "OfxImagePropField": "OfxFieldNone",
            }
        )
        with self._lock:
            self.images_out += 1
            handle = self.handle(props)
            self._handed[handle] = img
        out[0] = handle

    def _handed_region(self, clip: Clip, named: tuple | None) -> tuple[int, int, int, int]:
        """The pixels handed over (render scale 1, square pixels): see Clip."""
        rois = getattr(self._render_state, "rois", None)
        region = named if named is not None and clip.honours_region else (rois or {}).get(clip.name)
        big = 1 << 30
        x1, y1, x2, y2 = (-big, -big, big, big) if region is None else region
        rect = (math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2))
        if clip.limit is not None:
            lx1, ly1, lx2, ly2 = clip.limit
            rect = (max(rect[0], lx1), max(rect[1], ly1), min(rect[2], lx2), min(rect[3], ly2))
        return rect

    def _clip_release_image(self, h):
        props = self.props_of(h)
        with self._lock:
            self._objects.pop(h, None)
            self._handed.pop(h, None)
            self.images_out -= 1
        del props

    def _clip_rod(self, h, time, out):
        x1, y1, x2, y2 = self._clip(h).rod
        out[0] = RectD(x1, y1, x2, y2)

    # parameter suite
    _DEFAULTS = {
        "OfxParamTypeChoice": 0,
        "OfxParamTypeBoolean": 0,
        "OfxParamTypeInteger": 0,
        "OfxParamTypeDouble": 0.0,
        "OfxParamTypeString": "",
        "OfxParamTypeRGB": (0.0, 0.0, 0.0),
    }

    def _param_define(self, h, kind, name, out):
        eff = self._effect(h)
        key = name.decode()
        if key in eff.params:
            return 6  # kOfxStatErrExists
        p = Param(kind.decode(), key, PropertySet({"OfxParamPropType": kind.decode(), "OfxPropName": key}))
        eff.params[key] = p
        eff.param_order.append(key)
        if out:
            out[0] = self.handle(p.props)

    def _param_get_handle(self, h, name, out, out_props):
        p = self._effect(h).params[name.decode()]
        out[0] = self.handle(p)
        if out_props:
            out_props[0] = self.handle(p.props)

    def _param_set_props(self, h, out):
        out[0] = self.handle(self._effect(h).param_set_props)

    def _param(self, h) -> Param:
        o = self.obj(h)
        if not isinstance(o, Param):
            raise LookupError("not a parameter")
        return o

    def _param_props(self, h, out):
        out[0] = self.handle(self._param(h).props)

    def _param_value(self, h, a, b, c, d):
        return self._write_value(self._param(h), (a, b, c, d))

    def _param_value_at(self, h, _time, a, b, c, d):
        return self._write_value(self._param(h), (a, b, c, d))

    def _write_value(self, p: Param, ptrs) -> int:
        v = p.value
        if p.kind in ("OfxParamTypeChoice", "OfxParamTypeBoolean", "OfxParamTypeInteger"):
            ctypes.cast(ptrs[0], POINTER(c_int))[0] = int(v)
        elif p.kind == "OfxParamTypeDouble":
            ctypes.cast(ptrs[0], POINTER(c_double))[0] = float(v)
        elif p.kind == "OfxParamTypeRGB":
            for i in range(3):
                ctypes.cast(ptrs[i], POINTER(c_double))[0] = float(v[i])
        elif p.kind == "OfxParamTypeString":
            # Another render thread may still be reading the string handed out before: each
            # value's buffer lives as long as the host (a value is bytes to pass non-UTF-8 names).
            data = v if isinstance(v, bytes) else str(v).encode()
            ctypes.cast(ptrs[0], POINTER(c_void_p))[0] = self._interned(data)
        else:
            return ERR_UNSUPPORTED
        return OK

    def _interned(self, data: bytes) -> int:
        """The address of a C copy of ``data`` that stays valid until the host is gone."""
        with self._lock:
            buf = self._strings.get(data)
            if buf is None:
                buf = self._strings[data] = ctypes.create_string_buffer(data)
            return ctypes.addressof(buf)

    # memory and threads
    def _mem_alloc(self, _h, n, out):
        buf = ctypes.create_string_buffer(max(1, n))
        with self._lock:
            self._memory[ctypes.addressof(buf)] = buf
        out[0] = ctypes.addressof(buf)

    def _mem_free(self, ptr):
        with self._lock:
            if self._memory.pop(ptr or 0, None) is None:
                return ERR_BAD_HANDLE

    def _multi_thread(self, func, n, arg):
        """Run the plugin's function on n real threads (ctypes drops the GIL during the call)."""
        fn = THREAD_FN(func)
        self.multithread_calls += 1
        workers = [threading.Thread(target=fn, args=(i, n, arg)) for i in range(n)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()

    def _num_cpus(self, out):
        out[0] = self.threads

    def _thread_index(self, out):
        out[0] = 0

    def _message(self, kind, mid, fmt, arg, persistent) -> None:
        fmt_s = (fmt or b"").decode(errors="replace")
        text = (arg or b"").decode(errors="replace") if fmt_s == "%s" else fmt_s
        self.messages.append(Message((kind or b"").decode(), (mid or b"").decode(), text, persistent))

    def _clear_persistent(self) -> None:
        self.messages = [m for m in self.messages if not m.persistent]

    # ------------------------------------------------------------ actions

    def action(
        self,
        name: str,
        handle: object = None,
        in_args: PropertySet | None = None,
        out_args: PropertySet | None = None,
    ) -> int:
        h = self.handle(handle) if handle is not None else None
        ia = self.handle(in_args) if in_args is not None else None
        oa = self.handle(out_args) if out_args is not None else None
        return self.plugin.mainEntry(name.encode(), h, ia, oa)

    def load(self) -> int:
        return self.action("OfxActionLoad")

    def describe(self) -> int:
        self.descriptor = Effect(PropertySet({"OfxPropType": "OfxTypeImageEffect"}))
        return self.action("OfxActionDescribe", self.descriptor)

    def describe_in_context(self, context: str) -> tuple[int, Effect]:
        assert self.descriptor is not None
        ctx = Effect(PropertySet(dict(self.descriptor.props.values)))
        ctx.props.set("OfxImageEffectPropContext", 0, context)
        status = self.action(
            "OfxImageEffectActionDescribeInContext", ctx, PropertySet({"OfxImageEffectPropContext": context})
        )
        return status, ctx

    def create_instance(self, ctx: Effect, context: str) -> tuple[int, Effect]:
        """An instance from a context descriptor: clips and params with their defaults."""
        props = PropertySet(dict(ctx.props.values))
        props.set("OfxPropType", 0, "OfxTypeImageEffectInstance")
        props.set("OfxImageEffectPropContext", 0, context)
        props.set("OfxPropInstanceData", 0, None)
        inst = Effect(props)
        for name, clip in ctx.clips.items():
            cprops = PropertySet(dict(clip.props.values))
            optional = clip.props.values.get("OfxImageClipPropOptional", [0])[0]
            cprops.set("OfxImageClipPropConnected", 0, 0 if optional else 1)  # optional inputs start empty
            inst.clips[name] = Clip(name, cprops)
        for name in ctx.param_order:
            d = ctx.params[name]
            default = d.props.values.get("OfxParamPropDefault")
            if d.kind == "OfxParamTypeRGB":
                value: object = tuple(default) if default else (0.0, 0.0, 0.0)
            else:
                value = default[0] if default else self._DEFAULTS.get(d.kind)
            inst.params[name] = Param(d.kind, name, PropertySet(dict(d.props.values)), value)
            inst.param_order.append(name)
        return self.action("OfxActionCreateInstance", inst), inst

    def destroy_instance(self, inst: Effect) -> int:
        return self.action("OfxActionDestroyInstance", inst)

    def set_param(self, inst: Effect, name: str, value: object) -> int:
        """Change a value as a user would: the plugin hears of it through InstanceChanged."""
        inst.params[name].value = value
        args = PropertySet(
            {
                "OfxPropType": "OfxTypeParameter",
                "OfxPropName": name,
                "OfxPropChangeReason": "OfxChangeUserEdited",
                "OfxPropTime": 0.0,
                "OfxImageEffectPropRenderScale": [1.0, 1.0],
            }
        )
        return self.action("OfxActionInstanceChanged", inst, args)

    def regions_of_interest(
        self, inst: Effect, window: tuple[float, float, float, float], time: float = 1.0
    ) -> tuple[int, dict]:
        """The RoI action; every input clip's region starts as the window (the OFX default)."""
        out = PropertySet({f"OfxImageClipPropRoI_{n}": list(window) for n in inst.clips if n != "Output"})
        args = PropertySet(
            {
                "OfxPropTime": time,
                "OfxImageEffectPropRenderScale": [1.0, 1.0],
                "OfxImageEffectPropRegionOfInterest": list(window),
            }
        )
        status = self.action("OfxImageEffectActionGetRegionsOfInterest", inst, args, out)
        return status, out.values

    def clip_preferences(self, inst: Effect) -> tuple[int, dict]:
        out = PropertySet(
            {
                "OfxImageClipPropComponents_Output": "OfxImageComponentRGBA",
                "OfxImageClipPropDepth_Output": "OfxBitDepthFloat",
                "OfxImageEffectPropPreMultiplication": "OfxImageOpaque",
            }
        )
        status = self.action("OfxImageEffectActionGetClipPreferences", inst, None, out)
        return status, out.values

    def render(self, inst: Effect, window: tuple[int, int, int, int], time: float = 1.0) -> int:
        """Render a window as a host does: first ask for the regions of interest it needs, then
        render with every input cropped to them (see Clip)."""
        canonical = tuple(float(v) for v in window)
        rois = {n: canonical for n in inst.clips if n != "Output"}
        if self.asks_roi:
            status, values = self.regions_of_interest(inst, canonical, time)
            if status not in (OK, REPLY_DEFAULT):
                return status
            rois = {n: tuple(values[f"OfxImageClipPropRoI_{n}"][:4]) for n in rois}
        self._render_state.rois = rois
        try:
            return self._render_action(inst, window, time)
        finally:
            self._render_state.rois = None

    def _render_action(self, inst: Effect, window: tuple[int, int, int, int], time: float) -> int:
        args = PropertySet(
            {
                "OfxPropTime": time,
                "OfxImageEffectPropFieldToRender": "OfxFieldNone",
                "OfxImageEffectPropRenderWindow": list(window),
                "OfxImageEffectPropRenderScale": list(self.render_scale),
                "OfxImageEffectPropSequentialRenderStatus": 0,
                "OfxImageEffectPropInteractiveRenderStatus": 0,
            }
        )
        return self.action("OfxImageEffectActionRender", inst, args)

    def unload(self) -> int:
        return self.action("OfxActionUnload")


class _Slot:
    """out[i] of a C array, presented like out[0] of a pointer (for the N getters)."""

    def __init__(self, array, index: int):
        self.array, self.index = array, index

    def __setitem__(self, _key: int, value: object) -> None:
        self.array[self.index] = value
