"""Train a keying network from a TOML config; resume, fine-tune and scale with torchrun.

    gsrender-train --config training/configs/gskey.toml --out runs/gskey [--steps N] [--resume]
                   [--set optim.lr=5e-4 ...] [--device cpu|cuda]
    gsrender-train --finetune models/gskey.pt --data shot010/keyed --out runs/shot010
    torchrun --nproc_per_node 4 -m gsrender.training.train --config gskey --out runs/gskey

The run folder holds only what is needed to continue, pick and explain a run:
config.toml (the config actually used), log.csv, loss.png, train_info.json, last.pt
(everything to resume: model, optimiser, schedule, step, RNG states) and best.pt (the
weights with the lowest validation SAD). Checkpoints are plain dicts of tensors and
primitive values, loadable with ``torch.load(weights_only=True)``.

Reproducibility: the model is initialised from ``train.seed``; every dataset index is a
fixed sample (synthetic plates are generated from base_seed + index); the sample order
of each epoch comes from a DistributedSampler seeded with ``train.seed``; a resumed run
skips the samples already seen in its epoch, so it continues with the same batches an
uninterrupted run would have used.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import random
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from gsrender.engine.atomic_files import file_sha256, replacing
from gsrender.engine.environment import env_whole
from gsrender.models.checkpoint import load_checkpoint
from gsrender.models.networks import build_model

from . import config as C
from .evaluate import (
    REPORT_KEYS,
    EvalSample,
    TorchPredictor,
    evaluate_predictor,
    paired_samples,
    synthetic_samples,
)
from .losses import compute_loss, loss_part_names
from .synth.generator import LightingMix

CKPT_FORMAT = 1
BATCH_KEYS = ("plate", "screen", "alpha", "plate_lin", "bg", "has_fg")  # what the losses read
VAL_COLUMNS = [f"val_{k}" for k in REPORT_KEYS]
MAX_BAD_STEPS = 20  # consecutive non-finite losses before giving up


# --------------------------------------------------------------------------- distributed


class Dist:
    """Rank facts; a single process is world size 1, rank 0."""

    def __init__(self) -> None:
        # set by torchrun; a bad value is one line (exit 2), not a ValueError traceback
        self.world = env_whole("WORLD_SIZE", 1, 1, 65536)
        self.rank = env_whole("RANK", 0, 0, self.world - 1)
        self.local_rank = env_whole("LOCAL_RANK", 0, 0, 65535)
        self.enabled = self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def init(self, device: torch.device) -> None:
        if self.enabled and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_mean(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            t = t.clone()
            dist.all_reduce(t)
            t /= self.world
        return t

    def all_true(self, flag: torch.Tensor) -> bool:
        """True when the flag holds on every rank (ranks must agree before skipping a step)."""
        if self.enabled:
            flag = flag.to(torch.int32)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag)

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


# --------------------------------------------------------------------------- data


class _SkipSampler(Sampler[int]):
    """A DistributedSampler whose first `skip` indices of the current epoch are dropped (resume)."""

    def __init__(self, base: DistributedSampler) -> None:
        self.base = base
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        for i, idx in enumerate(self.base):
            if i >= self.skip:
                yield idx

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)


def _worker_init(worker_id: int) -> None:
    """numpy/random in workers follow torch's per-worker seed (itself from the loader generator)."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def build_dataset(cfg: dict[str, Any]) -> torch.utils.data.Dataset:
    d = cfg["data"]
    from . import datasets

    if d["kind"] == "synthetic":
        return datasets.SyntheticKeyingDataset(
            d["length"], crop=d["crop"], gen_size=d["gen_size"], base_seed=d["base_seed"],
            clean_guide=d["clean_guide"],
            lighting=LightingMix(d["shadow_share"], tuple(d["shadow_strength"]), tuple(d["spill_base"])),
        )  # fmt: skip
    return datasets.PairedSequenceDataset(
        d["folder"], crop=d["crop"], samples_per_epoch=d["samples_per_epoch"], seed=d["seed"]
    )


def build_val_samples(cfg: dict[str, Any]) -> list[EvalSample]:
    d = cfg["data"]
    if d["val_kind"] == "synthetic":
        return synthetic_samples(d["val_count"], d["val_size"], d["val_seed"])
    return paired_samples(d["folder"], d["val_count"], d["val_size"], d["val_seed"])


