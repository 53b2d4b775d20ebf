"""Start a new network from a trained one: copy every weight whose name and shape match.

    python tools/transplant.py SRC.pt --config CONFIG.toml -o INIT.pt

Why: GsKeyNet3 keeps GsKeyNet2's encoder and decoder (same layer names and shapes) and moves
its head to half resolution; training it from GsKeyNet2's weights starts from a good key
instead of from noise. The layers that do not match keep the seeded initialisation the
config's model would get (train.seed), so the result is reproducible. The output is a
weights-only checkpoint for `gsrender-train --config CONFIG.toml --finetune INIT.pt`.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

from gsrender.models.checkpoint import load_checkpoint
from gsrender.models.networks import build_model
from gsrender.training import config as C


def transplant(src_path: Path, cfg: dict) -> tuple[dict, list[str], list[str]]:
    """(checkpoint, copied layer names, freshly initialised layer names)."""
    src = load_checkpoint(src_path)["model"]
    torch.manual_seed(int(cfg["train"]["seed"]))
    model = build_model(cfg["model"]["name"], **dict(cfg["model"]["kwargs"]))
    state = model.state_dict()
    copied, fresh = [], []
    for name, value in state.items():
        if name in src and src[name].shape == value.shape:
            state[name] = src[name].clone()
            copied.append(name)
        else:
            fresh.append(name)
    model.load_state_dict(state)
    digest = hashlib.sha256(Path(src_path).read_bytes()).hexdigest()
    ckpt = {"model": model.state_dict(), "config": cfg, "step": 0,
            "transplanted_from": {"path": str(src_path), "sha256": digest}}  # fmt: skip
    return ckpt, copied, fresh


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/transplant.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="trained checkpoint to copy weights from")
    ap.add_argument("--config", type=Path, required=True, help="training config of the new network")
    ap.add_argument("-o", "--output", type=Path, required=True, help="initial checkpoint to write")
    args = ap.parse_args(argv)
    try:
        cfg = C.load_config(args.config)
        ckpt, copied, fresh = transplant(args.source, cfg)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        print(f"transplant: error: {exc}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, args.output)
    print(f"wrote {args.output}: {len(copied)} tensors copied, {len(fresh)} initialised ({', '.join(fresh)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
