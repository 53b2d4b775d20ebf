"""CPU render speed: end to end, model only, read only, write only, and overlap.

    python bench/render_speed.py [--frames 6] [--sizes 1920x1080,3840x2160] [--model M] [--repeats 3]

Writes EXR plates (linear half, zip) into a temporary folder, then measures per frame:
  end-to-end  wall time of `render_frames` (reader/inference/writer threads) / frames, median
              of --repeats passes
  model       infer_frame only (tiles through the backend), median
  read        read_frame only (OpenImageIO decode), median
  write       write_frame only (RGBA half zip EXR, atomic), median
  overlap     model / end-to-end: 1.0 means I/O is fully hidden behind inference
  classic     end-to-end wall time of the same frames with --keyer classic, in the same run:
              each neural pass is followed by a classic pass; median of the passes
  vs classic  neural end to end / classic end to end (the CPU budget: at most 2x): the median
              of the back-to-back pairs' ratios, so a shared machine's drift between passes
              (seconds long) moves both sides of a pair alike
  --classic-form max  measures the classic keyer's "max" form (Keylight's, cheaper: no look
              around the pixel) instead of its default "local" form, the stricter reference
Prints a Markdown table for the README. Medians over the frames and passes of one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from gsrender.engine import allocator
from gsrender.engine.backends import create_backend
from gsrender.engine.classic_keyer import FORMS
from gsrender.engine.image_io import read_frame
from gsrender.engine.image_write import write_frame
from gsrender.engine.keyer import infer_frame, prepare_frame
from gsrender.engine.render import RenderSettings, render_frames
from gsrender.engine.sequence import expand_sequence, frame_path


def synthetic_plate(h: int, w: int, seed: int) -> np.ndarray:
    """A green screen with falloff and a soft subject; content does not change the cost."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    plate = np.empty((h, w, 3), np.float32)
    light = 1.0 - 0.3 * xx / w
    plate[...] = np.array([0.06, 0.4, 0.08], np.float32) * light[..., None]
    d = np.hypot(yy - h * 0.5, xx - w * (0.4 + 0.2 * rng.random()))
    a = np.clip(h * 0.3 - d, 0, 1)[..., None]
    plate = a * np.array([0.5, 0.35, 0.3], np.float32) + (1 - a) * plate
    return plate + rng.normal(0, 0.003, plate.shape).astype(np.float32)


def bench_size(
    width: int,
    height: int,
    frames: int,
    model: str | None,
    threads: int,
    root: Path,
    repeats: int = 3,
    classic_form: str = "local",
) -> dict:
    src = root / f"in_{width}x{height}"
    src.mkdir()
    for f in range(1, frames + 1):
        write_frame(frame_path(str(src / "plate.####.exr"), f), synthetic_plate(height, width, f),
                    ["R", "G", "B"], None, dtype="half")  # fmt: skip
    refs = expand_sequence(str(src / "plate.####.exr"))
    backend = create_backend("onnxruntime", model=model, threads=threads)
    # One untimed frame first: the first runs pay one-off costs (ONNX Runtime's allocator
    # arenas, page faults on fresh buffers) that a farm task amortises over a whole chunk.
    warm = read_frame(refs[0].path)
    infer_frame(prepare_frame(warm.rgb), backend)
    render_frames([(refs[0], root / f"warm_{width}x{height}.exr")], backend, RenderSettings())

    read_t, model_t, write_t = [], [], []
    rgba = None
    for ref in refs:
        t = time.perf_counter()
        frame = read_frame(ref.path)
        read_t.append(time.perf_counter() - t)
        prepared = prepare_frame(frame.rgb, stride=backend.info.stride)
        t = time.perf_counter()
        alpha, _ = infer_frame(prepared, backend)
        model_t.append(time.perf_counter() - t)
        rgba = np.concatenate([frame.rgb * alpha[..., None], alpha[..., None]], axis=2)
    out = root / f"w_{width}x{height}"
    out.mkdir()
    for i in range(frames):
        t = time.perf_counter()
        write_frame(out / f"w.{i}.exr", rgba, ["R", "G", "B", "A"], None, dtype="half")
        write_t.append(time.perf_counter() - t)

    classic = create_backend(keyer="classic", classic_form=classic_form)
    walls, classic_walls = [], []
    for r in range(repeats):  # back-to-back pairs: machine drift hits both keyers of a pair
        walls.append(_end_to_end(refs, backend, root / f"o{r}_{width}x{height}"))
        classic_walls.append(_end_to_end(refs, classic, root / f"c{r}_{width}x{height}"))
    med = statistics.median
    wall = med(walls)
    return {
        "size": f"{width}x{height}",
        "e2e": wall,
        "model": med(model_t),
        "read": med(read_t),
        "write": med(write_t),
        "overlap": med(model_t) / wall,
        "classic": med(classic_walls),
        "vs_classic": med(n / c for n, c in zip(walls, classic_walls, strict=True)),
        "pairs": [n / c for n, c in zip(walls, classic_walls, strict=True)],
        "backend": backend.name,
    }


def _end_to_end(refs: list, backend: object, out: Path) -> float:
    """Seconds per frame of render_frames (reader, inference and writer threads together)."""
    out.mkdir()
    jobs = [(ref, out / f"k.{ref.frame:04d}.exr") for ref in refs]
    t = time.perf_counter()
    reports = render_frames(jobs, backend, RenderSettings())
    wall = (time.perf_counter() - t) / len(jobs)
    assert all(r.status == "rendered" for r in reports)
    return wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--sizes", default="1920x1080,3840x2160")
    p.add_argument("--model", default=None)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="neural/classic end-to-end pairs per size")
    p.add_argument(
        "--classic-form", choices=FORMS, default="local", help="the classic keyer's form to compare with"
    )
    args = p.parse_args()
    if args.frames < 1 or args.repeats < 1:
        p.error("--frames and --repeats must be at least 1")
    allocator.tune_for_frames()  # as the gsrender command does before rendering
    rows = []
    with tempfile.TemporaryDirectory(prefix="gsrender-bench-") as tmp:
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            rows.append(
                bench_size(
                    w, h, args.frames, args.model, args.threads, Path(tmp), args.repeats, args.classic_form
                )
            )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.system()}; "
        f"frames per size: {args.frames}; end-to-end passes per keyer: {args.repeats}; "
        f"EXR half zip in and out; classic keyer form: {args.classic_form}"
    )
    print(
        "| size | end to end s/frame | model s/frame | read s/frame | write s/frame | overlap "
        "| classic end to end s/frame | neural / classic | backend |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['size']} | {r['e2e']:.3f} | {r['model']:.3f} | {r['read']:.3f} | {r['write']:.3f} "
            f"| {r['overlap']:.2f} | {r['classic']:.3f} | {r['vs_classic']:.2f} | {r['backend']} |"
        )
    for r in rows:
        pairs = ", ".join(f"{v:.2f}" for v in r["pairs"])
        print(f"# {r['size']}: neural / classic of each back-to-back pair: {pairs}")


if __name__ == "__main__":
    main()
