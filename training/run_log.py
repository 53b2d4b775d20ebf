"""A training run's record in its folder: log.csv and loss.png as it goes, train_info.json at the end.

log.csv is rewritten on resume to drop the steps after the checkpoint, so a resumed run's log
reads as one uninterrupted run; train_info.json keeps every session's timings and hardware.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gsrender.engine.atomic_files import replacing

from .evaluate import REPORT_KEYS

if TYPE_CHECKING:
    from .trainer import Trainer, _Session

VAL_COLUMNS = [f"val_{k}" for k in REPORT_KEYS]


def _read_log(path: Path, up_to_step: int) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("step") and int(r["step"]) <= up_to_step]


class RunLog:
    """log.csv (rewritten on resume to drop steps after the checkpoint) and loss.png."""

    def __init__(self, out: Path, parts: list[str], resume_step: int | None) -> None:
        self.path = out / "log.csv"
        self.png = out / "loss.png"
        self.parts = parts
        self.columns = ["step", "seconds", "lr", "loss", *parts, *VAL_COLUMNS]
        self.rows = _read_log(self.path, resume_step) if resume_step is not None else []
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, self.columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(self.rows)

    def append(self, row: dict[str, Any]) -> None:
        clean = {k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        self.rows.append({k: str(v) for k, v in clean.items()})
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(clean)

    def plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        def series(key: str) -> tuple[list[int], list[float]]:
            pts = [(int(r["step"]), float(r[key])) for r in self.rows if r.get(key, "") not in ("", "nan")]
            return [p[0] for p in pts], [p[1] for p in pts]

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        for key in ["loss", *self.parts]:
            x, y = series(key)
            if x and all(v > 0 for v in y):
                ax1.plot(
                    x, y, label="total (weighted)" if key == "loss" else key, lw=1.5 if key == "loss" else 0.8
                )
        ax1.set_yscale("log")
        ax1.set_xlabel("step")
        ax1.set_title("training loss (parts unweighted)")
        ax1.legend(fontsize=8)
        ax1.grid(alpha=0.3)
        for key, label in (("val_sad", "SAD"), ("val_sad_unknown", "SAD unknown band")):
            x, y = series(key)
            if x:
                ax2.plot(x, y, marker="o", ms=3, label=label)
        ax2.set_xlabel("step")
        ax2.set_title("validation SAD (/1000, per plate)")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
        fig.tight_layout()
        with replacing(self.png) as tmp:
            fig.savefig(tmp, dpi=90)
        plt.close(fig)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: torch.device, world: int) -> dict[str, Any]:
    hw: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device.type,
        "world_size": world,
    }
    if device.type == "cuda":
        hw["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return hw


def write_train_info(trainer: Trainer, info: dict[str, Any], session: _Session, resumed: bool) -> None:
    """train_info.json: the set-up, this session's timings and results, and every session so far."""
    p = trainer.progress
    info.update(
        finished_step=p.step,
        wall_seconds=round(time.perf_counter() - session.started, 3),
        train_seconds=round(session.train_seconds, 3),
        total_elapsed_seconds=round(p.elapsed, 3),
        steps_per_second=round((p.step - session.start_step) / max(session.train_seconds, 1e-9), 4),
        best_val_sad=p.best_sad,
        best_step=p.best_step,
        last_val=session.last_val,
    )
    info_path = trainer.out / "train_info.json"
    history = []
    if info_path.is_file() and resumed:
        try:
            prev = json.loads(info_path.read_text())
            history = prev.get("sessions", [])
        except (OSError, ValueError):
            history = []
    keys = ("started_at_step", "finished_step", "wall_seconds", "steps_per_second", "hardware")
    info["sessions"] = [*history, {k: info[k] for k in keys}]
    info_path.write_text(json.dumps(info, indent=2, default=str) + "\n")
