"""The README picture: plate, alpha and a checkerboard composite, gsrender beside the classic keyer.

    python -m gsrender.training.make_figure docs/keyer_comparison.png [--model models/gskey.onnx]

Rows are held-out synthetic plates (validation seed range) of a hair shot, a motion-blur
shot and a semi-transparent shot. Columns: plate | ground-truth alpha | gsrender alpha |
gsrender over a checkerboard | classic alpha | classic over a checkerboard.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gsrender.engine.backends import create_backend
from gsrender.engine.encoding import srgb_oetf
from gsrender.engine.io import write_frame
from gsrender.engine.keyer import KeyedFrame, key_frame
from gsrender.training.synth.generator import generate_plate

ROWS = (("hair", 1_500_001), ("motion_blur", 1_500_002), ("semi_transparent", 1_500_003))


def checkerboard(h: int, w: int, cell: int = 16) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    v = np.where((yy // cell + xx // cell) % 2 == 0, 0.6, 0.25).astype(np.float32)
    return np.repeat(v[..., None], 3, axis=2)


def over_checker(keyed: KeyedFrame) -> np.ndarray:
    h, w = keyed.alpha.shape
    return keyed.premult + (1.0 - keyed.alpha[..., None]) * checkerboard(h, w)


def grey(a: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(a, 0, 1)[..., None], 3, axis=2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--model", default=None)
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args(argv)
    neural, _ = create_backend("onnxruntime", model=args.model)
    classic, _ = create_backend(keyer="classic")
    rows = []
    for kind, seed in ROWS:
        plate = generate_plate(seed, args.size, args.size, kinds=[kind])
        ours = key_frame(plate.plate, neural)
        theirs = key_frame(plate.plate, classic)
        tiles = [
            srgb_oetf(plate.plate),
            grey(plate.alpha),
            grey(ours.alpha),
            srgb_oetf(over_checker(ours)),
            grey(theirs.alpha),
            srgb_oetf(over_checker(theirs)),
        ]
        rows.append(np.concatenate(tiles, axis=1))
    img = np.ascontiguousarray(np.concatenate(rows, axis=0), dtype=np.float32)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_frame(out, img, ["R", "G", "B"], None, dtype="uint8")
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
