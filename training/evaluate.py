"""Compare keyers on the same plates with the standard matting metrics.

    gsrender evaluate --model runs/gskey/best.pt --model models/gskey.onnx --model classic \
        [--data synthetic|FOLDER] [--count 32] [--size 256] [--hard-half] [--csv out.csv] [--markdown]

Every model sees the frames exactly as the render engine prepares them
(gsrender.engine.keyer.prepare_frame: the smooth screen guide from estimate_screen, the
bounded network encoding, replicate padding to the stride) and its foreground comes out
of the engine's own unmix (premultiplied foreground from the local screen colour, then
despill at the engine's default strength). gskey models unmix with their predicted
screen colour; the seeds and the classic keyer unmix with the screen guide, which is
what the engine would do for them. The reported ``fg`` is foreground_error against the
spill-free ground-truth foreground.

Speed (``ms/MP``) is the model call alone on this machine's CPU, per megapixel, after a
warm-up call; the per-frame guide estimate, shared by every model, is not included.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsrender.engine.keyer import PreparedFrame, finish_frame, prepare_frame
from gsrender.engine.unmix import straight_foreground
from gsrender.models.checkpoint import checkpoint_model_name, load_checkpoint, model_from_checkpoint
from gsrender.models.networks import KEYERS

from .metrics import foreground_error, matting_report, temporal_flicker

STRIDE = 8
METRIC_KEYS = ("sad", "mse", "grad", "conn", "sad_unknown", "mse_unknown", "grad_unknown", "conn_unknown")
REPORT_KEYS = (*METRIC_KEYS, "fg")
SEQUENCE_SEED = 2_000_000  # held out from training (< 1e6) and from the validation plates
ENGINE_DESPILL = 1.0  # the render CLI's default --despill


# --------------------------------------------------------------------------- samples


@dataclass
class EvalSample:
    """One frame with ground truth, prepared exactly as the engine prepares it."""

    name: str
    frame: PreparedFrame
    alpha: np.ndarray  # HxW ground truth
    fg: np.ndarray | None  # HxWx3 straight linear foreground (no spill), None when unknown
    kinds: tuple[str, ...] = ()

    @property
    def megapixels(self) -> float:
        h, w = self.alpha.shape
        return h * w / 1e6


_SYNTH_CACHE: dict[tuple[int, int, int], list[EvalSample]] = {}


def synthetic_samples(count: int, size: int = 256, seed: int = 1_000_000) -> list[EvalSample]:
    """The fixed validation plates (cached per process: they are deterministic)."""
    key = (count, size, seed)
    if key not in _SYNTH_CACHE:
        from .datasets import make_validation_plates

        out = []
        for i, p in enumerate(make_validation_plates(count, size=size, seed=seed)):
            kinds = tuple(getattr(p, "kinds", ()))
            name = f"val{i:03d}" + (f"[{','.join(kinds)}]" if kinds else "")
            out.append(EvalSample(name, prepare_frame(p.plate), np.asarray(p.alpha, np.float32), p.fg, kinds))
        _SYNTH_CACHE[key] = out
    return _SYNTH_CACHE[key]


def sequence_samples(count: int, size: int = 256, seed: int = SEQUENCE_SEED) -> list[EvalSample]:
    """A synthetic shot: one subject moving smoothly over `count` frames (for temporal flicker)."""
    from .synth.sequence import generate_sequence

    plates = generate_sequence(seed, count, size, size)
    return [
        EvalSample(
            f"seq{i:03d}", prepare_frame(p.plate), np.asarray(p.alpha, np.float32), p.fg, tuple(p.kinds)
        )
        for i, p in enumerate(plates)
    ]


def paired_samples(
    folder: str | Path, count: int, size: int | None = None, seed: int = 0
) -> list[EvalSample]:
    """Artist-keyed frames in the seed layout; no foreground ground truth (fg error is blank).

    size None: the first `count` whole frames (what `gsrender evaluate --data` scores).
    size N: `count` fixed N x N crops without jitter (cheap enough for validation while
    fine-tuning). Either way the guide is estimated on the frame or crop being scored,
    exactly as the engine would for that image.
    """
    from .datasets import PairedSequenceDataset, find_pairs, load_pair

    out = []
    if size is None:
        for rgb, alpha_path in find_pairs(folder)[:count]:
            plate, alpha = load_pair(rgb, alpha_path)
            out.append(EvalSample(rgb.name, prepare_frame(plate), alpha, None))
        return out
    ds = PairedSequenceDataset(folder, crop=size, samples_per_epoch=count, seed=seed, jitter=False)
    for i in range(count):
        item = ds[i]
        plate_lin = item["plate_lin"].numpy().transpose(1, 2, 0)
        out.append(
            EvalSample(f"{Path(folder).name}#{i}", prepare_frame(plate_lin), item["alpha"].numpy()[0], None)
        )
    return out


def hard_half(samples: Sequence[EvalSample]) -> list[EvalSample]:
    """The half of the plates where the classic keyer's SAD is highest.

    Defined by the classic keyer, not by the model under test, so every model is scored
    on the same subset. Ties keep the original order; at least one plate is kept.
    """
    classic = ClassicPredictor()
    scores = [float(np.abs(classic(s)[0] - s.alpha).sum()) for s in samples]
    order = sorted(range(len(samples)), key=lambda i: (-scores[i], i))
    keep = sorted(order[: max(1, len(samples) // 2)])
    return [samples[i] for i in keep]


# --------------------------------------------------------------------------- predictors

# A predictor maps a sample to (alpha HxW, encoded local screen colour 3xHxW or None).
Predictor = Callable[[EvalSample], tuple[np.ndarray, np.ndarray | None]]


def _pad_chw(x: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """Replicate the bottom/right edge to a multiple of the stride (as the engine's tiler does)."""
    _, h, w = x.shape
    ph, pw = -h % stride, -w % stride
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="edge")
    return np.ascontiguousarray(x, dtype=np.float32)


