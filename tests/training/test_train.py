"""Training loop: tiny runs of every model, resume, determinism, configs, fine-tuning."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gsrender.cli.train import main
from gsrender.training import config as C
from gsrender.training.datasets import make_validation_plates, write_paired_sequence
from gsrender.training.trainer import lr_factor

# A few steps on 32 px crops: exercises every path (data, loss, optimiser, validation,
# checkpoints, log, plot) in seconds on two CPU cores.
COMMON = [
    "--set", "data.crop=32",
    "--set", "data.gen_size=64",
    "--set", "train.batch_size=2",
    "--set", "train.num_workers=0",
    "--set", "train.threads=1",
    "--set", "train.log_every=1",
    "--set", "train.val_every=2",
    "--set", "train.ckpt_every=2",
    "--set", "data.val_count=2",
    "--set", "data.val_size=64",
    "--set", "optim.warmup_steps=1",
]  # fmt: skip
TINY = [*COMMON, "--set", "data.length=16"]


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def _losses(out: Path) -> np.ndarray:
    rows = _rows(out)
    parts = [k for k in rows[0] if k not in ("step", "seconds", "lr") and not k.startswith("val_")]
    return np.array([[float(r[k]) for k in parts] for r in rows])


@pytest.mark.parametrize("model", ["gskey", "seed_regression", "seed_classifier"])
def test_three_steps_write_run_folder(tmp_path: Path, model: str) -> None:
    out = tmp_path / model
    assert main(["--config", model, "--out", str(out), "--steps", "3", *TINY]) == 0
    for name in ("log.csv", "loss.png", "last.pt", "best.pt", "config.toml", "train_info.json"):
        assert (out / name).is_file(), name
    rows = _rows(out)
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert rows[1]["val_sad"] and rows[2]["val_sad"] and not rows[0]["val_sad"]  # val at 2 and at the end

    ckpt = torch.load(out / "last.pt", weights_only=True)  # plain data only
    assert ckpt["step"] == 3 and ckpt["config"]["model"]["name"] == model
    assert ckpt["config_sha256"] == C.config_sha256(ckpt["config"])
    assert {"optimizer", "scheduler", "rng"} <= set(ckpt)
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["val"]["sad"] == pytest.approx(best["best_val_sad"])
    info = json.loads((out / "train_info.json").read_text())
    assert info["finished_step"] == 3 and info["torch_version"] and "hardware" in info
    assert "gsrender-train" in info["command"]
    used = C.load_config(out / "config.toml")
    assert used == ckpt["config"] and used["data"]["crop"] == 32


def test_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    """Same seed -> same losses; a resumed run continues the count with the same batches."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["--config", "gskey", "--out", str(a), "--steps", "4", "--until", "2", *TINY]) == 0
    assert main(["--config", "gskey", "--out", str(a), "--steps", "4"]) == 2  # refuses to overwrite
    assert main(["--config", "gskey", "--out", str(a), "--resume"]) == 0
    assert main(["--config", "gskey", "--out", str(b), "--steps", "4", *TINY]) == 0
    assert [int(r["step"]) for r in _rows(a)] == [1, 2, 3, 4]
    assert torch.load(a / "last.pt", weights_only=True)["step"] == 4
    np.testing.assert_allclose(_losses(a), _losses(b), rtol=1e-5, atol=1e-7)
    wa = torch.load(a / "last.pt", weights_only=True)["model"]
    wb = torch.load(b / "last.pt", weights_only=True)["model"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)
    info = json.loads((a / "train_info.json").read_text())
    assert [s["finished_step"] for s in info["sessions"]] == [2, 4]


def test_finetune_from_checkpoint_on_keyed_frames(tmp_path: Path) -> None:
    base = tmp_path / "base"
    assert main(["--config", "gskey", "--out", str(base), "--steps", "1", *TINY]) == 0
    keyed = tmp_path / "keyed"
    write_paired_sequence(make_validation_plates(2, size=64, seed=7), keyed)
    out = tmp_path / "shot"
    args = ["--finetune", str(base / "last.pt"), "--data", str(keyed), "--out", str(out), "--steps", "2"]
    assert main([*args, *COMMON, "--set", "data.samples_per_epoch=4"]) == 0
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["step"] == 2
    assert ckpt["config"]["data"]["kind"] == "paired" and ckpt["config"]["optim"]["lr"] < 1e-3
    assert ckpt["finetuned_from"]["sha256"]
    assert main(["--finetune", str(base / "last.pt"), "--out", str(tmp_path / "x")]) == 2  # needs --data


