"""The package ships the product: the shipped model's configs and finetune, no experiment config."""

from __future__ import annotations

import tomllib
from pathlib import Path

from gsrender.training import config as C

ROOT = Path(__file__).resolve().parents[2]


def _installed_training_files() -> set[str]:
    """The files under training/ that pyproject.toml's package-data installs."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        tool = tomllib.load(f)["tool"]["setuptools"]
    folder = ROOT / tool["package-dir"]["gsrender.training"]
    patterns = tool["package-data"]["gsrender.training"]
    return {p.relative_to(folder).as_posix() for pattern in patterns for p in folder.glob(pattern)}


def test_only_the_shipped_recipe_and_finetune_are_installed():
    installed = _installed_training_files()
    assert installed == {f"configs/{name}.toml" for name in C.shipped_configs()}
    assert set(C.shipped_configs()) == {"finetune", "gskey3", "gskey3_phase2", "gskey3_edges"}
    assert C.experiment_configs() and not any(f.startswith("experiments/") for f in installed)
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert not any("experiments" in p or "checkpoints" in p for p in packages)


def test_an_experiment_config_still_loads_by_name_in_a_checkout():
    assert C.resolve_config_path("gskey2") == C.EXPERIMENTS_DIR / "gskey2.toml"
    assert C.load_config("seed_regression")["model"]["name"].startswith("seed")
