"""`gsrender evaluate`: compare keyers on the same plates with the standard matting metrics.

    gsrender evaluate --model runs/gskey/best.pt --model models/gskey.onnx --model classic \
        [--model blender] [--data synthetic|indep:DIR|FOLDER] [--real DIR] [--count 32] [--size 256] \
        [--hard-half] [--csv out.csv] [--markdown] [--per-plate]

The command line only: the samples, predictors and metrics are gsrender.training.evaluate, the
real-footage evaluation (``--real``) gsrender.training.real_eval and the path-traced independent
set (``--data indep:DIR``) gsrender.training.indep_val; they never import this module back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from gsrender.cli.render_options import despot_size
from gsrender.engine.output_check import check_written_file, write_at_end
from gsrender.training.evaluate import (
    SEQUENCE_SEED,
    compare_with,
    evaluate_predictor,
    format_per_plate,
    format_table,
    hard_half,
    load_predictor,
    paired_samples,
    sequence_samples,
    synthetic_samples,
    unique_labels,
    write_csv,
)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="gsrender evaluate",
        description="Matting metrics (SAD, MSE, Grad, Conn; whole frame and unknown band), foreground "
        "error and CPU speed of keyers on the same plates.",
    )
    ap.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="M",
        help="a checkpoint .pt (gskey or a seed net), an .onnx gskey model, 'classic', or 'blender' "
        "(Blender's compositor Keying node, default settings, key colour = median of the plate's "
        "border; needs the blender executable); repeatable",
    )
    ap.add_argument(
        "--data",
        default="synthetic",
        help="'synthetic' (the fixed validation plates), 'sequence' (a held-out synthetic shot of "
        "--count frames, adds temporal flicker), 'indep:DIR' (a path-traced set rendered by "
        "python -m gsrender.cli.indep_val; also prints every plate) or a folder of keyed frames "
        "in the seed layout "
        "(Data.01.RGB.0063.png + Data.01.ALPHA.0063.png), scored whole, flicker over the frames in order",
    )
    ap.add_argument(
        "--real",
        metavar="DIR",
        help="score real plates without ground truth instead (stills and numbered sequences in DIR): "
        "screen leak, subject holes, edge detail, flicker; see gsrender.training.real_eval",
    )
    ap.add_argument("--sheet", metavar="PNG", help="with --real: write a contact sheet of plates and keys")
    ap.add_argument("--count", type=int, default=32, help="number of plates (default 32)")
    ap.add_argument("--size", type=int, default=256, help="synthetic plate size in pixels (default 256)")
    ap.add_argument("--seed", type=int, default=1_000_000, help="validation seed (default 1000000)")
    ap.add_argument(
        "--hard-half",
        action="store_true",
        help="only the half of the plates where the classic keyer's SAD is highest",
    )
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch/onnxruntime (0 = default)")
    ap.add_argument(
        "--despot",
        type=despot_size,
        default=None,
        metavar="PIXELS",
        help="score gsrender's keyers with this despot size, as `gsrender --despot` (default: the "
        "render's default; 0 = off); peers are scored as they come",
    )
    ap.add_argument("--csv", help="also write the table to this CSV file")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument(
        "--per-plate",
        action="store_true",
        help="also print every plate's SAD, Grad, Conn and MSE side by side (always on for indep:DIR) "
        "and, with classic among the models, on how many plates each model beats it",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    """`gsrender evaluate`: 0, 2 on bad options or models, 4 when the table or sheet cannot be
    written (errors as every verb reports them)."""
    from gsrender.engine.command import run_command

    return run_command(_main, argv, "evaluate")


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.count < 1 or args.size < 8:
        print("gsrender evaluate: --count must be >= 1 and --size >= 8", file=sys.stderr)
        return 2
    for option, value, example in (("csv", args.csv, "scores.csv"), ("sheet", args.sheet, "sheet.png")):
        if value:  # before minutes of keying, not after
            check_written_file(value, option, example)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.real is not None:
        from gsrender.training.real_eval import main_real

        return main_real(args)
    if args.sheet:
        print("gsrender evaluate: --sheet needs --real", file=sys.stderr)
        return 2
    try:
        preds = [load_predictor(m, args.threads, args.despot) for m in args.model]
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"gsrender evaluate: {exc}", file=sys.stderr)
        return 2
    indep = args.data.startswith("indep:")
    temporal = args.data != "synthetic" and not indep
    if indep:  # the path-traced independent validation set (gsrender.training.indep_val)
        from gsrender.training.indep_val import IndepValError
        from gsrender.training.indep_val.evaluation import indep_samples

        try:
            samples = indep_samples(args.data[len("indep:") :], args.count)
        except IndepValError as exc:
            print(f"gsrender evaluate: {exc}", file=sys.stderr)
            return 2
        where = f"{len(samples)} path-traced plates of {args.data[len('indep:') :]} (independent of training)"
    elif args.data == "synthetic":
        samples = synthetic_samples(args.count, args.size, args.seed)
        where = f"{len(samples)} synthetic validation plates, {args.size}px, seed {args.seed}"
    elif args.data == "sequence":
        samples = sequence_samples(args.count, args.size)
        where = f"a {len(samples)}-frame synthetic shot, {args.size}px, seed {SEQUENCE_SEED}"
    else:
        if not Path(args.data).is_dir():
            print(f"gsrender evaluate: --data '{args.data}' is not 'synthetic' or a folder", file=sys.stderr)
            return 2
        samples = paired_samples(args.data, args.count)
        where = f"{len(samples)} whole frames of {args.data} (no foreground ground truth)"
    if args.hard_half:
        samples = hard_half(samples)
        where += f"; hard half ({len(samples)} plates with the highest classic-keyer SAD)"
    results: dict[str, dict[str, float]] = {}
    rows_by_model: dict[str, list[dict[str, Any]]] = {}
    for label, pred in zip(unique_labels(args.model, preds), preds, strict=True):
        res = evaluate_predictor(pred, samples, temporal=temporal and not args.hard_half)
        results[label] = res["metrics"]
        rows_by_model[label] = res["rows"]
    print(
        f"# {where}; SAD/Grad/Conn /1000, alpha in [0,1]; (u) = unknown band; ms/MP on CPU "
        f"({torch.get_num_threads()} threads; '-' for a peer run in its own process)"
    )
    for label, pred in zip(results, preds, strict=True):
        if hasattr(pred, "describe"):
            print(f"# {label}: {pred.describe()}")
    print(format_table(results, markdown=args.markdown))
    if indep or args.per_plate:
        print(format_per_plate(rows_by_model, markdown=args.markdown))
        for line in compare_with(rows_by_model, "classic"):
            print(line)
    if args.csv:
        write_at_end(args.csv, lambda path: write_csv(path, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
