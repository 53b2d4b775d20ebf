"""The keying networks: the two seed baselines, GsKeyNet and its successors GsKeyNet2 and GsKeyNet3.

The registry by config name (MODELS, build_model) that training, checkpoints and the torch
backend share, and which of the networks the engine renders with (KEYERS).
"""

from __future__ import annotations

import torch

from .gskey import GsKeyNet
from .gskey2 import GsKeyNet2
from .gskey3 import GsKeyNet3
from .seed_classifier import SeedClassifier
from .seed_regression import SeedRegression

MODELS: dict[str, type[torch.nn.Module]] = {
    "gskey": GsKeyNet,
    "gskey2": GsKeyNet2,
    "gskey3": GsKeyNet3,
    "seed_regression": SeedRegression,
    "seed_classifier": SeedClassifier,
}


# Models the render engine runs: forward(plate, screen) -> (alpha, local screen colour).
KEYERS = ("gskey", "gskey2", "gskey3")


def is_keyer(name: str) -> bool:
    """True for the networks the engine renders with (alpha + screen colour outputs)."""
    return name in KEYERS


def deploy_module(model: torch.nn.Module) -> torch.nn.Module:
    """The inference arrangement of a keyer: GsKeyNetDeploy for GsKeyNet, the others as they are."""
    from .gskey import GsKeyNetDeploy

    return GsKeyNetDeploy(model) if isinstance(model, GsKeyNet) else model


def receptive_radius(model: torch.nn.Module) -> int:
    """Input pixels on each side that can influence one output pixel, for any keyer (the halo's source)."""
    from . import gskey, gskey2, gskey3

    for module, cls in ((gskey3, GsKeyNet3), (gskey2, GsKeyNet2), (gskey, GsKeyNet)):
        if isinstance(model, cls):
            return module.receptive_radius(model)
    if isinstance(model, gskey.GsKeyNetDeploy):
        return gskey.receptive_radius()
    raise ValueError(f"{type(model).__name__} is not a keyer")


def build_model(name: str, **kwargs: object) -> torch.nn.Module:
    """Instantiate a model by its config name."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; known: {', '.join(sorted(MODELS))}") from None
    return cls(**kwargs)


__all__ = [
    "GsKeyNet",
    "GsKeyNet2",
    "GsKeyNet3",
    "KEYERS",
    "MODELS",
    "SeedClassifier",
    "SeedRegression",
    "build_model",
    "deploy_module",
    "is_keyer",
    "receptive_radius",
]
