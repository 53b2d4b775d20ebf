"""What a clean plate buys: errors with and without one on synthetic green-screen plates.

Plates come from training/synth (uneven lighting, wrinkles, seams, markers, shadows), whose
Plate.screen is the exact clean screen behind the subject. For each keyer: alpha SAD against
the ground truth, and SAD of the premultiplied foreground against a * F_spill (despill off), all
/1000 as in training/metrics.py, averaged over the plates. "network, clean plate as guide"
forces the shipped model to take the clean plate as its guide input, which it was not trained
for (why ModelInfo.clean_plate_guide is off for it).

    python bench/clean_plate_sad.py [--plates 16] [--size 256x384]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from gsrender.engine.backends import create_backend
from gsrender.engine.compositor_inputs import FrameInputs
from gsrender.engine.keyer import key_frame
from gsrender.training.synth.generator import generate_clean, generate_plate

FIRST_SEED = 2000


def green_seeds(n: int, h: int, w: int) -> list[int]:
    """The first n seeds with a green screen (the shipped network keys green screens only)."""
    seeds, seed = [], FIRST_SEED
    while len(seeds) < n:
        med = np.median(generate_clean(seed, h, w).screen.reshape(-1, 3), axis=0)
        if med[1] > med[2]:
            seeds.append(seed)
        seed += 1
    return seeds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plates", type=int, default=16)
    p.add_argument("--size", default="256x384", help="HxW")
    args = p.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    seeds = green_seeds(args.plates, h, w)
    classic = create_backend(keyer="classic")
    neural = create_backend("onnxruntime", threads=0)
    forced = create_backend("onnxruntime", threads=0)
    forced.info = dataclasses.replace(forced.info, clean_plate_guide=True)
    rows = [("classic keyer", classic), ("network (shipped)", neural)]
    rows.append(("network, clean plate as guide", forced))
    sums = {name: np.zeros(4) for name, _ in rows}
    for seed in seeds:
        plate, clean = generate_plate(seed, h, w), generate_clean(seed, h, w)
        gt_premult = clean.alpha[..., None] * clean.fg_spill
        for name, backend in rows:
            for k, inputs in enumerate((None, FrameInputs(clean_plate=plate.screen))):
                keyed = key_frame(plate.plate, backend, despill_strength=0.0, inputs=inputs)
                sums[name][k] += np.abs(keyed.alpha - plate.alpha).sum() / 1000.0
                sums[name][2 + k] += np.abs(keyed.premult - gt_premult).sum() / 1000.0
    print(f"{len(seeds)} green-screen plates {w}x{h}, seeds {seeds[0]}..{seeds[-1]}, mean SAD/1000")
    print("| keyer | alpha SAD, estimate | alpha SAD, clean plate | aF SAD, estimate | aF SAD, clean plate |")
    print("|---|---|---|---|---|")
    for name, _ in rows:
        m = sums[name] / len(seeds)
        print(f"| {name} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} | {m[3]:.3f} |")


if __name__ == "__main__":
    main()
