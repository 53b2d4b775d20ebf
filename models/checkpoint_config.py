"""The config schema of a checkpoint: the training config a run used, stored in every checkpoint.

Training writes it (gsrender.training.config finds the TOML files), export reads it back and
applies its `--set` items (gsrender.export), so the schema lives here, below both.

A config is a plain nested dict (sections model, data, optim, train, loss) so it can be
stored verbatim in checkpoints that load with ``torch.load(weights_only=True)``. Keys
are checked against DEFAULTS, so a typo in a file or in ``--set`` fails loudly instead
of silently training with a default.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from collections.abc import Iterable
from typing import Any

DEFAULTS: dict[str, Any] = {
    "model": {
        "name": "gskey",
        "kwargs": {},  # passed to build_model(name, **kwargs); free-form
        "teacher_kwargs": {},  # loss.anchor's teacher: these over kwargs (e.g. the shipped evidence form)
    },
    "data": {
        "kind": "synthetic",  # synthetic | paired
        "length": 20000,  # synthetic samples per epoch (each index is a fixed plate)
        "crop": 192,
        "gen_size": 256,
        "base_seed": 0,
        "clean_guide": 0.0,  # synthetic: share of items guided by the exact clean screen (a clean plate)
        "shadow_share": 0.15,  # synthetic: plates whose subject casts a shadow on the screen
        "shadow_strength": [0.15, 0.5],  # ... and how much light it takes away (range)
        "shadow_reach": 0.1,  # ... how far from the subject it may fall (share of the frame)
        "shadow_blur": [3.0, 20.0],  # ... and how soft it is (Gaussian sigma in px at 256, range)
        "spill_base": [0.0, 0.06],  # synthetic: even screen bounce on the whole subject (range)
        "light_check": 0.0,  # synthetic: people in light checked shirting tinted by that bounce
        "fold_depth": [0.02, 0.12],  # synthetic: how much light the screen's wrinkles take (range)
        "motion_blur": 0.2,  # synthetic: share of random plates whose subject moves in the exposure
        "defocus": 0.15,  # synthetic: share of random plates whose subject is out of focus
        "semi_transparent": 0.25,  # synthetic: share of random plates with a semi-transparent subject
        "thin": 0.2,  # synthetic: share of random plates with thin strands or wires
        "folder": "",  # paired: folder in the seed's layout (Data.01.RGB.0063.png + ALPHA)
        "samples_per_epoch": 2000,  # paired: random crops per epoch
        "seed": 0,  # paired: crop sampling seed
        "val_kind": "synthetic",  # synthetic | paired (crops of the paired folder)
        "val_count": 16,
        "val_size": 256,
        "val_seed": 1_000_000,
    },
    "optim": {
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "betas": [0.9, 0.999],
        "schedule": "cosine",  # cosine | step | constant
        "warmup_steps": 500,
        "min_lr_ratio": 0.02,  # cosine floor as a fraction of lr
        "step_size": 10000,  # step schedule: multiply by gamma every step_size steps
        "gamma": 0.5,
        "grad_clip": 1.0,  # max gradient norm; 0 disables
    },
    "train": {
        "steps": 50000,
        "batch_size": 8,  # per process (DDP multiplies it by the world size)
        "seed": 0,
        "num_workers": 1,
        "threads": 0,  # torch intra-op threads; 0 keeps torch's default
        "log_every": 50,
        "val_every": 1000,
        "ckpt_every": 500,
        "plot_every": 1000,
        "amp": "none",  # none | bf16 | fp16 (CUDA only)
        "device": "auto",  # auto | cpu | cuda
    },
    "loss": {
        "l1": 1.0,
        "lap": 1.0,
        "grad": 0.5,
        "grad_mag": 0.0,  # the evaluation's Gaussian-derivative gradient error per pixel
        "comp": 0.0,
        "bg": 0.0,
        "anchor": 0.0,  # hold alpha at the --finetune weights where the gate is shut (training.losses)
        "anchor_opaque": 0.99,  # ... and where the teacher's alpha is at least this (opaque subject)
        "anchor_tolerance": 0.0,  # > 0: the gate's hold lets go where the teacher is this far above the truth
        "anchor_opaque_tolerance": 0.0,  # > 0: ... and the opaque hold where it is this far above
        "mse": 0.0,
        "ce": 0.0,
    },
}

_FREE_FORM = {("model", "kwargs"), ("model", "teacher_kwargs")}


def _merge(base: dict[str, Any], over: dict[str, Any], path: tuple[str, ...] = ()) -> None:
    for key, value in over.items():
        here = (*path, key)
        name = ".".join(here)
        if key not in base:
            raise ValueError(f"unknown config key '{name}'")
        if here in _FREE_FORM:
            if not isinstance(value, dict):
                raise ValueError(f"config key '{name}' must be a table")
            base[key].update(copy.deepcopy(value))
        elif isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ValueError(f"config key '{name}' is a section, not a value")
            _merge(base[key], value, here)
        else:
            base[key] = _coerce(value, base[key], name)


def _coerce(value: Any, default: Any, name: str) -> Any:
    """Keep each key's type: ints given for float keys become floats, anything else must match."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"config key '{name}' must be true or false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    if type(value) is not type(default):
        raise ValueError(f"config key '{name}' must be {type(default).__name__}, got {value!r}")
    return copy.deepcopy(value)