def test_a_bad_checkpoint_to_start_from_is_one_line_before_the_run_folder_exists(
    tmp_path: Path, capsys
) -> None:
    """A --finetune file that is truncated, a folder or missing, and a run's last.pt that is
    not a checkpoint: exit 2, one line naming the file, no run folder made."""
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for bad in (junk, tmp_path, tmp_path / "missing.pt"):
        out = tmp_path / "run"
        args = ["--config", "gskey3", "--finetune", str(bad), "--out", str(out), "--steps", "1"]
        assert main([*args, *TINY]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(bad) in err[0], err
        assert not out.exists()
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    (resumed / "last.pt").write_bytes(b"\x80\x02}q")
    assert main(["--config", "gskey3", "--resume", "--out", str(resumed), *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(resumed / "last.pt") in err[0], err


def test_anchor_fine_tune_holds_to_its_frozen_start_and_needs_it(tmp_path: Path, capsys) -> None:
    base = tmp_path / "base"
    assert main(["--config", "gskey3", "--out", str(base), "--steps", "1", *TINY]) == 0
    out = tmp_path / "anchored"
    args = ["--config", "gskey3", "--out", str(out), *TINY, "--set", "loss.anchor=2"]
    assert main([*args, "--steps", "1"]) == 2  # no teacher without --finetune
    assert "--finetune" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--finetune", str(base / "last.pt"), "--steps", "2"]) == 0
    rows = _rows(out)
    assert float(rows[0]["anchor"]) == 0.0  # the first step's student is the teacher
    assert np.isfinite(float(rows[1]["anchor"]))
    (base / "last.pt").write_bytes(b"changed")
    capsys.readouterr()
    assert main(["--out", str(out), "--resume", "--steps", "3"]) == 2  # the teacher must be unchanged
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "teacher" in err[0], err


def test_the_anchor_teacher_keeps_its_own_evidence_form_and_threshold(tmp_path: Path) -> None:
    """model.teacher_kwargs: the teacher keys with the shipped evidence while the student learns a
    new one, so at step one (same weights) the two already differ; loss.anchor_opaque is checked."""
    base = tmp_path / "base"
    assert main(["--config", "gskey3", "--out", str(base), "--steps", "1", *TINY]) == 0
    common = ["--config", "gskey3", *TINY, "--finetune", str(base / "last.pt"), "--steps", "1"]
    common += ["--set", "loss.anchor=2", "--set", "model.kwargs.strength=local"]
    common += ["--set", "loss.anchor_opaque=0.9"]
    assert main([*common, "--out", str(tmp_path / "same")]) == 0
    assert float(_rows(tmp_path / "same")[0]["anchor"]) == 0.0
    assert main([*common, "--set", "model.teacher_kwargs.strength=max", "--out", str(tmp_path / "own")]) == 0
    assert float(_rows(tmp_path / "own")[0]["anchor"]) > 0.0
    with pytest.raises(ValueError, match="anchor_opaque"):
        C.load_config("gskey3", ["loss.anchor_opaque=1.5"])


def test_config_overrides_are_typed_and_checked(tmp_path: Path) -> None:
    cfg = C.load_config("gskey", ["optim.lr=3e-4", "train.amp=bf16", "model.kwargs.c1=8", "loss.l1=2"])
    assert cfg["optim"]["lr"] == 3e-4 and cfg["train"]["amp"] == "bf16"
    assert cfg["model"]["kwargs"]["c1"] == 8 and cfg["model"]["kwargs"]["c2"] == 32
    assert cfg["loss"]["l1"] == 2.0 and isinstance(cfg["loss"]["l1"], float)
    bad_items = (["optim.lrr=1"], ["train.batch_size=abc"], ["train.amp=fp8"], ["data.crop=30"])
    bad_items += (["data.shadow_reach=1.5"], ["data.shadow_blur=[0.0, 2.0]"], ["data.shadow_blur=[5.0, 2.0]"])
    bad_items += (["data.light_check=-0.1"], ["data.light_check=2"], ["data.fold_depth=[0.3, 0.1]"])
    bad_items += (["data.motion_blur=1.5"], ["data.defocus=-0.2"])
    bad_items += (["data.semi_transparent=2"], ["data.thin=-1"])
    for bad in bad_items:
        with pytest.raises(ValueError):
            C.load_config("gskey", bad)
    p = tmp_path / "c.toml"
    p.write_text(C.dump_toml(cfg))
    assert C.load_config(p) == cfg
    for name in [*C.shipped_configs(), *C.experiment_configs()]:
        if name != "finetune":
            C.load_config(name)


def test_a_model_option_the_network_does_not_take_is_one_line(tmp_path: Path, capsys) -> None:
    for item in ("model.kwargs.gate=bogus", "model.kwargs.bogus=1"):
        args = ["--config", "gskey3", "--set", item, "--set", "train.steps=1", "--out", str(tmp_path / "r")]
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "gskey3" in err[0] and item.split(".")[-1].split("=")[0] in err[0], err
    assert not (tmp_path / "r").exists()


def test_lr_schedule_warmup_and_cosine_floor() -> None:
    cfg = C.load_config("gskey", ["optim.warmup_steps=10", "train.steps=110", "optim.min_lr_ratio=0.1"])
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(60, cfg) == pytest.approx(0.55)
    assert lr_factor(110, cfg) == pytest.approx(0.1)
    step = C.load_config("seed_regression", ["optim.warmup_steps=0", "optim.step_size=5", "optim.gamma=0.5"])
    assert [lr_factor(s, step) for s in (0, 4, 5, 10)] == [1.0, 1.0, 0.5, 0.25]
