"""Write a small deterministic sample shot with ground-truth alpha.

    python tools/make_sample_shot.py OUT_DIR [--frames 4] [--width 960]
        [--height 540] [--seed 7]

Writes OUT_DIR/plate.1001.png ... (sRGB 8-bit, what the camera recorded) and
OUT_DIR/gt/alpha.1001.png ... (8-bit coverage). Same arguments, same bytes: the demo
renders and regression checks can rely on it. Noise is kept modest so the PNGs stay small.
"""

from __future__ import annotations

import argparse

from gsrender.training.synth.make_sample_shot import make_sample_shot


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--width", type=int, default=960)
    ap.add_argument("--height", type=int, default=540)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    paths = make_sample_shot(a.out_dir, a.frames, a.width, a.height, a.seed)
    print(f"wrote {len(paths)} frames to {a.out_dir}")


if __name__ == "__main__":
    main()
