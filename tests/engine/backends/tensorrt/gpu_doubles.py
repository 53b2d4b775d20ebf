"""Test doubles of pycuda and tensorrt that enforce the rules of the real libraries.

Written from pycuda's sources (src/cpp/cuda.hpp) and the TensorRT 10/11 Python API docs
and bindings, so that glue which breaks those rules fails here, without a GPU:

pycuda
- a context stack per thread; a thread that ends with a context still pushed is what
  makes pycuda abort() the process ("The context stack was not empty"): recorded in
  `aborts` and failed by the fixture;
- `Device.retain_primary_context()` retains without pushing; `Context.pop()` with an
  empty stack raises LogicError;
- streams, events, page-locked and device allocations need a current context to be
  made (LogicError "no currently active context?") and remember it; freeing one while
  another context (or none) is current, from a thread other than the one that retained
  the context, fails ("cannot activate out-of-thread context"): pycuda then prints a
  warning and leaks it; recorded in `cleanup_failures`;
- a stream is a deferred queue: async copies and executions run only when an event or
  the stream is synchronized; a host-to-device copy reads host memory when it runs, so
  host memory changed between enqueue and run is a race, recorded in `races`;
- waiting on an event made without BLOCKING_SYNC spins a CPU core: counted in `spins`;
- failures can be injected (`fail["mem_alloc"] = MemoryError(...)`), raised as pycuda's
  own exception types.

tensorrt
- NetworkDefinitionCreationFlag: 10.x EXPLICIT_BATCH = 0, STRONGLY_TYPED = 1; 11.x
  STRONGLY_TYPED = 0 (deprecated, always strongly typed); 11 has no FP16 or precision
  constraint builder flags;
- the ONNX parser gives TensorRT layer types (Conv -> CONVOLUTION, Add/Mul ->
  ELEMENTWISE, Relu/Tanh/Clip -> ACTIVATION, Slice -> SLICE, ...), a CONSTANT layer for
  each constant an element-wise layer consumes, and tensor types from ONNX shape
  inference;
- a build fails (returns None) when layer precisions are set on a strongly typed network
  or on a layer with non-float outputs; the timing cache refuses foreign data (None);
- `set_optimization_profile_async` raises RuntimeError when TensorRT refuses (it never
  returns False); contexts start on profile 0; `execute_async_v3` returns False when the
  run cannot be queued: injected failures, shapes or addresses not set, or a second
  context queueing on a profile another context still has work queued on.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import itertools
import json
import sys
import threading
import types
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

# --------------------------------------------------------------------------- pycuda


class CudaError(Exception):
    """pycuda.driver.Error"""


class LogicError(CudaError):
    pass


class CudaMemoryError(CudaError):
    pass


class CudaRuntimeError(CudaError):
    pass


class _Stack(list):
    """One thread's context stack; pycuda aborts when a thread ends with it non-empty."""

    def __init__(self, gpu: FakeCuda) -> None:
        super().__init__()
        self.gpu = gpu
        self.thread = threading.current_thread().name

    def __del__(self) -> None:
        if self:
            self.gpu.aborts.append(f"thread {self.thread} exited with {len(self)} context(s) pushed")