class BatchStream:
    """Endless batches in a reproducible order that can start at any step."""

    def __init__(self, dataset: Any, cfg: dict[str, Any], rank: Dist, device: torch.device) -> None:
        t = cfg["train"]
        self.seed = t["seed"]
        self.batch = t["batch_size"]
        self.base = DistributedSampler(
            dataset, num_replicas=rank.world, rank=rank.rank, shuffle=True, seed=self.seed, drop_last=True
        )
        self.sampler = _SkipSampler(self.base)
        self.per_epoch = len(self.base) // self.batch
        if self.per_epoch < 1:
            raise ValueError(
                f"the dataset has {len(dataset)} samples, fewer than one batch of {self.batch} per process"
            )
        self.generator = torch.Generator()
        self.loader = DataLoader(
            dataset,
            batch_size=self.batch,
            sampler=self.sampler,
            num_workers=t["num_workers"],
            worker_init_fn=_worker_init,
            generator=self.generator,
            drop_last=True,
            pin_memory=device.type == "cuda",
            persistent_workers=False,
        )

    def from_step(self, step: int) -> Iterator[dict[str, torch.Tensor]]:
        epoch, skip = divmod(step, self.per_epoch)
        while True:
            self.base.set_epoch(epoch)
            self.sampler.skip = skip * self.batch
            self.generator.manual_seed(self.seed * 1_000_003 + epoch)  # worker seeds, per epoch
            yield from self.loader
            epoch, skip = epoch + 1, 0


# --------------------------------------------------------------------------- optimisation


