"""The table of a real-footage evaluation: one row per plate and model, means per model, as text,
markdown or CSV (the GT-free measures of gsrender.training.real_eval)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

COLUMNS = {
    "leak": "leak",
    "leak_frac": "leak>.05",
    "holes": "holes",
    "holes_frac": "holes<.95",
    "edge_corr": "detail r",
    "edge_hf": "detail gain",
    "flicker": "flicker",
    "cov_screen": "scr cov",
    "cov_subject": "subj cov",
    "cov_band": "band cov",
    "cov_static": "static",
}


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.3f}"
    return str(v)


@dataclass
class RealTable:
    """Per plate and model measures (rows) and their means per model."""

    models: list[str]
    rows: list[dict[str, object]] = field(default_factory=list)  # plate, screen, model, COLUMNS...

    def means(self) -> dict[str, dict[str, float]]:
        """Per model, the mean of each measure over the plates where it exists (nan if none)."""
        out: dict[str, dict[str, float]] = {}
        for m in self.models:
            mine = [r for r in self.rows if r["model"] == m]
            out[m] = {}
            for k in COLUMNS:
                vals = [float(r[k]) for r in mine if not math.isnan(float(r[k]))]  # type: ignore[arg-type]
                out[m][k] = float(np.mean(vals)) if vals else math.nan
        return out

    def _body(self) -> list[list[str]]:
        body = [[_fmt(r[c]) for c in ("plate", "screen", "model", *COLUMNS)] for r in self.rows]
        for m, vals in self.means().items():
            body.append(["mean", "", m, *(_fmt(vals[k]) for k in COLUMNS)])
        return body

    def format(self, markdown: bool = False) -> str:
        header = ["plate", "screen", "model", *COLUMNS.values()]
        body = self._body()
        if markdown:
            lines = [
                "| " + " | ".join(header) + " |",
                "|" + "|".join(["---"] * 3 + ["---:"] * len(COLUMNS)) + "|",
            ]
            return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

        def line(r: list[str]) -> str:
            return "  ".join(c.ljust(widths[i]) if i < 3 else c.rjust(widths[i]) for i, c in enumerate(r))

        return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in body)])

    def write_csv(self, path: str | Path) -> None:
        import csv

        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["plate", "screen", "model", *COLUMNS])
            for r in self.rows:
                w.writerow([r["plate"], r["screen"], r["model"], *(r[k] for k in COLUMNS)])
            for m, vals in self.means().items():
                w.writerow(["mean", "", m, *(vals[k] for k in COLUMNS)])
