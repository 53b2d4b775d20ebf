"""GPU render speed per backend: network-only and end-to-end fps against an I/O-only pass.

    python bench/gpu_speed.py [--frames 8] [--sizes 1920x1080,3840x2160] [--model M]
                              [--checkpoint C.pt] [--backends tensorrt-fp16,...] [--cpu]

Writes linear half-float EXR plates (zip) into a temporary folder, then for each size
and each backend available here measures, in frames per second:
  network    infer_frame on frames already in memory: tiles -> pinned copies -> GPU -> back,
             assembled (what a render spends in the backend), median over frames
  GPU only   TensorRT: the same engine calls on device-resident buffers, no host copies,
             timed with CUDA events (the issue's "network >= 60 fps at 4K FP16" target)
  end2end    `render_frames` wall time (reader, inference, writer threads), as `gsrender` runs
  I/O only   the same reader/writer threads reading each plate and writing an RGBA EXR, no keying
  e2e/IO     end-to-end fps over I/O fps: 1.0 means keying is fully hidden behind I/O
             (target: >= 0.9 with TensorRT FP16)
Backends: tensorrt-fp16, tensorrt-fp32, onnxruntime-cuda, torch-cuda (needs --checkpoint);
--cpu adds onnxruntime-cpu so the script can be exercised on a machine without a GPU. A
backend that cannot run here is listed with the reason, and the script still exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render_speed import synthetic_plate  # noqa: E402  (same plates as the CPU benchmark)

from gsrender.engine.backends.base import Backend  # noqa: E402
from gsrender.engine.image_io import read_frame, write_frame  # noqa: E402
from gsrender.engine.keyer import batch_tiles, infer_frame, prepare_frame, resolve_tile  # noqa: E402
from gsrender.engine.render import RenderSettings, io_workers_beside_gpu, render_frames  # noqa: E402
from gsrender.engine.sequence import expand_sequence, frame_path  # noqa: E402
from gsrender.engine.tiling import plan_tiles  # noqa: E402

GPU_BACKENDS = ("tensorrt-fp16", "tensorrt-fp32", "onnxruntime-cuda", "torch-cuda")
NET_TARGET_FPS_4K = 60.0
E2E_TARGET_RATIO = 0.9


def _why(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def backend_factories(args: argparse.Namespace) -> list[tuple[str, Callable[[], Backend] | None, str]]:
    """(label, factory or None, reason when unavailable) for every backend asked for."""
    wanted = (
        [b.strip() for b in args.backends.split(",") if b.strip()] if args.backends else list(GPU_BACKENDS)
    )
    if args.cpu and "onnxruntime-cpu" not in wanted:
        wanted.append("onnxruntime-cpu")
    model = args.model
    out: list[tuple[str, Callable[[], Backend] | None, str]] = []
    for label in wanted:
        if label.startswith("tensorrt-"):
            missing = [m for m in ("tensorrt", "pycuda") if importlib.util.find_spec(m) is None]
            if missing:
                out.append((label, None, f"{' and '.join(missing)} not installed"))
                continue
            precision = label.split("-", 1)[1]

            def make_trt(precision: str = precision) -> Backend:
                from gsrender.engine.backends import default_model_path
                from gsrender.engine.backends.tensorrt.runner import TensorRTBackend

                return TensorRTBackend(
                    model or default_model_path(), precision=precision, cache_dir=args.cache
                )

            out.append((label, make_trt, ""))
        elif label.startswith("onnxruntime-"):
            device = label.split("-", 1)[1]
            import onnxruntime as ort

            if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
                out.append((label, None, "onnxruntime has no CUDA provider (install onnxruntime-gpu)"))
                continue

            def make_ort(device: str = device) -> Backend:
                from gsrender.engine.backends import default_model_path
                from gsrender.engine.backends.onnx_runtime import OnnxRuntimeBackend

                return OnnxRuntimeBackend(model or default_model_path(), device=device, threads=args.threads)

            out.append((label, make_ort, ""))
        elif label == "torch-cuda":
            if importlib.util.find_spec("torch") is None:
                out.append((label, None, "torch not installed"))
                continue
            import torch

            if not torch.cuda.is_available():
                out.append((label, None, "torch has no CUDA device"))
            elif not args.checkpoint:
                out.append((label, None, "needs --checkpoint (the torch backend loads a .pt)"))
            else:

                def make_torch() -> Backend:
                    from gsrender.engine.backends.torch_backend import TorchBackend

                    return TorchBackend(args.checkpoint, device="cuda", half=True)

                out.append((label, make_torch, ""))
        else:
            out.append((label, None, "unknown backend name"))
    return out


def write_plates(folder: Path, width: int, height: int, frames: int) -> list:
    folder.mkdir(parents=True)
    for f in range(1, frames + 1):
        write_frame(
            frame_path(str(folder / "plate.####.exr"), f),
            synthetic_plate(height, width, f),
            ["R", "G", "B"],
            None,
            dtype="half",
        )
    return expand_sequence(str(folder / "plate.####.exr"))


def io_pass(refs: list, out: Path, workers: int = 1) -> float:
    """Seconds per frame of read -> RGBA EXR write with as many reader/writer threads as the render."""
    out.mkdir(parents=True, exist_ok=True)
    q_in: queue.Queue = queue.Queue(2)
    q_out: queue.Queue = queue.Queue(2)
    done = object()
    todo = iter(refs)
    todo_lock = threading.Lock()

    def reader() -> None:
        while True:
            with todo_lock:
                ref = next(todo, None)
            if ref is None:
                break
            q_in.put((ref.frame, read_frame(ref.path)))
        q_in.put(done)

    def writer() -> None:
        while (item := q_out.get()) is not done:
            frame, rgba = item
            write_frame(out / f"io.{frame:04d}.exr", rgba, ["R", "G", "B", "A"], None, dtype="half")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=f, daemon=True) for f in (reader, writer) for _ in range(workers)]
    for t in threads:
        t.start()
    readers_left = workers
    while readers_left:
        if (item := q_in.get()) is done:
            readers_left -= 1
            continue
        frame, image = item
        h, w, _ = image.rgb.shape
        q_out.put((frame, np.concatenate([image.rgb, np.ones((h, w, 1), np.float32)], axis=2)))
    for _ in range(workers):
        q_out.put(done)
    for t in threads:
        t.join()
    return (time.perf_counter() - t0) / len(refs)


def frame_calls(backend: Backend, h: int, w: int) -> list[tuple[int, int, int]]:
    """The engine calls one frame makes with the keyer's default tiling."""
    info = backend.info
    plan = plan_tiles(h, w, tile=resolve_tile(0, h, w), halo=info.halo, stride=info.stride)
    calls = []
    for batch in batch_tiles([(t, None) for t in plan.tiles], backend.max_batch):
        bh, bw = batch[0][0].in_shape
        calls.extend(backend.engine_calls(len(batch), bh, bw))  # type: ignore[attr-defined]
    return calls


