"""Time and peak memory of renders whose headers or frame ranges are hostile.

    python bench/hostile_headers.py [--attributes 2000,8000,20000] [--big-mb 64] [--range 1000000]

Each case runs `gsrender` in a child process on files written into a temporary folder and
prints its wall time, peak resident memory (the child's maximum RSS, from wait4), exit code
and error lines:
  attributes N   a 160x90 EXR whose header holds N user attributes (OpenImageIO's EXR reader
                 is quadratic in them; past engine/exr_header.MAX_HEADER_ATTRIBUTES the file is
                 refused before it is parsed)
  big attribute  a 160x90 EXR with one attribute of --big-mb megabytes (not carried over)
  sparse range   -F 1-RANGE --on-error skip over a 5-frame sequence (missing frames planned once)
  display window a 64x64 EXR with a 200000x200000 display window keyed to PNG (refused from
                 its header)
  screen estimate  the screen estimate of a 1x100000 and a 2x300000 plate, in this process:
                 peak traced memory (tracemalloc)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import OpenImageIO as oiio


def _plate(h: int, w: int) -> np.ndarray:
    px = np.zeros((h, w, 3), np.float32)
    px[..., 1] = 0.7
    px[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = 0.4
    return px


def _exr(path: Path, attributes: int = 0, big: int = 0, display: int = 0, size=(90, 160)) -> Path:
    spec = oiio.ImageSpec(size[1], size[0], 3, "half")
    for i in range(attributes):
        spec.attribute(f"user:a{i}", f"value {i}")
    if big:
        spec.attribute("user:big", "x" * big)
    if display:
        spec.full_width = spec.full_height = display
    out = oiio.ImageOutput.create("openexr")
    out.open(str(path), spec)
    out.write_image(_plate(*size))
    out.close()
    return path


def _run(args: list[str]) -> tuple[float, float, int, int]:
    """(seconds, peak RSS MB, exit code, error lines) of `gsrender ARGS` in a child process."""
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "gsrender.engine.cli", *args, "--no-progress"],
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        errors = sum("error" in line for line in err.read().splitlines())
    return seconds, usage.ru_maxrss / 1024, proc.returncode, errors


def main() -> None:
    if sys.argv[1:2] == ["--write-big"]:
        _exr(Path(sys.argv[2]), big=int(sys.argv[3]) << 20)
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--attributes", default="2000,8000,20000")
    p.add_argument("--big-mb", type=int, default=64)
    p.add_argument("--range", type=int, default=1_000_000)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gsrender-bench-") as tmp:
        d = Path(tmp)
        for n in (int(v) for v in args.attributes.split(",")):
            src = _exr(d / f"a{n}.exr", attributes=n)
            rows.append((f"attributes {n}", *_run([str(src), "-o", str(d / f"k{n}.exr")])))
        src = d / "big.exr"  # written by a child: this process stays small, so its children do too
        subprocess.run([sys.executable, __file__, "--write-big", str(src), str(args.big_mb)], check=True)
        rows.append((f"big attribute {args.big_mb} MB", *_run([str(src), "-o", str(d / "kbig.exr")])))
        seq = d / "seq"
        seq.mkdir()
        for f in (1, 2, 3, 500, 600):
            _exr(seq / f"p.{f:07d}.exr")
        sparse = [str(seq / "p.#######.exr"), "-o", str(d / "o" / "k.#######.exr"), "-F", f"1-{args.range}"]
        rows.append((f"sparse range 1-{args.range}", *_run([*sparse, "--on-error", "skip"])))
        src = _exr(d / "disp.exr", display=200_000, size=(64, 64))
        rows.append(("display window 200000^2 -> PNG", *_run([str(src), "-o", str(d / "kdisp.png")])))
    print("| case | seconds | peak RSS MB | exit | error lines |")
    print("|---|---|---|---|---|")
    for name, seconds, rss, code, errors in rows:
        print(f"| {name} | {seconds:.2f} | {rss:.0f} | {code} | {errors} |")
    from gsrender.engine.screen_estimate import estimate_screen

    for h, w in ((1, 100_000), (2, 300_000)):
        tracemalloc.start()
        estimate_screen(_plate(h, w)).smooth  # noqa: B018 - the upsampling is the point
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"screen estimate {h}x{w}: peak traced memory {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
