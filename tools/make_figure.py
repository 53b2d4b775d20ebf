"""The README picture: plate, alpha and a checkerboard composite, gsrender beside the classic keyer.

    python tools/make_figure.py docs/keyer_comparison.png --indep runs/indep_val \
        [--model models/gskey.onnx]

Rows are plates of the independent validation set (path-traced with Mitsuba, never seen in
training; render it with `python -m gsrender.cli.indep_val --out runs/indep_val --count 24
--seed 7000`): blue-screen hair, a green-screen lattice with the screen showing through, and a
blue-screen lace veil. Columns: plate | ground-truth alpha | gsrender alpha | gsrender over a
checkerboard | classic alpha | classic over a checkerboard. Half resolution.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gsrender.engine.backends import create_backend
from gsrender.engine.encoding import srgb_oetf
from gsrender.engine.image_write import write_frame
from gsrender.engine.keyer import KeyedFrame, key_frame
from gsrender.training.contact_sheet import checkerboard
from gsrender.training.indep_val.dataset import load_indep_val

ROWS = ("iv000_hair_blue", "iv003_lattice_green", "iv004_veil_blue")


def over_checker(keyed: KeyedFrame) -> np.ndarray:
    h, w = keyed.alpha.shape
    return keyed.premult + (1.0 - keyed.alpha[..., None]) * checkerboard(h, w)


def grey(a: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(a, 0, 1)[..., None], 3, axis=2)


def _half(img: np.ndarray) -> np.ndarray:
    """2x2 box average (odd edges dropped): a readable README width for six 480-pixel columns."""
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    x = img[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--indep", required=True, help="the rendered independent validation set")
    p.add_argument("--model", default=None)
    args = p.parse_args(argv)
    neural = create_backend("onnxruntime", model=args.model)
    classic = create_backend(keyer="classic")
    plates = {name: (plate, alpha) for name, plate, alpha, _ in load_indep_val(args.indep)}
    rows = []
    for name in ROWS:
        plate, alpha = plates[name]
        ours = key_frame(plate, neural)
        theirs = key_frame(plate, classic)
        tiles = [
            srgb_oetf(plate),
            grey(alpha),
            grey(ours.alpha),
            srgb_oetf(over_checker(ours)),
            grey(theirs.alpha),
            srgb_oetf(over_checker(theirs)),
        ]
        rows.append(_half(np.concatenate(tiles, axis=1)))
    img = np.ascontiguousarray(np.concatenate(rows, axis=0), dtype=np.float32)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_frame(out, img, ["R", "G", "B"], None, dtype="uint8")
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
