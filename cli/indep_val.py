"""Render the independent validation set (path-traced, not the training generator), or a degraded copy.

    python -m gsrender.cli.indep_val --out runs/indep_val --count 24 --seed 7000
    python -m gsrender.cli.indep_val --set edges --out runs/indep_edges --count 27 --seed 9000
    python -m gsrender.cli.indep_val --degrade runs/indep_edges --out runs/indep_edges_degraded

The command line of gsrender.training.indep_val.build_set (what each set holds is there).
`gsrender evaluate --data indep:DIR` scores keyers on the result. Exit codes: 0 done, 2 bad
command line, 3 the renderer (mitsuba) is not installed or the --degrade source set is missing
or unreadable, 4 the output folder cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gsrender.training.indep_val import render
from gsrender.training.indep_val.build_set import SETS, render_set


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m gsrender.cli.indep_val", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder (keep it out of git, e.g. runs/indep_val)")
    ap.add_argument(
        "--set",
        dest="which",
        choices=sorted(SETS),
        default="studio",
        help="studio: the original scenes (default); edges: hair strands, fur and leaves, sharp, "
        "moving and defocused",
    )
    ap.add_argument(
        "--degrade",
        metavar="SRC",
        help="instead of rendering: write a copy of the rendered set SRC with uneven light, more "
        "noise and JPEG to --out",
    )
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
    if args.degrade is not None:
        return _degrade(Path(args.degrade), Path(args.out))
    try:
        render.mitsuba()
    except ImportError as exc:
        print(
            f"gsrender: error: the renderer is not available ({exc}); pip install 'gsrender[validate]'",
            file=sys.stderr,
        )
        return 3
    try:
        m = render_set(
            Path(args.out), args.count, args.seed, args.spp, args.width, args.height, which=args.which
        )
    except OSError as exc:
        print(f"gsrender: error: {args.out}: cannot write the set ({exc})", file=sys.stderr)
        return 4
    print(
        f"{len(m['plates'])} plates in {args.out}, {m['render_seconds']} s ({m['renderer']}, {m['hardware']})"
    )
    return 0


def _degrade(src: Path, out: Path) -> int:
    from gsrender.training.indep_val.dataset import IndepValError
    from gsrender.training.indep_val.degrade import degrade_set

    if src.resolve() == out.resolve():
        print(f"gsrender: error: {out}: --out must differ from the --degrade source", file=sys.stderr)
        return 2
    try:
        m = degrade_set(src, out)
    except IndepValError as exc:
        print(f"gsrender: error: {exc}", file=sys.stderr)
        return 3
    except OSError as exc:
        print(f"gsrender: error: {out}: cannot write the set ({exc})", file=sys.stderr)
        return 4
    print(f"{len(m['plates'])} degraded plates of {src} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
