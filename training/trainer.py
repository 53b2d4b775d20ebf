"""The trainer: a keying network trained from a TOML config, resumed, fine-tuned, scaled with torchrun.

The command line (`gsrender train`, `gsrender-train`) is gsrender.cli.train; the batches are
training/batches.py; the run's log and summary training/run_log.py.

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

import math
import platform
import random
import shlex
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsrender.engine.atomic_files import file_sha256, replacing
from gsrender.models.checkpoint import load_checkpoint
from gsrender.models.networks import build_model

from . import config as C
from .batches import BatchStream, Dist, build_dataset, build_val_samples
from .evaluate import (
    REPORT_KEYS,
    EvalSample,
    TorchPredictor,
    evaluate_predictor,
)
from .losses import anchor_mask, compute_loss, loss_part_names
from .run_log import RunLog, hardware, write_train_info

CKPT_FORMAT = 1
BATCH_KEYS = ("plate", "screen", "alpha", "plate_lin", "bg", "has_fg")  # what the losses read
MAX_BAD_STEPS = 20  # consecutive non-finite losses before giving up


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
        self.teacher: torch.nn.Module | None = None  # loss.anchor's frozen starting weights

    def anchor_teacher(self) -> torch.nn.Module:
        """The fine-tune's starting weights, frozen (loaded once): what loss.anchor holds alpha to."""
        if self.teacher is None:
            path = teacher_path(self.finetuned_from)
            kwargs = {**self.cfg["model"]["kwargs"], **self.cfg["model"]["teacher_kwargs"]}
            teacher = build_model(self.name, **kwargs).to(self.device)
            teacher.load_state_dict(load_checkpoint(path)["model"])
            self.teacher = teacher.eval().requires_grad_(False)
        return self.teacher

    def add_anchor(self, batch: dict[str, torch.Tensor]) -> None:
        """The teacher's alpha and where the anchor holds it (losses.anchor_mask: gate shut, or
        teacher opaque, each let go where the teacher keys over its tolerance above the truth)."""
        teacher = self.anchor_teacher()
        with torch.no_grad():  # the evidence once: the gate is the one the teacher keys with
            ev = teacher.evidence(batch["plate"], batch["screen"])
            gate = ev.gate.float()
            batch["teacher_alpha"] = teacher.key_from_evidence(ev)[0].float()
        loss = self.cfg["loss"]
        batch["anchor_mask"] = anchor_mask(
            gate,
            batch["teacher_alpha"],
            loss["anchor_opaque"],
            batch["alpha"].float(),
            loss["anchor_tolerance"],
            loss["anchor_opaque_tolerance"],
        )

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
        if self.weights.get("anchor", 0.0):
            self.add_anchor(batch)
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


def _portable(path: Path) -> str:
    """The --finetune path as recorded: relative to the working folder when it lies inside it (the
    shipped models/gskey.pt run from a checkout's root), so a run resumes from another checkout."""
    real = path.resolve()
    try:
        return str(real.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(real)


def teacher_path(finetuned_from: dict[str, str] | None) -> Path:
    """The --finetune file a run started from, unchanged: loss.anchor's teacher (ValueError if not)."""
    if not finetuned_from:
        raise ValueError("loss.anchor needs a run started with --finetune (the teacher's weights)")
    path = Path(finetuned_from["path"])
    if not path.is_file() or file_sha256(path) != finetuned_from["sha256"]:
        raise ValueError(f"{path}: loss.anchor's teacher (the --finetune file) is missing or changed")
    return path


def check_anchor_teacher(cfg: dict[str, Any], finetune: str | None, resume: dict[str, Any] | None) -> None:
    """With loss.anchor, a new run needs --finetune and a resumed one its unchanged --finetune file."""
    if not cfg["loss"]["anchor"]:
        return
    if resume is not None:
        teacher_path(resume.get("finetuned_from"))
    elif not finetune:
        raise ValueError("loss.anchor needs --finetune CKPT: its weights, frozen, are the teacher")


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


def check_model_options(cfg: dict[str, Any], source: str) -> None:
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
        finetuned_from = {"path": _portable(Path(finetune)), "sha256": file_sha256(Path(finetune))}
    return Trainer(cfg, out, rank, device, command, model, finetuned_from)


def _run_info(trainer: Trainer, argv: list[str]) -> dict[str, Any]:
    """What train_info.json records about this session's set-up."""
    return {
        "command": trainer.command,
        "argv": list(argv),
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
        "hardware": hardware(trainer.device, trainer.rank.world),
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


# --------------------------------------------------------------------------- the run


def pick_device(cfg: dict[str, Any], rank: Dist) -> torch.device:
    want = cfg["train"]["device"]
    if want == "cuda" or (want == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("train.device = cuda but CUDA is not available")
        torch.cuda.set_device(rank.local_rank)
        return torch.device("cuda", rank.local_rank)
    return torch.device("cpu")


def run_session(
    cfg: dict[str, Any],
    argv: list[str],
    out: Path,
    rank: Dist,
    device: torch.device,
    resume: dict[str, Any] | None,
    finetune: str | None = None,
    until: int | None = None,
) -> int:
    """One session of a run: set up (or resume; else start from `finetune`'s weights when given), train up
    to the stop step (`until`, else train.steps), write the run summary; the exit status."""
    if cfg["train"]["threads"] > 0:
        torch.set_num_threads(cfg["train"]["threads"])
    command = _prepare_run_folder(cfg, argv, out, rank, resume)
    trainer = _build_trainer(cfg, finetune if resume is None else None, out, rank, device, command)
    if resume is not None:
        trainer.restore(resume)

    total_steps = cfg["train"]["steps"]
    stop = min(total_steps, until) if until is not None else total_steps
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
        write_train_info(trainer, info, session, resumed=resume is not None)
        p = trainer.progress
        print(
            f"gsrender-train: done, step {p.step}; best validation SAD {p.best_sad:.4g} "
            f"at step {p.best_step}; {out / 'best.pt'}"
        )
    rank.barrier()
    return 0
