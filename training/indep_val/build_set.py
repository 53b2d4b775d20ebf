"""Render a whole independent-validation set to a folder.

    python -m gsrender.training.indep_val --out runs/indep_val --count 24 --seed 7000

Plate i uses scene seed `seed + i`; kinds cycle through scene.KINDS and the screen colour
alternates so every kind appears on green and on blue. The manifest is rewritten after each
plate, so an interrupted run leaves a usable (shorter) set. Exit codes: 0 done, 2 bad command
line, 3 the renderer (mitsuba) is not installed, 4 the output folder cannot be written.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from . import dataset, render
from .scene import KINDS, build_scene


def _cpu_name() -> str:
    """The CPU model for the manifest (platform.processor() is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def scene_for(seed: int, width: int, height: int):
    """The scene of one plate: kind from the seed, screen colour alternating within each cycle of kinds."""
    kind = KINDS[seed % len(KINDS)]
    screen = "green" if (seed + seed // len(KINDS)) % 2 == 0 else "blue"
    return build_scene(seed, kind, screen, width, height)


def render_set(
    out: Path, count: int, seed: int, spp: int = render.SPP, width: int = 480, height: int = 360, log=print
) -> dict:
    """Render `count` plates into `out` and return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "renderer": render.renderer_version(),
        "seed": seed,
        "count": count,
        "spp": spp,
        "width": width,
        "height": height,
        "generator": "gsrender.training.indep_val (path-traced 3D scenes; not the training generator)",
        "alpha": "1 - transmittance to the screen (subject black, screen a unit emitter, same samples)",
        "fg": "subject and lights without the screen, over black, divided by alpha (no spill)",
        "hardware": f"{_cpu_name()}, {os.cpu_count()} CPUs",
        "plates": [],
    }
    total = 0.0
    for i in range(count):
        spec = scene_for(seed + i, width, height)
        name = f"iv{i:03d}_{spec.kind}_{spec.screen}"
        t0 = time.perf_counter()
        r = render.render_scene(spec, spp)
        dt = time.perf_counter() - t0
        total += dt
        files = dataset.write_plate(
            out, name, {"plate": r.plate, "alpha": r.alpha, "fg": r.fg, "screen": r.screen}
        )
        manifest["plates"].append(
            {
                "name": name,
                "seed": spec.seed,
                "kind": spec.kind,
                "screen": spec.screen,
                "screen_reflectance": spec.screen_rgb,
                "depth_of_field": spec.aperture > 0,
                "noise": {"gain": spec.noise_gain, "read": spec.noise_read},
                "render_seconds": round(dt, 2),
                "files": files,
            }
        )
        manifest["render_seconds"] = round(total, 1)
        dataset.write_manifest(out, manifest)
        log(f"{name}: {dt:.1f} s, alpha mean {float(r.alpha.mean()):.3f}")
    return manifest


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m gsrender.training.indep_val", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--out", required=True, help="output folder (keep it out of git, e.g. runs/indep_val)")
    ap.add_argument("--count", type=int, default=24, help="number of plates (default 24)")
    ap.add_argument("--seed", type=int, default=7000, help="first scene seed (default 7000)")
    ap.add_argument(
        "--spp", type=int, default=render.SPP, help=f"samples per pixel, 16/64/256 (default {render.SPP})"
    )
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--height", type=int, default=360)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (
        args.count < 1
        or args.seed < 0
        or args.width < 16
        or args.height < 16
        or args.spp not in (16, 64, 256)
    ):
        print(
            "gsrender: error: --count >= 1, --seed >= 0, --width/--height >= 16, --spp 16, 64 or 256",
            file=sys.stderr,
        )
        return 2
    try:
        render.mitsuba()
    except ImportError as exc:
        print(
            f"gsrender: error: the renderer is not available ({exc}); pip install 'gsrender[validate]'",
            file=sys.stderr,
        )
        return 3
    try:
        m = render_set(Path(args.out), args.count, args.seed, args.spp, args.width, args.height)
    except OSError as exc:
        print(f"gsrender: error: {args.out}: cannot write the set ({exc})", file=sys.stderr)
        return 4
    print(
        f"{len(m['plates'])} plates in {args.out}, {m['render_seconds']} s ({m['renderer']}, {m['hardware']})"
    )
    return 0