def bench_backend(
    label: str, backend: Backend, refs: list, prepared: list, frames: int, root: Path, workers: int
) -> dict:
    h, w = prepared[0].plate_lin.shape[:2]
    infer_frame(prepared[0], backend)  # warm up: lazy allocations, kernel selection
    net = []
    for i in range(frames):
        t = time.perf_counter()
        infer_frame(prepared[i % len(prepared)], backend)
        net.append(time.perf_counter() - t)
    gpu_only = None
    if hasattr(backend, "time_device"):
        gpu_only = backend.time_device(frame_calls(backend, h, w), repeats=max(3, frames))
    out = root / f"out_{label}_{w}x{h}"
    out.mkdir()
    jobs = [(ref, out / f"k.{ref.frame:04d}.exr") for ref in refs]
    t = time.perf_counter()
    reports = render_frames(jobs, backend, RenderSettings(io_workers=workers))
    e2e = (time.perf_counter() - t) / len(refs)
    failed = [r for r in reports if r.status != "rendered"]
    if failed:
        raise RuntimeError(f"{len(failed)} frame(s) failed: {failed[0].error}")
    return {
        "net": 1 / statistics.median(net),
        "gpu": 1 / gpu_only if gpu_only else None,
        "e2e": 1 / e2e,
        "describe": backend.describe(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--sizes", default="1920x1080,3840x2160")
    p.add_argument("--model", default=None, help="ONNX model (default: the bundled one)")
    p.add_argument("--checkpoint", default=None, help=".pt checkpoint for torch-cuda")
    p.add_argument("--backends", default=None, help=f"comma list (default: {','.join(GPU_BACKENDS)})")
    p.add_argument(
        "--cpu", action="store_true", help="also run onnxruntime-cpu (exercises the script anywhere)"
    )
    p.add_argument("--cache", default=None, help="TensorRT engine cache folder")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument(
        "--io-threads",
        type=int,
        default=0,
        help="reader and writer threads each, in the render and the I/O pass (0 = what gsrender "
        "picks beside a GPU)",
    )
    args = p.parse_args(argv)

    factories = backend_factories(args)
    runnable = [(lab, f) for lab, f, _ in factories if f is not None]
    for lab, f, why in factories:
        if f is None:
            print(f"{lab}: unavailable here: {why}")
    if not runnable:
        print("no backend to measure on this machine (no GPU stack); use --cpu to exercise the script")
        return 0

    rows = []
    workers = args.io_threads or io_workers_beside_gpu()
    with tempfile.TemporaryDirectory(prefix="gsrender-gpu-bench-") as tmp:
        root = Path(tmp)
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.lower().split("x"))
            refs = write_plates(root / f"in_{w}x{h}", w, h, args.frames)
            io_s = io_pass(refs, root / f"io_{w}x{h}", workers)
            prepared = [prepare_frame(read_frame(r.path).rgb) for r in refs[: min(3, len(refs))]]
            for label, factory in runnable:
                try:
                    backend = factory()
                except Exception as exc:
                    print(f"{label}: unavailable here: {_why(exc)}")
                    continue
                try:
                    res = bench_backend(label, backend, refs, prepared, args.frames, root, workers)
                except Exception as exc:
                    print(f"{label} {w}x{h}: failed: {_why(exc)}")
                    continue
                finally:
                    backend.close()
                rows.append({"size": f"{w}x{h}", "backend": label, "io": 1 / io_s, **res})
                print(f"measured {label} {w}x{h}: {res['describe']}", flush=True)

    print(
        f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores; "
        f"{args.frames} frames per size; {workers} reader and {workers} writer thread(s); "
        "EXR half zip in, RGBA half zip out"
    )
    print("| size | backend | network fps | GPU-only fps | end-to-end fps | I/O-only fps | e2e / I/O |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        gpu = f"{r['gpu']:.1f}" if r["gpu"] else "-"
        print(
            f"| {r['size']} | {r['backend']} | {r['net']:.1f} | {gpu} | {r['e2e']:.2f} | {r['io']:.2f} "
            f"| {r['e2e'] / r['io']:.2f} |"
        )
    for r in rows:
        if r["backend"] == "tensorrt-fp16" and r["size"] == "3840x2160":
            ok_net = (r["gpu"] or 0) >= NET_TARGET_FPS_4K
            ok_e2e = r["e2e"] / r["io"] >= E2E_TARGET_RATIO
            print(
                f"target 4K FP16 network >= {NET_TARGET_FPS_4K:.0f} fps (GPU only): "
                f"{'met' if ok_net else 'NOT met'} ({r['gpu'] or 0:.1f})"
            )
            print(
                f"target end to end within 10% of I/O: {'met' if ok_e2e else 'NOT met'} "
                f"({r['e2e'] / r['io']:.2f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
