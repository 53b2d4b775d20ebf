"""Compare keyers on the same plates with the standard matting metrics (the library).

The `gsrender evaluate` command that drives it is gsrender.cli.evaluate.

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

import csv
import math
import time
from collections.abc import Callable, Mapping, Sequence
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
    """The classic keyer through the engine's classic backend, tiles and all: it keys what
    `--keyer classic` keys (the bounded encoding, so an HDR plate's highlights clip as they do
    in a render). The screen colour output is None: the unmix uses the screen guide."""

    label = "classic"

    def __init__(self) -> None:
        from gsrender.engine.backends.classic import ClassicBackend

        self.backend = ClassicBackend()

    def __call__(self, s: EvalSample) -> tuple[np.ndarray, np.ndarray | None]:
        from gsrender.engine.keyer import infer_frame

        return infer_frame(s.frame, self.backend)[0], None


class Despotted:
    """A gsrender keyer's predictions with the render's despot applied (engine/despot.py), so
    evaluation scores the key a render writes; peers are scored as they come."""

    def __init__(self, inner: Predictor, size: int) -> None:
        self.inner = inner
        self.size = size
        self.label = getattr(inner, "label", "")

    def __call__(self, s: EvalSample) -> tuple[np.ndarray, np.ndarray | None]:
        from gsrender.engine.despot import despot

        alpha, bg = self.inner(s)
        return despot(alpha, self.size), bg


PEERS = ("blender",)  # other keyers scored beside ours (gsrender.training.peers)


def load_predictor(spec: str, threads: int = 0, despot: int | None = None) -> Predictor:
    """'classic', 'blender' (Blender's Keying node), an .onnx gskey model or a checkpoint (.pt).

    despot: the despot size gsrender's keyers are scored with (None: the render's default; 0 off).
    """
    from gsrender.engine.despot import DEFAULT_SIZE

    size = DEFAULT_SIZE if despot is None else despot
    if spec == "blender":
        from .peers.blender_keying import BlenderKeyingPredictor

        return BlenderKeyingPredictor()
    if spec == "classic":
        return Despotted(ClassicPredictor(), size)
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"model '{spec}' is not 'classic', 'blender' or an existing .onnx/.pt file")
    if path.suffix == ".onnx":
        return Despotted(OnnxPredictor(path, threads), size)
    return Despotted(TorchPredictor.from_checkpoint(path), size)


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
    A predictor with ``prepare(samples)`` (a peer keyer in another process) keys them all
    in one batch first; its speed is not comparable per call, so ms/MP is left blank.
    """
    if hasattr(predictor, "prepare"):
        predictor.prepare(samples)  # type: ignore[attr-defined]
        timing = False
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


def format_metric(v: float) -> str:
    """A metric as the tables print it: 4 significant digits, "-" for NaN."""
    if math.isnan(v):
        return "-"
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


def format_table(results: dict[str, dict[str, float]], markdown: bool = False) -> str:
    """Models as rows, metrics as columns (SAD/Grad/Conn in thousands, alpha in [0,1])."""
    cols = list(_HEADERS)
    header = ["model", *(_HEADERS[c] for c in cols)]
    body = [[name, *(format_metric(m.get(c, math.nan)) for c in cols)] for name, m in results.items()]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(cols)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def fmt_row(r: list[str]) -> str:
        return "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))

    return "\n".join([fmt_row(header), fmt_row(["-" * w for w in widths]), *(fmt_row(r) for r in body)])


PER_PLATE_KEYS = (("sad", "SAD"), ("grad", "Grad"), ("conn", "Conn"), ("mse", "MSE"))
WORSE_BY = 1.2  # "more than 20% worse" in the comparison with the classic keyer


def format_per_plate(rows_by_model: Mapping[str, Sequence[Mapping[str, Any]]], markdown: bool = False) -> str:
    """Plates as rows; SAD, Grad, Conn, MSE of every model side by side, then the mean row."""
    models = list(rows_by_model)
    header = ["plate"] + [f"{label} {m}" for key, label in PER_PLATE_KEYS for m in models]
    first = rows_by_model[models[0]] if models else []
    body = []
    for i, row in enumerate(first):
        body.append(
            [str(row["sample"])]
            + [format_metric(float(rows_by_model[m][i][key])) for key, _ in PER_PLATE_KEYS for m in models]
        )
    means = ["mean"]
    for key, _ in PER_PLATE_KEYS:
        for m in models:
            vals = [float(r[key]) for r in rows_by_model[m] if not math.isnan(float(r[key]))]
            means.append(format_metric(sum(vals) / len(vals)) if vals else "-")
    body.append(means)
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        ]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))
        for r in [header, *body]
    )


def compare_with(rows_by_model: Mapping[str, Sequence[Mapping[str, Any]]], reference: str) -> list[str]:
    """Per model: on how many plates it beats `reference` (lower SAD, Grad, Conn) and on how
    many it is more than 20% worse (SAD, Grad). One line each; [] without the reference."""
    if reference not in rows_by_model:
        return []
    ref = rows_by_model[reference]
    lines = []
    for m, rows in rows_by_model.items():
        if m == reference:
            continue
        n = len(rows)
        beats = [
            sum(float(r[k]) < float(q[k]) for r, q in zip(rows, ref, strict=True))
            for k, _ in PER_PLATE_KEYS[:3]
        ]
        worse = [
            sum(float(r[k]) > WORSE_BY * float(q[k]) for r, q in zip(rows, ref, strict=True))
            for k in ("sad", "grad")
        ]
        lines.append(
            f"# {m} beats {reference} on SAD {beats[0]}/{n}, Grad {beats[1]}/{n}, Conn {beats[2]}/{n} "
            f"plates; more than 20% worse on SAD {worse[0]}/{n}, Grad {worse[1]}/{n}"
        )
    return lines


def write_csv(path: str | Path, results: dict[str, dict[str, float]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", *_HEADERS])
        for name, m in results.items():
            w.writerow([name, *(m.get(c, math.nan) for c in _HEADERS)])


def unique_labels(specs: Sequence[str], preds: Sequence[Any]) -> list[str]:
    labels = []
    for spec, p in zip(specs, preds, strict=True):
        base = getattr(p, "label", spec)
        label = base if base not in labels else spec
        labels.append(label if label not in labels else f"{label}#{len(labels)}")
    return labels
