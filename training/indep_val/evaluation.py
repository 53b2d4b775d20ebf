"""The rendered set as evaluation samples, and a per-plate table for `gsrender evaluate`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .dataset import load_indep_val, read_manifest

PER_PLATE_KEYS = (("sad", "SAD"), ("mse", "MSE"), ("grad", "Grad"), ("conn", "Conn"))


def indep_samples(folder: str | Path, count: int | None = None) -> list:
    """The first `count` plates of a rendered set as EvalSamples, prepared exactly as the engine
    prepares a frame (prepare_frame on the linear plate: screen estimate, network encoding)."""
    from gsrender.engine.keyer import prepare_frame

    from ..evaluate import EvalSample

    kinds = {
        p.get("name"): (str(p.get("kind", "")), str(p.get("screen", "")))
        for p in read_manifest(folder)["plates"]
    }
    return [
        EvalSample(name, prepare_frame(plate), alpha, fg, kinds.get(name, ()))
        for name, plate, alpha, fg in load_indep_val(folder, count)
    ]


def _fmt(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.4g}"


def format_per_plate(rows_by_model: Mapping[str, Sequence[Mapping[str, Any]]], markdown: bool = False) -> str:
    """Plates as rows; SAD, MSE, Grad, Conn of every model side by side, then the mean row."""
    models = list(rows_by_model)
    header = ["plate"] + [f"{label} {m}" for key, label in PER_PLATE_KEYS for m in models]
    first = rows_by_model[models[0]] if models else []
    body = []
    for i, row in enumerate(first):
        body.append(
            [str(row["sample"])]
            + [_fmt(float(rows_by_model[m][i][key])) for key, _ in PER_PLATE_KEYS for m in models]
        )
    means = ["mean"]
    for key, _ in PER_PLATE_KEYS:
        for m in models:
            vals = [float(r[key]) for r in rows_by_model[m] if not math.isnan(float(r[key]))]
            means.append(_fmt(sum(vals) / len(vals)) if vals else "-")
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