class FakeCuda:
    """The state of one fake driver: contexts, streams, memory, and the rule violations seen."""

    def __init__(self, devices: int = 1) -> None:
        self.devices = devices
        self.local = threading.local()
        self.aborts: list[str] = []
        self.cleanup_failures: list[str] = []
        self.races: list[str] = []
        self.spins = 0
        self.pushes = 0
        self.fail: dict[str, BaseException] = {}
        self.live: dict[int, str] = {}  # id -> what, for every CUDA object not yet freed
        self.mem: dict[int, np.ndarray] = {}
        self.streams: weakref.WeakValueDictionary[int, _Stream] = weakref.WeakValueDictionary()
        self.module = self._module()

    # per-thread stack
    def stack(self) -> _Stack:
        s = getattr(self.local, "stack", None)
        if s is None:
            s = self.local.stack = _Stack(self)
        return s

    def current(self) -> _Context | None:
        s = self.stack()
        return s[-1] if s else None

    def need_context(self, what: str) -> _Context:
        ctx = self.current()
        if ctx is None:
            raise LogicError(f"{what} failed: invalid device context - no currently active context?")
        return ctx

    def maybe_fail(self, name: str) -> None:
        exc = self.fail.pop(name, None)
        if exc is not None:
            raise exc

    def release(self, obj: Any, what: str) -> bool:
        """pycuda's scoped_context_activation on free: False (leaked) when it cannot activate."""
        if id(obj) not in self.live:
            return False
        owner = obj.owner
        if self.current() is not owner and threading.get_ident() != owner.thread:
            self.cleanup_failures.append(f"{what}: cannot activate out-of-thread context")
            del self.live[id(obj)]
            return False
        del self.live[id(obj)]
        return True

    def _module(self) -> dict[str, types.ModuleType]:
        gpu = self
        drv = types.ModuleType("pycuda.driver")
        drv.Error, drv.LogicError, drv.MemoryError, drv.RuntimeError = (
            CudaError,
            LogicError,
            CudaMemoryError,
            CudaRuntimeError,
        )

        def init(flags: int = 0) -> None:
            gpu.maybe_fail("init")

        class Device:
            def __init__(self, i: int) -> None:
                if not 0 <= i < gpu.devices:
                    raise LogicError("cuDeviceGet failed: invalid device ordinal")
                self.i = i

            @staticmethod
            def count() -> int:
                return gpu.devices

            def name(self) -> str:
                return "NVIDIA Fake GPU"

            def compute_capability(self) -> tuple[int, int]:
                return (9, 0)

            def retain_primary_context(self) -> _Context:
                return _Context(gpu)

        class Context:
            @staticmethod
            def pop() -> None:
                s = gpu.stack()
                if not s:
                    raise LogicError(
                        "context::pop failed: invalid device context - cannot pop non-current context"
                    )
                s.pop()

            @staticmethod
            def get_current() -> _Context | None:
                return gpu.current()

        drv.init, drv.Device, drv.Context = init, Device, Context
        drv.event_flags = types.SimpleNamespace(DEFAULT=0, BLOCKING_SYNC=1, DISABLE_TIMING=2, INTERPROCESS=4)
        drv.Stream = lambda flags=0: _Stream(gpu, flags)
        drv.Event = lambda flags=0: _Event(gpu, flags)
        drv.pagelocked_empty = lambda shape, dtype, order="C", mem_flags=0: np.asarray(
            _HostAlloc(gpu, shape, dtype)
        )
        drv.mem_alloc = lambda nbytes: _DevAlloc(gpu, nbytes)

        def memset_d8(dest: Any, value: int, count: int) -> None:
            gpu.need_context("cuMemsetD8")
            gpu.mem[int(dest)][:count] = value

        def memcpy_htod_async(dest: Any, src: np.ndarray, stream: _Stream) -> None:
            gpu.need_context("cuMemcpyHtoDAsync")
            addr, snapshot = int(dest), src.copy()

            def run() -> None:
                if not np.array_equal(src, snapshot, equal_nan=True):
                    gpu.races.append("host memory changed under a queued host-to-device copy")
                gpu.mem[addr][: src.nbytes] = src.reshape(-1).view(np.uint8)

            stream.enqueue(run)

        def memcpy_dtoh_async(dest: np.ndarray, src: Any, stream: _Stream) -> None:
            gpu.need_context("cuMemcpyDtoHAsync")
            addr = int(src)

            def run() -> None:
                dest.reshape(-1).view(np.uint8)[:] = gpu.mem[addr][: dest.nbytes]

            stream.enqueue(run)

        drv.memset_d8, drv.memcpy_htod_async, drv.memcpy_dtoh_async = (
            memset_d8,
            memcpy_htod_async,
            memcpy_dtoh_async,
        )
        pkg = types.ModuleType("pycuda")
        pkg.driver = drv
        pkg.__path__ = []  # a package: `import pycuda.autoprimaryctx` goes to the finder below
        for name, mod in (("pycuda", pkg), ("pycuda.driver", drv)):
            mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
        return {"pycuda": pkg, "pycuda.driver": drv}

    def exit_hooks(self) -> None:
        """What the interpreter's exit does: pycuda.autoprimaryctx's atexit pop, on the main thread."""
        auto = sys.modules.pop("pycuda.autoprimaryctx", None)
        if auto is not None and getattr(auto, "gpu", None) is self:
            try:
                auto.context.pop()
            except LogicError as exc:
                self.aborts.append(f"autoprimaryctx's exit hook: {exc}")


class AutoPrimaryFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`import pycuda.autoprimaryctx` as pycuda has it: on first import, retain the primary
    context and push it on the importing thread, to be popped by an atexit hook (which
    runs on the main thread)."""

    def __init__(self, gpu: FakeCuda) -> None:
        self.gpu = gpu

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "pycuda.autoprimaryctx":
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        drv = self.gpu.module["pycuda.driver"]
        drv.init()
        module.device = drv.Device(0)
        module.context = module.device.retain_primary_context()
        module.context.push()
        module.context.pop = drv.Context.pop  # what its atexit hook calls
        module.gpu = self.gpu


class _Context:
    def __init__(self, gpu: FakeCuda) -> None:
        self.gpu = gpu
        self.thread = threading.get_ident()  # pycuda remembers the thread that made the context object

    def push(self) -> None:
        self.gpu.stack().append(self)
        self.gpu.pushes += 1


class _Owned:
    """A context-dependent pycuda object: needs a current context to be made and freed."""

    what = "object"
    fail_key = ""  # the pycuda call whose injected failure this construction raises

    def __init__(self, gpu: FakeCuda) -> None:
        self.gpu = gpu
        gpu.maybe_fail(self.fail_key)
        self.owner = gpu.need_context(self.what)
        gpu.live[id(self)] = self.what

    def _free(self) -> bool:
        return self.gpu.release(self, self.what)

    def __del__(self) -> None:
        if id(self) in self.gpu.live:
            self._free()


class _Stream(_Owned):
    what, fail_key = "cuStreamCreate", "Stream"

    def __init__(self, gpu: FakeCuda, flags: int = 0) -> None:
        super().__init__(gpu)
        self.ops: deque[Callable[[], None]] = deque()
        self.handle = id(self)
        gpu.streams[self.handle] = self

    def enqueue(self, fn: Callable[[], None]) -> None:
        self.ops.append(fn)

    def run_until(self, marker: Callable[[], None] | None) -> None:
        while self.ops:
            op = self.ops.popleft()
            op()
            if op is marker:
                return

    def synchronize(self) -> None:
        self.gpu.need_context("cuStreamSynchronize")
        self.run_until(None)

    def wait_for_event(self, ev: _Event) -> None:
        self.gpu.need_context("cuStreamWaitEvent")
        mark, stream = ev.mark, ev.stream
        self.enqueue(lambda: stream.run_until(mark) if mark is not None and not mark.done else None)


class _Mark:
    """The point an event was recorded at, as a stream operation (no reference back to the event)."""

    done = False

    def __call__(self) -> None:
        self.done = True


class _Event(_Owned):
    what, fail_key = "cuEventCreate", "Event"

    def __init__(self, gpu: FakeCuda, flags: int = 0) -> None:
        super().__init__(gpu)
        self.flags = flags
        self.mark: _Mark | None = None
        self.stream: _Stream | None = None

    @property
    def done(self) -> bool:
        return self.mark is None or self.mark.done

    def record(self, stream: _Stream | None = None) -> _Event:
        self.gpu.need_context("cuEventRecord")
        self.mark, self.stream = _Mark(), stream
        stream.enqueue(self.mark)
        return self

    def run(self) -> None:
        if not self.done:
            self.stream.run_until(self.mark)

    def synchronize(self) -> _Event:
        if not self.flags & 1:
            self.gpu.spins += 1  # cuEventSynchronize busy-waits unless the event is blocking-sync
        self.run()
        return self

    def time_since(self, other: _Event) -> float:
        if not (self.done and other.done) or (self.flags | other.flags) & 2:
            raise LogicError("cuEventElapsedTime failed: invalid resource handle")
        return 0.25


class _HostAlloc(_Owned):
    what, fail_key = "cuMemHostAlloc", "pagelocked_empty"

    def __init__(self, gpu: FakeCuda, shape: Any, dtype: Any) -> None:
        super().__init__(gpu)
        self.buf = np.full(shape, np.nan, dtype)  # garbage until written
        self.__array_interface__ = dict(self.buf.__array_interface__)

    def free(self) -> None:
        if id(self) not in self.gpu.live:
            raise LogicError("pagelocked_host_allocation::free failed: invalid resource handle")
        self._free()
        if self.buf.dtype.kind == "f":
            self.buf.fill(np.nan)  # a use after free shows up as NaN


class _DevAlloc(_Owned):
    what, fail_key = "cuMemAlloc", "mem_alloc"
    _ids = itertools.count(4096, 4096)

    def __init__(self, gpu: FakeCuda, nbytes: int) -> None:
        super().__init__(gpu)
        self.addr = next(_DevAlloc._ids)
        gpu.mem[self.addr] = np.full(nbytes, 0xFF, np.uint8)

    def __int__(self) -> int:
        return self.addr

    def free(self) -> None:
        if id(self) not in self.gpu.live:
            raise LogicError("device_allocation::free failed: invalid resource handle")
        self._free()
        self.gpu.mem.pop(self.addr, None)

    def __del__(self) -> None:
        if id(self) in self.gpu.live:
            self._free()
            self.gpu.mem.pop(self.addr, None)


# --------------------------------------------------------------------------- tensorrt

ONNX_TO_LAYER = {
    "Conv": "CONVOLUTION",
    "Relu": "ACTIVATION",
    "Tanh": "ACTIVATION",
    "Sigmoid": "ACTIVATION",
    "Clip": "ACTIVATION",
    "Add": "ELEMENTWISE",
    "Sub": "ELEMENTWISE",
    "Mul": "ELEMENTWISE",
    "Div": "ELEMENTWISE",
    "Slice": "SLICE",
    "Concat": "CONCATENATION",
    "Resize": "RESIZE",
    "Shape": "SHAPE",
    "Cast": "CAST",
    "Gather": "GATHER",
    "Reshape": "SHUFFLE",
}
TENSOR_INPUTS = {
    "ELEMENTWISE",
    "CONCATENATION",
}  # ops whose every input is a tensor (constants become layers)
ONNX_DTYPES = {1: "float32", 10: "float16", 7: "int64", 6: "int32", 9: "bool"}
FLOAT_TYPES = ("float32", "float16")


class _Tensor:
    def __init__(self, name: str, dtype: str) -> None:
        self.name, self.dtype = name, dtype


class _Layer:
    def __init__(self, kind: str, ins: list[_Tensor], outs: list[_Tensor]) -> None:
        self.type = kind
        self._in, self._out = ins, outs
        self.num_inputs, self.num_outputs = len(ins), len(outs)
        self.precision = None
        self.precision_is_set = False
        self.output_types: dict[int, str] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "precision" and value is not None:
            object.__setattr__(self, "precision_is_set", True)
        object.__setattr__(self, name, value)

    def get_input(self, i: int) -> _Tensor:
        return self._in[i]

    def get_output(self, i: int) -> _Tensor:
        return self._out[i]

    def set_output_type(self, i: int, dt: str) -> None:
        self.output_types[i] = dt


class _Network:
    def __init__(self, flags: int, strong: bool) -> None:
        self.flags, self.strongly_typed = flags, strong
        self.layers: list[_Layer] = []
        self.inputs: list[_Tensor] = []
        self.onnx_path: str | None = None

    num_layers = property(lambda self: len(self.layers))
    num_inputs = property(lambda self: len(self.inputs))

    def get_layer(self, i: int) -> _Layer:
        return self.layers[i]

    def get_input(self, i: int) -> _Tensor:
        return self.inputs[i]


class _Parser:
    def __init__(self, network: _Network, logger: Any) -> None:
        self.network, self.num_errors = network, 0

    def get_error(self, i: int) -> str:
        return "fake parser error"

    def parse_from_file(self, path: str) -> bool:
        model = onnx.shape_inference.infer_shapes(onnx.load(path))
        g = model.graph
        types_ = {
            v.name: ONNX_DTYPES.get(v.type.tensor_type.elem_type, "unknown")
            for v in (*g.input, *g.output, *g.value_info)
        }
        consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
        for init in g.initializer:
            types_[init.name] = ONNX_DTYPES.get(init.data_type, "unknown")
        for name, node in consts.items():
            types_[name] = ONNX_DTYPES.get(node.attribute[0].t.data_type, "unknown")
        tensors: dict[str, _Tensor] = {}

        def tensor(name: str) -> _Tensor:
            if name not in tensors:
                tensors[name] = _Tensor(name, types_.get(name, "float32"))
            return tensors[name]

        net = self.network
        net.inputs = [tensor(i.name) for i in g.input if i.name not in {x.name for x in g.initializer}]
        made_constants: set[str] = set()
        for n in g.node:
            if n.op_type == "Constant":
                continue
            kind = ONNX_TO_LAYER.get(n.op_type, n.op_type.upper())
            ins = []
            for j, name in enumerate(n.input):
                if not name:
                    continue
                if name in consts or name in {x.name for x in g.initializer}:
                    if kind == "CONVOLUTION" or (kind not in TENSOR_INPUTS and j > 0):
                        continue  # weights or static parameters: no layer, no tensor
                    if name not in made_constants:  # a constant an element-wise op reads: a layer
                        net.layers.append(_Layer("CONSTANT", [], [tensor(name)]))
                        made_constants.add(name)
                ins.append(tensor(name))
            net.layers.append(_Layer(kind, ins, [tensor(o) for o in n.output]))
        net.onnx_path = path
        return True


class _Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
        self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))


TIMING_MAGIC = b"FAKETC1:"


class _TimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return TIMING_MAGIC + self.data + b"+timing"

    def combine(self, other: _TimingCache, ignore: bool) -> bool:
        self.data += other.data
        return True


class _Config:
    def __init__(self, trt: Any) -> None:
        self.flags = {"TF32"} if hasattr(trt.BuilderFlag, "TF32") else set()
        self.profiles: list[_Profile] = []
        self.cache: _TimingCache | None = None
        self.refused_caches = 0

    def set_flag(self, f: str) -> None:
        self.flags.add(f)

    def clear_flag(self, f: str) -> None:
        self.flags.discard(f)

    def set_memory_pool_limit(self, pool: Any, size: int) -> None:
        self.workspace = size

    def add_optimization_profile(self, p: _Profile) -> int:
        self.profiles.append(p)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> _TimingCache | None:
        data = bytes(data)
        if data and not data.startswith(TIMING_MAGIC):
            self.refused_caches += 1
            return None  # TensorRT logs the mismatch; the binding returns None
        return _TimingCache(data[len(TIMING_MAGIC) :])

    def set_timing_cache(self, cache: _TimingCache, ignore: bool) -> bool:
        self.cache = cache
        return True

    def get_timing_cache(self) -> _TimingCache | None:
        return self.cache


class FakeTensorRT:
    """One fake TensorRT install: what was built, and failures to inject."""

    def __init__(self, version: str, gpu: FakeCuda) -> None:
        self.version, self.gpu = version, gpu
        self.builds: list[dict] = []
        self.build_errors: list[str] = []
        self.fail: dict[str, Any] = {}
        self.engines: list[_Engine] = []
        self.module = self._module()

    def _module(self) -> types.ModuleType:
        fake = self
        major = int(self.version.split(".")[0])
        trt = types.ModuleType("tensorrt")
        trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
        trt.__version__ = self.version
        trt.Logger = type("Logger", (), {"WARNING": 2, "INFO": 3, "__init__": lambda self, s=2: None})

        class Builder:
            def __init__(self, logger: Any) -> None:
                pass

            def create_network(self, flags: int = 0) -> _Network:
                strong = major >= 11 or bool(
                    flags & (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
                )
                return _Network(flags, strong)

            def create_builder_config(self) -> _Config:
                return _Config(trt)

            def create_optimization_profile(self) -> _Profile:
                return _Profile()

            def build_serialized_network(self, network: _Network, config: _Config) -> bytes | None:
                return fake._build(network, config)

        class Runtime:
            def __init__(self, logger: Any) -> None:
                fake.maybe_fail("Runtime")

            def deserialize_cuda_engine(self, data: bytes) -> _Engine | None:
                if not bytes(data).startswith(b"FAKEENGINE"):
                    return None  # what TensorRT does with a foreign or corrupt plan
                engine = _Engine(fake, json.loads(bytes(data)[len(b"FAKEENGINE") :]))
                fake.engines.append(engine)
                return engine

        trt.Builder, trt.OnnxParser, trt.Runtime = Builder, _Parser, Runtime
        if major >= 11:  # 11: always strongly typed; the flag stays for compatibility, value 0
            trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=0)
            flags = ["TF32"]  # 11 removed the weak typing flags
        else:  # 10.x: EXPLICIT_BATCH (ignored) is 0, STRONGLY_TYPED is 1
            trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(EXPLICIT_BATCH=0, STRONGLY_TYPED=1)
            flags = ["FP16", "TF32", "PREFER_PRECISION_CONSTRAINTS", "OBEY_PRECISION_CONSTRAINTS"]
        trt.BuilderFlag = types.SimpleNamespace(**{f: f for f in flags})
        trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
        trt.LayerType = types.SimpleNamespace(**{k: k for k in (*set(ONNX_TO_LAYER.values()), "CONSTANT")})
        trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
        trt.float32, trt.float16, trt.int64, trt.int32, trt.bool = (
            "float32",
            "float16",
            "int64",
            "int32",
            "bool",
        )
        trt.nptype = lambda dt: {"float32": np.float32, "float16": np.float16}[dt]
        return trt

    def maybe_fail(self, name: str) -> None:
        exc = self.fail.pop(name, None)
        if isinstance(exc, BaseException):
            raise exc

    def _build(self, network: _Network, config: _Config) -> bytes | None:
        pinned = [lay for lay in network.layers if lay.precision_is_set]
        if network.strongly_typed and (pinned or any(lay.output_types for lay in network.layers)):
            self.build_errors.append("layer precision set on a strongly typed network")
            return None
        bad = [
            lay.type
            for lay in pinned
            if any(lay.get_output(j).dtype not in FLOAT_TYPES for j in range(lay.num_outputs))
        ]
        if bad:
            self.build_errors.append(f"float precision set on non-float layers {bad}")
            return None
        rec = {
            "onnx": network.onnx_path,
            "network_flags": network.flags,
            "flags": sorted(config.flags),
            "pinned": [lay.type for lay in pinned if lay.precision == "float32"],
            "pinned_outputs": all(
                lay.output_types == {j: "float32" for j in range(lay.num_outputs)} for lay in pinned
            ),
            "profiles": [p.shapes["plate"] for p in config.profiles],
            "profile_inputs": [sorted(p.shapes) for p in config.profiles],
            "timing_cache": config.cache is not None,
            "refused_caches": config.refused_caches,
        }
        self.builds.append(rec)
        return b"FAKEENGINE" + json.dumps(rec).encode()


class _ExecContext:
    def __init__(self, engine: _Engine) -> None:
        self.engine, self.shapes, self.addrs, self.profile = engine, {}, {}, 0  # TensorRT 10: profile 0
        self.queued = 0  # executions enqueued and not yet run

    def set_optimization_profile_async(self, i: int, handle: int) -> bool:
        self.engine.fake.maybe_fail("set_optimization_profile_async")
        if not 0 <= i < self.engine.num_optimization_profiles:
            raise RuntimeError("Error in set optimization profile async.")
        self.engine.fake.gpu.streams[handle]  # a real stream of this driver
        self.profile, self.shapes, self.addrs = i, {}, {}
        return True

    def set_input_shape(self, name: str, shape: Any) -> bool:
        lo, _, hi = self.engine.get_tensor_profile_shape(name, self.profile)
        if not all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
            return False
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        if "plate" not in self.shapes:
            return (-1, -1, -1, -1)
        n, _, h, w = self.shapes["plate"]
        return {"alpha": (n, 1, h, w), "bg": (n, 3, h, w)}.get(name, self.shapes.get(name))

    def set_tensor_address(self, name: str, addr: int) -> bool:
        self.addrs[name] = addr
        return True

    def execute_async_v3(self, handle: int) -> bool:
        eng = self.engine
        if eng.fail_executions > 0:
            eng.fail_executions -= 1
            return False  # e.g. an out-of-memory inside TensorRT: it logs and returns False
        if set(self.shapes) != {"plate", "screen"} or set(self.addrs) != {"plate", "screen", "alpha", "bg"}:
            return False
        if any(c is not self and c.profile == self.profile and c.queued for c in eng.contexts):
            eng.fake.build_errors.append("two contexts ran one optimization profile at once")
            return False
        shapes = {k: self.get_tensor_shape(k) for k in ("plate", "screen", "alpha", "bg")}
        addrs = dict(self.addrs)  # captured at enqueue, as TensorRT does
        mem = eng.fake.gpu.mem
        self.queued += 1

        def run() -> None:
            self.queued -= 1

            def dev(name: str) -> np.ndarray:
                count = int(np.prod(shapes[name]))
                return mem[addrs[name]][: count * 4].view(np.float32).reshape(shapes[name])

            a, b = eng.session.run(["alpha", "bg"], {"plate": dev("plate"), "screen": dev("screen")})
            if eng.poison:
                a = a * np.nan
            dev("alpha")[...] = a
            dev("bg")[...] = b

        eng.fake.gpu.streams[handle].enqueue(run)
        return True


class _Engine:
    def __init__(self, fake: FakeTensorRT, rec: dict) -> None:
        self.fake, self.rec = fake, rec
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        self.session = ort.InferenceSession(rec["onnx"], so, providers=["CPUExecutionProvider"])
        self.num_io_tensors = 4
        self.num_optimization_profiles = len(rec["profiles"])
        self.poison = False
        self.fail_executions = 0
        self.contexts: list[_ExecContext] = []

    def get_tensor_name(self, i: int) -> str:
        return ("plate", "screen", "alpha", "bg")[i]

    def get_tensor_mode(self, name: str) -> str:
        return "INPUT" if name in ("plate", "screen") else "OUTPUT"

    def get_tensor_dtype(self, name: str) -> str:
        return "float32"

    def get_tensor_profile_shape(self, name: str, i: int) -> list:
        return [list(s) for s in self.rec["profiles"][i]]

    def create_execution_context(self) -> _ExecContext | None:
        if self.fake.fail.pop("create_execution_context", None) is not None:
            return None  # TensorRT logs why (usually out of device memory) and returns None
        ctx = _ExecContext(self)
        self.contexts.append(ctx)
        return ctx
