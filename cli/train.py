"""`gsrender train` and `gsrender-train`: train a keying network from a TOML config, resume, fine-tune.

    gsrender-train --config gskey3 --out runs/gskey3 [--steps N] [--resume]
                   [--set optim.lr=5e-4 ...] [--device cpu|cuda]
    gsrender-train --finetune models/gskey.pt --data shot010/keyed --out runs/shot010
    torchrun --nproc_per_node 4 -m gsrender.cli.train --config gskey3 --out runs/gskey3

The command line only: the run itself (trainer, run folder, checkpoints) is gsrender.training.trainer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gsrender.models.checkpoint import load_checkpoint
from gsrender.training import config as C
from gsrender.training.batches import Dist
from gsrender.training.trainer import check_anchor_teacher, check_model_options, pick_device, run_session


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="gsrender-train",
        description="Train a gsrender keying network (gskey or a seed baseline), or fine-tune the shipped "
        "model on a few keyed frames of one shot.",
    )
    ap.add_argument(
        "--config",
        help="TOML config, or the name of a shipped one: "
        f"{', '.join(C.shipped_configs())} (default: finetune with --finetune)",
    )
    ap.add_argument("--out", required=True, help="run folder (log.csv, loss.png, last.pt, best.pt, ...)")
    ap.add_argument("--steps", type=int, help="total optimiser steps (overrides train.steps)")
    ap.add_argument(
        "--until",
        type=int,
        metavar="STEP",
        help="stop after this step and checkpoint (the schedule still spans --steps): "
        "for farm jobs that train in chunks with --resume",
    )
    ap.add_argument(
        "--resume", action="store_true", help="continue from OUT/last.pt (starts fresh if absent)"
    )
    ap.add_argument("--finetune", metavar="CKPT", help="start from this checkpoint's weights (with --data)")
    ap.add_argument(
        "--data",
        metavar="FOLDER",
        help="train on keyed frames in the seed layout "
        "(Data.01.RGB.0063.png + Data.01.ALPHA.0063.png) instead of synthetic plates",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=3e-4 (repeatable)",
    )
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides train.device")
    return ap


def _resolve_config(
    args: argparse.Namespace, resume_ckpt: dict[str, Any] | None, start: dict[str, Any] | None
) -> dict[str, Any]:
    """The run's config: the resumed run's, or the named one; a shot fine-tune (``start``, the
    --finetune checkpoint, without --config) keeps the network it starts from."""
    overrides = list(args.set)
    if resume_ckpt is not None:
        cfg = C.from_dict(resume_ckpt["config"])
        C.apply_overrides(cfg, overrides)
    else:
        name = args.config or ("finetune" if args.finetune else None)
        if name is None:
            raise ValueError("--config is required (or --finetune CKPT for fine-tuning)")
        if args.data:  # before the user's --set, so those still win
            folder = json.dumps(str(Path(args.data).resolve()))
            overrides = ['data.kind="paired"', f"data.folder={folder}", *overrides]
        cfg = C.load_config(name, overrides)
        if start is not None and not args.config:
            cfg["model"] = C.from_dict(start["config"])["model"]
    if args.steps is not None:
        cfg["train"]["steps"] = args.steps
    if args.device:
        cfg["train"]["device"] = args.device
    C.validate(cfg)
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Entry point of gsrender-train and `gsrender train`: errors are one line and an exit code."""
    from gsrender.engine.command import run_command

    return run_command(_main, argv, "train")


def _main(argv: list[str] | None = None) -> int:
    """The training run the command line asks for; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    rank = Dist()
    last_path = out / "last.pt"
    if args.finetune and not (args.data or args.config):
        print(
            "gsrender-train: --finetune needs --data FOLDER (the keyed frames of the shot) or --config "
            "(a training phase of its own, e.g. training/configs/gskey3_phase2.toml)",
            file=sys.stderr,
        )
        return 2
    if last_path.exists() and not args.resume:
        msg = f"{out} already holds a run; pass --resume to continue it or pick another --out"
        print(f"gsrender-train: {msg}", file=sys.stderr)
        return 2
    try:
        resume = load_checkpoint(last_path) if (args.resume and last_path.exists()) else None
        # read here, so a bad file is one line before the run folder exists
        start = load_checkpoint(args.finetune) if args.finetune else None
        cfg = _resolve_config(args, resume, start)
        check_model_options(cfg, args.config or "the default config")
        check_anchor_teacher(cfg, args.finetune, resume)
        device = pick_device(cfg, rank)
    except (ValueError, FileNotFoundError) as exc:
        print(f"gsrender-train: {exc}", file=sys.stderr)
        return 2
    rank.init(device)
    try:
        return run_session(cfg, argv, out, rank, device, resume, args.finetune, args.until)
    finally:
        rank.close()


if __name__ == "__main__":
    sys.exit(main())
