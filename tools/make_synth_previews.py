"""Write a handful of small preview plates to look at what the generator makes.

    python tools/make_synth_previews.py OUT_DIR [--size 256] [--seed 2024]

Writes the plates in the paired layout (preview.RGB.0001.png + preview.ALPHA.0001.png,
...), so the folder also works as a tiny fine-tuning set, a linear half-float EXR of the
HDR one (preview_linear.0006.exr, RGBA with the ground-truth alpha in A), and kinds.txt
listing what each frame contains. Deterministic: same arguments, same bytes.
"""

from __future__ import annotations

import argparse

from gsrender.training.synth.make_previews import make_previews


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=2024)
    a = ap.parse_args(argv)
    plates = make_previews(a.out_dir, a.size, a.seed)
    print(f"wrote {len(plates)} preview plates to {a.out_dir}")


if __name__ == "__main__":
    main()
