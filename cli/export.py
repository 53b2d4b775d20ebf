"""`gsrender export`: a training checkpoint to ONNX (+FP16 for TensorRT), checked against torch.

    gsrender export runs/gskey/best.pt -o models/gskey.onnx [--fp16 models/gskey_fp16.onnx]

The command line only: exporting and checking are gsrender.export.onnx_export.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import torch

from gsrender.engine.atomic_files import replacing
from gsrender.export.onnx_export import (
    FP16_BROKEN,
    FP16_TOLERANCE,
    TRAINING_STATE,
    checkpoint_with_overrides,
    export_fp16,
    export_onnx,
    fp16_structure,
    read_metadata,
    validate_onnx,
)
from gsrender.models import metadata as M
from gsrender.models.checkpoint import model_from_checkpoint


def _print_validation(label: str, res: dict[str, Any]) -> None:
    print(
        f"{label}: max |diff| alpha {res['alpha_max_abs_diff']:.3g}, bg {res['bg_max_abs_diff']:.3g} "
        f"(tolerance {res['tolerance']:g}) -> {'OK' if res['ok'] else 'FAIL'}"
    )
    for c in res["cases"]:
        print(f"    {c['case']:<22} alpha {c['alpha']:.3g}  bg {c['bg']:.3g}")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="gsrender export",
        description="Export a gskey checkpoint to ONNX "
        "(+FP16 for TensorRT) and check it against torch with ONNX Runtime.",
    )
    ap.add_argument("checkpoint", help="training checkpoint (.pt), e.g. runs/gskey/best.pt")
    ap.add_argument("-o", "--output", required=True, help="FP32 ONNX file to write, e.g. models/gskey.onnx")
    ap.add_argument("--fp16", metavar="PATH", help="also write the FP16 model (FP32 I/O) here")
    ap.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a key of the checkpoint's config before export (repeatable), e.g. "
        "model.kwargs.hold_subject=true",
    )  # fmt: skip
    ap.add_argument(
        "--checkpoint-out", metavar="PATH",
        help="also write the weights-only checkpoint (with the --set config) the ONNX model was made from",
    )  # fmt: skip
    ap.add_argument("--plates", type=int, default=2, help="synthetic plates used in the check (default 2)")
    ap.add_argument(
        "--no-validate", action="store_true", help="skip the ONNX Runtime check (not recommended)"
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    """`gsrender export`; errors end as every verb's do: one line and an exit code."""
    from gsrender.engine.command import run_command

    return run_command(_main, argv, "export")


def _main(argv: list[str] | None = None) -> int:
    """`gsrender export`: 0 on success, 1 when the exported model does not match torch, 2 on bad input."""
    args = build_parser().parse_args(argv)
    if args.opset < 17:
        print("gsrender export: --opset must be 17 or higher", file=sys.stderr)
        return 2
    try:
        ckpt = checkpoint_with_overrides(args.checkpoint, args.set)
        out = export_onnx(args.checkpoint, args.output, opset=args.opset, overrides=args.set)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"gsrender export: {exc}", file=sys.stderr)
        return 2
    if args.checkpoint_out:
        dest = Path(args.checkpoint_out)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with replacing(dest) as tmp:
            torch.save({k: v for k, v in ckpt.items() if k not in TRAINING_STATE}, tmp)
        print(f"wrote {dest} (weights-only checkpoint)")
    written = M.parse_metadata(read_metadata(out), default_name=out.stem)  # as the engine will read it
    print(f"wrote {out} (stride {written.stride}, halo {written.halo}, opset {args.opset})")
    status = 0
    model = model_from_checkpoint(ckpt)
    if not args.no_validate:
        res = validate_onnx(model, out, plates=args.plates)
        _print_validation("onnxruntime vs torch", res)
        if not res["ok"]:
            status = 1
    if args.fp16:
        out16 = export_fp16(out, args.fp16)
        st = fp16_structure(out16)
        print(f"wrote {out16} (I/O {st['io']}, initializers {st['initializers']}, {len(st['casts'])} casts)")
        if not args.no_validate:
            try:
                res16 = validate_onnx(
                    model, out16, plates=args.plates, tolerance=FP16_TOLERANCE, reference_path=out
                )
            except Exception as exc:  # onnxruntime raises its own types when a kernel is missing
                print(
                    f"fp16: onnxruntime CPU cannot run it ({str(exc).splitlines()[0]}); "
                    "structure checked only"
                )
            else:
                _print_validation("fp16 vs fp32 (onnxruntime CPU)", res16)
                worst = max(res16["alpha_max_abs_diff"], res16["bg_max_abs_diff"])
                if not math.isfinite(worst) or worst > FP16_BROKEN:
                    print(f"fp16: difference {worst:.3g} means a broken conversion (limit {FP16_BROKEN})")
                    status = 1
                elif not res16["ok"]:
                    print("fp16: WARNING: larger than expected float16 rounding; check it on real plates")
    return status


if __name__ == "__main__":
    sys.exit(main())