def lr_factor(step: int, cfg: dict[str, Any]) -> float:
    """Multiplier of optim.lr after `step` optimiser steps: linear warm-up, then the schedule."""
    o, total = cfg["optim"], cfg["train"]["steps"]
    warm = o["warmup_steps"]
    if warm and step < warm:
        return (step + 1) / warm
    if o["schedule"] == "constant":
        return 1.0
    if o["schedule"] == "step":
        return float(o["gamma"] ** (step // max(1, o["step_size"])))
    progress = min(1.0, max(0.0, (step - warm) / max(1, total - warm)))
    floor = o["min_lr_ratio"]
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    model: torch.nn.Module, cfg: dict[str, Any]
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    o = cfg["optim"]
    # No weight decay on biases: decaying them only pulls the output offsets towards 0.
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": o["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=o["lr"],
        betas=tuple(o["betas"]),
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    return opt, sched


# --------------------------------------------------------------------------- checkpoints & logs


def _rng_state(device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda"):
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(
        ("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0)
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """Write then rename, so a crash never leaves a half-written checkpoint behind."""
    with replacing(path) as tmp:
        torch.save(obj, tmp)


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


def _hardware(device: torch.device, world: int) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- one session


class Progress:
    """Where a run stands: saved in every checkpoint, restored on resume."""

    def __init__(
        self, step: int = 0, elapsed: float = 0.0, best_sad: float = math.inf, best_step: int = -1
    ) -> None:
        self.step = step
        self.elapsed = elapsed  # seconds of optimiser steps and validation, all sessions together
        self.best_sad = best_sad
        self.best_step = best_step


class _Session:
    """This session's own counters for train_info.json (a run may span several sessions)."""

    def __init__(self, start_step: int) -> None:
        self.start_step = start_step
        self.started = time.perf_counter()
        self.train_seconds = 0.0  # optimiser steps only (no validation / checkpoints)
        self.last_val: dict[str, float] = {}


class Trainer:
    """The model, optimiser, schedule and mixed precision of a run, and the one-job steps on them."""

    def __init__(
        self,
        cfg: dict[str, Any],
        out: Path,
        rank: Dist,
        device: torch.device,
        command: str,
        model: torch.nn.Module,
        finetuned_from: dict[str, str] | None,
    ) -> None:
        self.cfg, self.out, self.rank, self.device, self.command = cfg, out, rank, device, command
        self.name: str = cfg["model"]["name"]
        self.weights: dict[str, float] = cfg["loss"]
        self.parts = loss_part_names(self.name, self.weights)
        self.model = model
        self.net: torch.nn.Module = model  # the DDP wrapper once wrap_distributed() ran
        self.finetuned_from = finetuned_from
        self.opt, self.sched = build_optimizer(model, cfg)
        t_cfg = cfg["train"]
        self.amp = t_cfg["amp"] if device.type == "cuda" else "none"
        if t_cfg["amp"] != "none" and self.amp == "none" and rank.main:
            print("gsrender-train: train.amp needs CUDA; training in float32 on the CPU")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == "fp16")
        self.progress = Progress()

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Continue from a last.pt: weights, optimiser, schedule, scaler, progress and RNG states."""
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.progress = Progress(
            int(ckpt["step"]), float(ckpt["elapsed"]), float(ckpt["best_val_sad"]), int(ckpt["best_step"])
        )
        self.finetuned_from = ckpt.get("finetuned_from")
        _set_rng_state(ckpt["rng"], self.device)
        if self.rank.main:
            print(f"gsrender-train: resuming {self.out} at step {self.progress.step}")

    def wrap_distributed(self) -> None:
        """Train through DistributedDataParallel when there is more than one process."""
        if self.rank.enabled:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )

    def train_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """One optimiser step; the total and unweighted part losses, or None (no step taken)
        when the loss is not finite on some rank."""
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if k in BATCH_KEYS}
        amp_dtype = self.amp_dtype
        ctx = torch.autocast(self.device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
        with ctx:
            outputs = self.net(batch["plate"], batch["screen"])
        total, part_vals = compute_loss(self.name, outputs, batch, self.weights)
        self.opt.zero_grad(set_to_none=True)
        if not self.rank.all_true(torch.isfinite(total)):
            return None
        self.scaler.scale(total).backward()
        if self.cfg["optim"]["grad_clip"] > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg["optim"]["grad_clip"])
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        self.progress.step += 1
        return torch.stack([total.detach(), *(part_vals[p] for p in self.parts)]).float()

    def validate(self, samples: list[EvalSample]) -> dict[str, float]:
        """Validation metrics (their time counts as elapsed); a new best SAD writes best.pt."""
        p = self.progress
        t_val = time.perf_counter()
        val = evaluate_predictor(TorchPredictor(self.model, self.name), samples, timing=False)["metrics"]
        p.elapsed += time.perf_counter() - t_val
        if val["sad"] < p.best_sad:
            p.best_sad, p.best_step = val["sad"], p.step
            save_atomic(self.checkpoint(val, with_optimizer=False), self.out / "best.pt")
        self.net.train()
        return val

    def checkpoint(self, val: dict[str, float] | None, with_optimizer: bool = True) -> dict[str, Any]:
        """The weights, config and progress; with_optimizer adds what a resume needs."""
        p = self.progress
        ck: dict[str, Any] = {
            "format": CKPT_FORMAT,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "config": self.cfg,
            "config_json": C.config_json(self.cfg),
            "config_sha256": C.config_sha256(self.cfg),
            "train_command": self.command,
            "step": p.step,
            "elapsed": p.elapsed,
            "best_val_sad": p.best_sad,
            "best_step": p.best_step,
            "val": dict(val or {}),
            "torch_version": str(torch.__version__),
            "finetuned_from": self.finetuned_from,
        }
        if with_optimizer:
            ck.update(
                optimizer=self.opt.state_dict(),
                scheduler=self.sched.state_dict(),
                scaler=self.scaler.state_dict() if self.scaler.is_enabled() else {},
                rng=_rng_state(self.device),
            )
        return ck


def _prepare_run_folder(
    cfg: dict[str, Any], argv: list[str], out: Path, rank: Dist, resume: dict[str, Any] | None
) -> str:
    """Write config.toml (rank 0) and return the command line that made the run, earlier sessions first."""
    command = shlex.join(["gsrender-train", *argv])
    if resume is not None and resume.get("train_command"):
        command = f"{resume['train_command']} && {command}"
    if rank.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.toml").write_text(C.dump_toml(cfg))
    rank.barrier()
    return command


def _check_model_options(cfg: dict[str, Any], source: str) -> None:
    """Build the network once so a model option it does not take is a one-line error, not a crash."""
    try:
        build_model(cfg["model"]["name"], **dict(cfg["model"]["kwargs"]))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None


def _build_trainer(
    cfg: dict[str, Any], finetune: str | None, out: Path, rank: Dist, device: torch.device, command: str
) -> Trainer:
    """A model initialised from train.seed (or with a fine-tune checkpoint's weights), its optimiser."""

    seed = cfg["train"]["seed"]
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    model = build_model(cfg["model"]["name"], **dict(cfg["model"]["kwargs"])).to(device)
    finetuned_from = None
    if finetune:
        src = load_checkpoint(finetune)
        model.load_state_dict(src["model"])
        finetuned_from = {"path": str(Path(finetune).resolve()), "sha256": file_sha256(Path(finetune))}
    return Trainer(cfg, out, rank, device, command, model, finetuned_from)


def _run_info(trainer: Trainer, argv: list[str]) -> dict[str, Any]:
    """What train_info.json records about this session's set-up."""
    return {
        "command": trainer.command,
        "argv": list(argv),
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
        "hardware": _hardware(trainer.device, trainer.rank.world),
        "config_sha256": C.config_sha256(trainer.cfg),
        "model": trainer.name,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "batch_size_global": trainer.cfg["train"]["batch_size"] * trainer.rank.world,
        "amp": trainer.amp,
        "finetuned_from": trainer.finetuned_from,
        "started_at_step": trainer.progress.step,
    }


def _train_steps(
    trainer: Trainer,
    stream: BatchStream,
    val_samples: list[EvalSample],
    log: RunLog | None,
    stop: int,
    session: _Session,
) -> int:
    """Optimiser steps up to `stop`, with logging, validation, checkpoints and plots on their
    schedules; the exit status (1 after too many non-finite losses in a row)."""
    t_cfg = trainer.cfg["train"]
    p = trainer.progress
    sums = torch.zeros(len(trainer.parts) + 1, device=trainer.device)
    n_sum = 0
    bad_steps = 0
    batches = stream.from_step(p.step)
    trainer.net.train()
    while p.step < stop:
        t0 = time.perf_counter()
        losses = trainer.train_step(next(batches))
        if losses is None:
            bad_steps += 1
            if trainer.rank.main:
                print(f"gsrender-train: non-finite loss at step {p.step + 1}, batch skipped")
            if bad_steps >= MAX_BAD_STEPS:
                print(f"gsrender-train: {bad_steps} non-finite losses in a row; stopping", file=sys.stderr)
                return 1
            continue
        bad_steps = 0
        sums += losses
        n_sum += 1
        dt = time.perf_counter() - t0
        session.train_seconds += dt
        p.elapsed += dt

        final = p.step == stop
        do_val = p.step % t_cfg["val_every"] == 0 or final
        do_log = p.step % t_cfg["log_every"] == 0 or do_val
        do_ckpt = p.step % t_cfg["ckpt_every"] == 0 or do_val
        if do_log:
            means = (trainer.rank.all_mean(sums) / max(1, n_sum)).tolist()
            sums.zero_()
            n_sum = 0
        if not trainer.rank.main:
            continue
        assert log is not None  # rank 0 keeps the log
        val: dict[str, float] = {}
        if do_val:
            val = session.last_val = trainer.validate(val_samples)
        if do_log:
            _log_step(trainer, log, means, val, session)
        if do_ckpt:
            save_atomic(trainer.checkpoint(session.last_val), trainer.out / "last.pt")
        if p.step % t_cfg["plot_every"] == 0 or final:
            log.plot()
    return 0


def _log_step(
    trainer: Trainer, log: RunLog, means: list[float], val: dict[str, float], session: _Session
) -> None:
    """A log.csv row and a progress line: mean losses since the last row, lr, rate, validation."""
    p, parts = trainer.progress, trainer.parts
    lr = trainer.sched.get_last_lr()[0]
    row = {"step": p.step, "seconds": round(p.elapsed, 3), "lr": f"{lr:.6g}", "loss": f"{means[0]:.6g}"}
    row.update({k: f"{v:.6g}" for k, v in zip(parts, means[1:], strict=True)})
    row.update({f"val_{k}": (f"{val[k]:.6g}" if k in val else "") for k in REPORT_KEYS})
    log.append(row)
    rate = (p.step - session.start_step) / max(session.train_seconds, 1e-9)
    msg = f"step {p.step}/{trainer.cfg['train']['steps']}  loss {means[0]:.4g}  " + "  ".join(
        f"{k} {v:.4g}" for k, v in zip(parts, means[1:], strict=True)
    )
    msg += f"  lr {lr:.3g}  {rate:.2f} steps/s"
    if val:
        msg += f"  | val SAD {val['sad']:.4g} (best {p.best_sad:.4g} @ {p.best_step})"
    print(msg, flush=True)


def _write_train_info(trainer: Trainer, info: dict[str, Any], session: _Session, resumed: bool) -> None:
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


# --------------------------------------------------------------------------- the run


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


def _resolve_config(args: argparse.Namespace, resume_ckpt: dict[str, Any] | None) -> dict[str, Any]:
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
        if args.finetune and not args.config:  # a shot fine-tune keeps the network it starts from
            src = load_checkpoint(args.finetune)
            cfg["model"] = C.from_dict(src["config"])["model"]
    if args.steps is not None:
        cfg["train"]["steps"] = args.steps
    if args.device:
        cfg["train"]["device"] = args.device
    C.validate(cfg)
    return cfg


def _pick_device(cfg: dict[str, Any], rank: Dist) -> torch.device:
    want = cfg["train"]["device"]
    if want == "cuda" or (want == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("train.device = cuda but CUDA is not available")
        torch.cuda.set_device(rank.local_rank)
        return torch.device("cuda", rank.local_rank)
    return torch.device("cpu")


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
            "(a training phase of its own, e.g. training/configs/gskey2_phase2.toml)",
            file=sys.stderr,
        )
        return 2
    if last_path.exists() and not args.resume:
        msg = f"{out} already holds a run; pass --resume to continue it or pick another --out"
        print(f"gsrender-train: {msg}", file=sys.stderr)
        return 2
    resume = load_checkpoint(last_path) if (args.resume and last_path.exists()) else None
    try:
        cfg = _resolve_config(args, resume)
        _check_model_options(cfg, args.config or "the default config")
        device = _pick_device(cfg, rank)
    except (ValueError, FileNotFoundError) as exc:
        print(f"gsrender-train: {exc}", file=sys.stderr)
        return 2
    rank.init(device)
    try:
        return _train(cfg, args, argv, out, rank, device, resume)
    finally:
        rank.close()


def _train(
    cfg: dict[str, Any],
    args: argparse.Namespace,
    argv: list[str],
    out: Path,
    rank: Dist,
    device: torch.device,
    resume: dict[str, Any] | None,
) -> int:
    """One session of a run: set up (or resume), train up to the stop step, write the run summary."""
    if cfg["train"]["threads"] > 0:
        torch.set_num_threads(cfg["train"]["threads"])
    command = _prepare_run_folder(cfg, argv, out, rank, resume)
    trainer = _build_trainer(cfg, args.finetune if resume is None else None, out, rank, device, command)
    if resume is not None:
        trainer.restore(resume)

    total_steps = cfg["train"]["steps"]
    stop = min(total_steps, args.until) if args.until is not None else total_steps
    if trainer.progress.step >= stop:
        if rank.main:
            print(
                f"gsrender-train: {out} is already at step {trainer.progress.step} (stop at {stop}); "
                "nothing to do"
            )
        return 0

    trainer.wrap_distributed()
    stream = BatchStream(build_dataset(cfg), cfg, rank, device)
    val_samples = build_val_samples(cfg) if rank.main else []
    resume_step = trainer.progress.step if resume is not None else None
    log = RunLog(out, trainer.parts, resume_step) if rank.main else None
    info = _run_info(trainer, argv)
    session = _Session(trainer.progress.step)
    status = _train_steps(trainer, stream, val_samples, log, stop, session)
    if status:
        return status
    if rank.main:
        _write_train_info(trainer, info, session, resumed=resume is not None)
        p = trainer.progress
        print(
            f"gsrender-train: done, step {p.step}; best validation SAD {p.best_sad:.4g} "
            f"at step {p.best_step}; {out / 'best.pt'}"
        )
    rank.barrier()
    return 0


if __name__ == "__main__":
    sys.exit(main())
