"""Reference frames of the bundled model: the cases, and the one command that rewrites them.

Run deliberately when the model or the output conventions change, then commit the result:

    python tests/reference/regenerate.py

The inputs are the committed preview plates (samples/preview), one sRGB PNG and one
scene-linear EXR, each written out premultiplied (EXR) and straight (PNG).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = Path(__file__).resolve().parent / "expected"

# name -> (input, extra CLI options)
CASES: dict[str, tuple[Path, list[str]]] = {
    "png_premult.exr": (ROOT / "samples/preview/preview.RGB.0001.png", []),
    "png_straight.png": (ROOT / "samples/preview/preview.RGB.0001.png", ["--png-bits", "16"]),
    "exr_premult.exr": (ROOT / "samples/preview/preview_linear.0006.exr", ["--layers", "fg,matte"]),
    "exr_straight.png": (ROOT / "samples/preview/preview_linear.0006.exr", []),
    "png_classic.exr": (ROOT / "samples/preview/preview.RGB.0003.png", ["--keyer", "classic"]),
}


def render_case(name: str, out_dir: Path) -> Path:
    """Render one case with the real CLI (bundled model, CPU backend) into out_dir."""
    from gsrender.cli.render import main

    src, extra = CASES[name]
    out = out_dir / name
    rc = main([str(src), "-o", str(out), "--backend", "onnxruntime", "-q", *extra])
    if rc != 0:
        raise RuntimeError(f"reference case {name} failed with exit code {rc}")
    return out


def main() -> int:
    EXPECTED.mkdir(parents=True, exist_ok=True)
    for name in CASES:
        print(render_case(name, EXPECTED))
    return 0


if __name__ == "__main__":
    sys.exit(main())
