"""Checkpoint I/O: read a training checkpoint safely and rebuild the network it holds.

One home for the training run, evaluation, export and the engine's torch backend, so every
reader loads weights the same way (tensors and plain containers only, never pickled code)
and rebuilds a network from the same config entries. Needs torch.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .networks import build_model

# Errnos that say the file could not be read at all (anything else is the content's fault).
_UNREADABLE = {errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EIO, errno.ELOOP}


class CheckpointFileError(ValueError):
    """A file that cannot be read as a checkpoint: the path and the problem apart, for callers
    that name the file themselves (the message is "path: problem")."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """What a .pt file holds, loaded weights-only (no code runs); not checked further.

    A file torch cannot read this way is a CheckpointFileError naming it and the problem in one
    line: torch's own errors read as a bare number (a truncated file), a page of advice (an ONNX
    model, pickled objects) or an errno without the file (a folder, a missing file).
    """
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        if getattr(exc, "errno", None) in _UNREADABLE:
            raise CheckpointFileError(path, f"cannot read it ({reason})") from None
        if path.suffix.lower() == ".onnx":
            raise CheckpointFileError(
                path, f"an ONNX model, not a training checkpoint (.pt) ({reason})"
            ) from None
        # torch's zip reader says EINVAL of a truncated file: the content's fault too
        what = "not a PyTorch checkpoint of tensors and plain containers (truncated, or another kind of file)"
        raise CheckpointFileError(path, f"{what} ({reason})") from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint safely: tensors and plain containers only, never pickled code."""
    ckpt = read_checkpoint(path, map_location)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path}: not a gsrender checkpoint (needs 'model' and 'config')")
    return ckpt


def checkpoint_model_config(
    ckpt: Mapping[str, Any], default_name: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The network's config name and constructor arguments recorded in a checkpoint.

    Without ``default_name`` the config must name the network (KeyError otherwise): training
    and export rebuild exactly what was trained. With it, a checkpoint whose config lacks the
    model section is taken as that network with default arguments, which the torch backend
    has always accepted.
    """
    if default_name is None:
        mcfg = ckpt["config"]["model"]
        return str(mcfg["name"]), dict(mcfg.get("kwargs", {}))
    config = ckpt.get("config", {})
    mcfg = config.get("model", {}) if isinstance(config, dict) else {}
    return str(mcfg.get("name", default_name)), dict(mcfg.get("kwargs", {}))


def checkpoint_model_name(ckpt: Mapping[str, Any]) -> str:
    """The config name of the network a checkpoint was trained with (KeyError when not recorded)."""
    return checkpoint_model_config(ckpt)[0]


def model_from_checkpoint(ckpt: Mapping[str, Any], default_name: str | None = None) -> torch.nn.Module:
    """Rebuild the network a checkpoint was trained with and load its weights (eval mode).

    ``default_name``: as in checkpoint_model_config.
    """
    name, kwargs = checkpoint_model_config(ckpt, default_name)
    model = build_model(name, **kwargs)
    model.load_state_dict(ckpt["model"])
    return model.eval()


__all__ = [
    "CheckpointFileError",
    "checkpoint_model_config",
    "checkpoint_model_name",
    "load_checkpoint",
    "model_from_checkpoint",
    "read_checkpoint",
]