class TorchPredictor:
    """Any of the three networks, in eval mode, on its current device."""

    def __init__(self, model: torch.nn.Module, model_name: str, label: str | None = None) -> None:
        self.model = model
        self.model_name = model_name
        self.label = label or model_name

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> TorchPredictor:
        ckpt = load_checkpoint(path)
        return cls(model_from_checkpoint(ckpt), checkpoint_model_name(ckpt), Path(path).name)

    @torch.no_grad()
    def __call__(self, s: EvalSample) -> tuple[np.ndarray, np.ndarray | None]:
        h, w = s.frame.plate_lin.shape[:2]  # not s.alpha: real plates have no ground truth
        dev = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        try:
            p = torch.from_numpy(_pad_chw(s.frame.plate_enc))[None].to(dev)
            sc = torch.from_numpy(_pad_chw(s.frame.screen_enc))[None].to(dev)
            if self.model_name in KEYERS:
                alpha, bg = self.model(p, sc)
                bg_np = bg[0, :, :h, :w].float().cpu().numpy()
            else:
                alpha, bg_np = self.model.predict_alpha(p, sc), None
        finally:
            self.model.train(was_training)
        return alpha[0, 0, :h, :w].float().cpu().numpy(), bg_np


class OnnxPredictor:
    """An exported gskey model through the engine's ONNX Runtime backend (CPU)."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        from gsrender.engine.backends.onnx_runtime import OnnxRuntimeBackend

        self.backend = OnnxRuntimeBackend(path, device="cpu", threads=threads)
        self.label = Path(path).name

    def __call__(self, s: EvalSample) -> tuple[np.ndarray, np.ndarray | None]:
        from gsrender.engine.keyer import infer_frame

        return infer_frame(s.frame, self.backend)  # the engine's own padding and tiling


class ClassicPredictor:
    """The classic colour-difference keyer on the linear plate and the smooth screen guide."""

    label = "classic"

    def __call__(self, s: EvalSample) -> tuple[np.ndarray, np.ndarray | None]:
        from gsrender.engine.classic_keyer import classic_key

        est = s.frame.screen
        return classic_key(s.frame.plate_lin, est.smooth, est.colour), None


def load_predictor(spec: str, threads: int = 0) -> Predictor:
    """'classic', a path to an .onnx gskey model, or a training checkpoint (.pt)."""
    if spec == "classic":
        return ClassicPredictor()
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"model '{spec}' is not 'classic' or an existing .onnx/.pt file")
    if path.suffix == ".onnx":
        return OnnxPredictor(path, threads)
    return TorchPredictor.from_checkpoint(path)


# --------------------------------------------------------------------------- scoring


def predicted_foreground(s: EvalSample, alpha: np.ndarray, bg_enc: np.ndarray | None) -> np.ndarray:
    """The straight foreground the engine would write, from alpha and a local screen colour."""
    bg = s.frame.screen_enc if bg_enc is None else bg_enc
    keyed = finish_frame(s.frame, np.asarray(alpha, np.float32), bg, ENGINE_DESPILL)
    return straight_foreground(keyed.premult, keyed.alpha)


def score_sample(s: EvalSample, alpha: np.ndarray, bg_enc: np.ndarray | None) -> dict[str, float]:
    """Matting metrics on the whole frame and unknown band, plus the foreground error."""
    rep = matting_report(np.clip(alpha, 0.0, 1.0), s.alpha)
    out = {k: float(rep[k]) for k in METRIC_KEYS}
    out["fg"] = (
        float(foreground_error(predicted_foreground(s, alpha, bg_enc), s.fg, s.alpha))
        if s.fg is not None
        else math.nan
    )
    return out


def evaluate_predictor(
    predictor: Predictor, samples: Sequence[EvalSample], timing: bool = True, temporal: bool = False
) -> dict[str, Any]:
    """Mean metrics over the samples, ms per megapixel and the per-sample rows.

    temporal: the samples are consecutive frames of one shot; also report the temporal
    flicker of the alpha (dtSSD against the ground truth's own motion).
    """
    if timing and samples:
        predictor(samples[0])  # warm-up: first-call allocations and kernel selection
    rows = []
    alphas = []
    seconds, mp = 0.0, 0.0
    for s in samples:
        t0 = time.perf_counter()
        alpha, bg = predictor(s)
        seconds += time.perf_counter() - t0
        mp += s.megapixels
        rows.append({"sample": s.name, **score_sample(s, alpha, bg)})
        alphas.append(np.clip(alpha, 0.0, 1.0))
    means: dict[str, float] = {}
    for k in REPORT_KEYS:
        vals = [r[k] for r in rows if not math.isnan(r[k])]
        means[k] = float(np.mean(vals)) if vals else math.nan
    means["ms_per_mp"] = 1000.0 * seconds / mp if (timing and mp > 0) else math.nan
    means["flicker"] = (
        float(temporal_flicker(alphas, [s.alpha for s in samples]))
        if temporal and len(samples) > 1
        else math.nan
    )
    return {"metrics": means, "rows": rows}


# --------------------------------------------------------------------------- tables

_HEADERS = {
    "sad": "SAD",
    "mse": "MSE",
    "grad": "Grad",
    "conn": "Conn",
    "sad_unknown": "SAD(u)",
    "mse_unknown": "MSE(u)",
    "grad_unknown": "Grad(u)",
    "conn_unknown": "Conn(u)",
    "fg": "FG err",
    "flicker": "dtSSD",
    "ms_per_mp": "ms/MP",
}


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


def format_table(results: dict[str, dict[str, float]], markdown: bool = False) -> str:
    """Models as rows, metrics as columns (SAD/Grad/Conn in thousands, alpha in [0,1])."""
    cols = list(_HEADERS)
    header = ["model", *(_HEADERS[c] for c in cols)]
    body = [[name, *(_fmt(m.get(c, math.nan)) for c in cols)] for name, m in results.items()]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(cols)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def fmt_row(r: list[str]) -> str:
        return "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))

    return "\n".join([fmt_row(header), fmt_row(["-" * w for w in widths]), *(fmt_row(r) for r in body)])


def write_csv(path: str | Path, results: dict[str, dict[str, float]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", *_HEADERS])
        for name, m in results.items():
            w.writerow([name, *(m.get(c, math.nan) for c in _HEADERS)])


def _unique_labels(specs: Sequence[str], preds: Sequence[Any]) -> list[str]:
    labels = []
    for spec, p in zip(specs, preds, strict=True):
        base = getattr(p, "label", spec)
        label = base if base not in labels else spec
        labels.append(label if label not in labels else f"{label}#{len(labels)}")
    return labels


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
        help="a checkpoint .pt (gskey or a seed net), an .onnx gskey model, or 'classic'; repeatable",
    )
    ap.add_argument(
        "--data",
        default="synthetic",
        help="'synthetic' (the fixed validation plates), 'sequence' (a held-out synthetic shot of "
        "--count frames, adds temporal flicker), 'indep:DIR' (a path-traced set rendered by "
        "python -m gsrender.training.indep_val; also prints every plate) or a folder of keyed frames "
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
    ap.add_argument("--csv", help="also write the table to this CSV file")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--per-plate", action="store_true", help="also print every plate's metrics")
    return ap


def main(argv: list[str] | None = None) -> int:
    """`gsrender evaluate`: 0, or 2 on bad options or models (errors as every verb reports them)."""
    from gsrender.engine.command import run_command

    return run_command(_main, argv, "evaluate")


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.count < 1 or args.size < 8:
        print("gsrender evaluate: --count must be >= 1 and --size >= 8", file=sys.stderr)
        return 2
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.real is not None:
        from .real_eval import main_real

        return main_real(args)
    if args.sheet:
        print("gsrender evaluate: --sheet needs --real", file=sys.stderr)
        return 2
    try:
        preds = [load_predictor(m, args.threads) for m in args.model]
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"gsrender evaluate: {exc}", file=sys.stderr)
        return 2
    indep = args.data.startswith("indep:")
    temporal = args.data != "synthetic" and not indep
    if indep:  # the path-traced independent validation set (gsrender.training.indep_val)
        from .indep_val import IndepValError
        from .indep_val.evaluation import indep_samples

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
    for label, pred in zip(_unique_labels(args.model, preds), preds, strict=True):
        res = evaluate_predictor(pred, samples, temporal=temporal and not args.hard_half)
        results[label] = res["metrics"]
        rows_by_model[label] = res["rows"]
        if args.per_plate:
            for r in res["rows"]:
                print(
                    f"{label}  "
                    + "  ".join(f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in r.items())
                )
    print(
        f"# {where}; SAD/Grad/Conn /1000, alpha in [0,1]; (u) = unknown band; ms/MP on CPU "
        f"({torch.get_num_threads()} threads)"
    )
    print(format_table(results, markdown=args.markdown))
    if indep:
        from .indep_val.evaluation import format_per_plate

        print(format_per_plate(rows_by_model, markdown=args.markdown))
    if args.csv:
        write_csv(args.csv, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
