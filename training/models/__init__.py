"""The three keying networks: the two seed baselines and the shipped GsKeyNet."""

from __future__ import annotations

import torch

from .gskey import GsKeyNet
from .seed_classifier import SeedClassifier
from .seed_regression import SeedRegression

MODELS: dict[str, type[torch.nn.Module]] = {
    "gskey": GsKeyNet,
    "seed_regression": SeedRegression,
    "seed_classifier": SeedClassifier,
}


def build_model(name: str, **kwargs: object) -> torch.nn.Module:
    """Instantiate a model by its config name."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; known: {', '.join(sorted(MODELS))}") from None
    return cls(**kwargs)


__all__ = ["GsKeyNet", "SeedClassifier", "SeedRegression", "MODELS", "build_model"]
