"""Training configs by name or path: TOML files over the schema's defaults, plus --set overrides.

The schema (defaults, overrides, validation, TOML and hashing) is gsrender.models.checkpoint_config;
this module finds the files: the installed ones (the shipped model's recipe, finetune) and, in a
checkout of the repository, the experiment configs of the model history.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gsrender.models.checkpoint_config import (
    DEFAULTS,
    apply_overrides,
    build_config,
    config_json,
    config_sha256,
    dump_toml,
    from_dict,
    parse_override,
    validate,
)

__all__ = [
    "DEFAULTS",
    "apply_overrides",
    "config_json",
    "config_sha256",
    "dump_toml",
    "from_dict",
    "load_config",
    "parse_override",
    "resolve_config_path",
    "validate",
]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # installed: the shipped model's recipe, finetune
# The configs of earlier and tried models (docs/model-history.md): in a checkout of the repository
# only, never installed, still loadable by name there.
EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path to a TOML file, or the bare name of a shipped config ("gskey3", "finetune") or, in a
    checkout, of an experiment config ("gskey2")."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    if p.suffix in ("", ".toml") and p.parent == Path("."):
        for folder in (CONFIG_DIR, EXPERIMENTS_DIR):
            named = folder / f"{p.stem if p.suffix == '.toml' else p.name}.toml"
            if named.is_file():
                return named
    raise FileNotFoundError(f"config '{name_or_path}' not found (shipped: {', '.join(shipped_configs())})")


def shipped_configs() -> list[str]:
    """The configs installed with the package."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def experiment_configs() -> list[str]:
    """The configs of the model history, present in a checkout of the repository only."""
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.toml"))


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The schema's defaults, then the TOML file (if any), then the overrides; validated."""
    data = None
    if path is not None:
        with open(resolve_config_path(path), "rb") as f:
            data = tomllib.load(f)
    return build_config(data, overrides)