def parse_override(item: str) -> tuple[list[str], Any]:
    """'optim.lr=3e-4' -> (['optim', 'lr'], 0.0003). Values are TOML; bare words are strings."""
    if "=" not in item:
        raise ValueError(f"--set expects key=value, got '{item}'")
    key, raw = item.split("=", 1)
    keys = [k.strip() for k in key.strip().split(".")]
    if not all(keys):
        raise ValueError(f"bad key in --set '{item}'")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return keys, value


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply --set key=value items to a merged config (validated like file keys)."""
    for item in overrides:
        keys, value = parse_override(item)
        nested: dict[str, Any] = value
        for k in reversed(keys):
            nested = {k: nested}
        _merge(cfg, nested)
    return cfg


def build_config(data: dict[str, Any] | None = None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """DEFAULTS, then ``data`` (a parsed TOML file, if any), then the overrides; validated."""
    cfg = copy.deepcopy(DEFAULTS)
    if data is not None:
        _merge(cfg, data)
    apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


def from_dict(data: dict[str, Any]) -> dict[str, Any]:
    """Rebuild a config stored in a checkpoint (missing keys take today's defaults)."""
    cfg = copy.deepcopy(DEFAULTS)
    _merge(cfg, data)
    validate(cfg)
    return cfg


def validate(cfg: dict[str, Any]) -> None:
    """Check value ranges and enumerations that types alone do not catch."""
    d, o, t = cfg["data"], cfg["optim"], cfg["train"]
    choices = {
        "data.kind": (d["kind"], ("synthetic", "paired")),
        "data.val_kind": (d["val_kind"], ("synthetic", "paired")),
        "optim.schedule": (o["schedule"], ("cosine", "step", "constant")),
        "train.amp": (t["amp"], ("none", "bf16", "fp16")),
        "train.device": (t["device"], ("auto", "cpu", "cuda")),
    }
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ValueError(f"config key '{name}' must be one of {', '.join(allowed)}, got '{value}'")
    positive = {
        "data.crop": d["crop"],
        "data.val_count": d["val_count"],
        "data.val_size": d["val_size"],
        "train.batch_size": t["batch_size"],
        "train.log_every": t["log_every"],
        "train.val_every": t["val_every"],
        "train.ckpt_every": t["ckpt_every"],
        "train.plot_every": t["plot_every"],
        "optim.lr": o["lr"],
    }
    for name, value in positive.items():
        if value <= 0:
            raise ValueError(f"config key '{name}' must be positive, got {value}")
    if t["steps"] < 0 or t["num_workers"] < 0 or t["threads"] < 0 or o["warmup_steps"] < 0:
        raise ValueError("train.steps, train.num_workers, train.threads and optim.warmup_steps must be >= 0")
    if d["kind"] == "paired" and not d["folder"]:
        raise ValueError("data.kind = 'paired' needs data.folder (or --data FOLDER)")
    if d["val_kind"] == "paired" and not d["folder"]:
        raise ValueError("data.val_kind = 'paired' needs data.folder (or --data FOLDER)")
    lo, hi = (float(v) for v in d["shadow_strength"])
    if not (0.0 <= d["shadow_share"] <= 1.0 and 0.0 <= lo <= hi <= 1.0):
        raise ValueError("data.shadow_share must be in [0, 1] and data.shadow_strength a range within [0, 1]")
    lo, hi = (float(v) for v in d["shadow_blur"])
    if not (0.0 <= d["shadow_reach"] <= 1.0 and 0.0 < lo <= hi):
        raise ValueError("data.shadow_reach must be in [0, 1] and data.shadow_blur a range of sigmas above 0")
    lo, hi = (float(v) for v in d["spill_base"])
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError("data.spill_base must be a range within [0, 1]")
    lo, hi = (float(v) for v in d["fold_depth"])
    if not 0.0 <= lo <= hi < 1.0:
        raise ValueError("data.fold_depth must be a range within [0, 1)")
    for share in ("light_check", "motion_blur", "defocus", "semi_transparent", "thin"):
        if not 0.0 <= d[share] <= 1.0:
            raise ValueError(f"data.{share} must be in [0, 1], got {d[share]}")
    if not 0.0 <= d["clean_guide"] <= 1.0:
        raise ValueError(f"data.clean_guide must be in [0, 1], got {d['clean_guide']}")
    if d["crop"] % 8 or d["val_size"] % 8:
        raise ValueError("data.crop and data.val_size must be multiples of 8 (the network stride)")
    if len(o["betas"]) != 2:
        raise ValueError("optim.betas must have two values")
    if not 0.0 < cfg["loss"]["anchor_opaque"] <= 1.0:
        raise ValueError(f"loss.anchor_opaque must be in (0, 1], got {cfg['loss']['anchor_opaque']}")
    for key in ("anchor_tolerance", "anchor_opaque_tolerance"):
        if not 0.0 <= cfg["loss"][key] < 1.0:
            raise ValueError(f"loss.{key} must be in [0, 1), got {cfg['loss'][key]}")


def config_json(cfg: dict[str, Any]) -> str:
    """Canonical JSON (sorted keys): what is hashed and stored in checkpoints."""
    return json.dumps(cfg, sort_keys=True, separators=(",", ":"))


def config_sha256(cfg: dict[str, Any]) -> str:
    return hashlib.sha256(config_json(cfg).encode()).hexdigest()


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        r = repr(v)
        return r if ("." in r or "e" in r or "n" in r) else r + ".0"
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def dump_toml(cfg: dict[str, Any]) -> str:
    """Write a config back as TOML (tomllib reads, it does not write)."""
    lines: list[str] = []

    def section(table: dict[str, Any], prefix: str) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in table.items() if isinstance(v, dict)}
        if prefix and (scalars or not tables):
            lines.append(f"[{prefix}]")
        for k, v in scalars.items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        if prefix and (scalars or not tables):
            lines.append("")
        for k, v in tables.items():
            section(v, f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k))

    section(cfg, "")
    return "\n".join(lines).rstrip() + "\n"
