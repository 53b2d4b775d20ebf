"""Render a whole independent-validation set to a folder, or a degraded copy of one.

    python -m gsrender.cli.indep_val --out runs/indep_val --count 24 --seed 7000
    python -m gsrender.cli.indep_val --set edges --out runs/indep_edges --count 27 --seed 9000
    python -m gsrender.cli.indep_val --degrade runs/indep_edges --out runs/indep_edges_degraded

Plate i uses scene seed `seed + i`; kinds cycle through the set's kinds (``studio``:
scene.KINDS, plates named iv...; ``edges``: edge_scenes.EDGE_KINDS, strands, fur and leaves,
sharp, moving and defocused, plates named ie...) and the screen colour alternates so every
kind appears on green and on blue. The two sets draw their scenes from separate random
streams: the studio set's plates for a seed never change. ``--degrade SRC`` writes a copy
of the rendered set SRC with uneven light, more noise and JPEG (degrade.py), no renderer
needed. The manifest is rewritten after each plate, so an interrupted run leaves a usable
(shorter) set. The command line and its exit codes are
gsrender.cli.indep_val.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from . import dataset, render
from .edge_scenes import edge_scene_for
from .scene import KINDS, build_scene

SETS = {"studio": ("iv", None), "edges": ("ie", edge_scene_for)}  # name prefix, scene of a seed


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


CRASH_RETRIES = 4
RETRY_SEED_STEP = 1_000_003  # a crashed plate's next sampler seed: far from every scene seed


class RendererCrashed(RuntimeError):
    """The renderer process died on every try of one plate."""


def render_isolated(spec, spp: int) -> tuple[render.Rendered, int]:
    """Render one plate in a child process; returns it and the sampler seed used.

    Mitsuba 3.9's B-spline curve intersection can crash the process (SIGSEGV) on a rare ray;
    a crash is the child's alone, and the plate is rendered again with the next sampler seed
    (the scene and the camera noise stay the scene seed's, so a retry is as repeatable as the
    first try). The first try uses the scene seed, as rendering in-process always did.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")
    for attempt in range(CRASH_RETRIES):
        seed = spec.seed + attempt * RETRY_SEED_STEP
        try:
            with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                passes = pool.submit(render.render_passes, spec, spp, seed).result()
        except BrokenProcessPool:
            continue
        return render.finish(spec, passes), seed
    raise RendererCrashed(f"scene seed {spec.seed}: the renderer crashed on {CRASH_RETRIES} sampler seeds")


def render_set(
    out: Path,
    count: int,
    seed: int,
    spp: int = render.SPP,
    width: int = 480,
    height: int = 360,
    log=print,
    which: str = "studio",
) -> dict:
    """Render `count` plates of set `which` (a SETS name) into `out` and return the manifest."""
    prefix, scene_fn = SETS[which]
    scene_fn = scene_fn or scene_for
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "set": which,
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
        spec = scene_fn(seed + i, width, height)
        name = f"{prefix}{i:03d}_{spec.kind}_{spec.screen}"
        t0 = time.perf_counter()
        r, sampler_seed = render_isolated(spec, spp)
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
                **({"aperture": spec.aperture, "focus": spec.focus} if which != "studio" else {}),
                **({"motion": list(spec.motion)} if any(spec.motion) else {}),
                "noise": {"gain": spec.noise_gain, "read": spec.noise_read},
                **({"sampler_seed": sampler_seed} if sampler_seed != spec.seed else {}),
                "render_seconds": round(dt, 2),
                "files": files,
            }
        )
        manifest["render_seconds"] = round(total, 1)
        dataset.write_manifest(out, manifest)
        log(f"{name}: {dt:.1f} s, alpha mean {float(r.alpha.mean()):.3f}")
    return manifest
