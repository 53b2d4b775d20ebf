"""Verb dispatch of the `gsrender` command.

    gsrender plate.####.exr -o keyed/plate.####.exr -F 1001-1100   (the render)
    gsrender info plate.1001.exr
    gsrender train|evaluate|export ...   (need the [train] extra)

Each verb has a small loader that imports its main(argv) -> int, so a verb whose optional
dependencies are missing fails with one line naming the extra to install, and the render
never loads training or export code. Whatever is not a verb is the render.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from gsrender.cli.render import main as render
from gsrender.engine.command import run_command
from gsrender.engine.errors import UsageError

VerbMain = Callable[[list[str]], int]


def _info() -> VerbMain:
    from gsrender.cli.info import main

    return main


def _doctor() -> VerbMain:
    from gsrender.cli.doctor import main

    return main


def _build_engine() -> VerbMain:
    from gsrender.cli.build_engine import main

    return main


def _job() -> VerbMain:
    from gsrender.cli.job import main

    return main


def _serve() -> VerbMain:
    from gsrender.cli.serve import main

    return main


def _train() -> VerbMain:
    from gsrender.cli.train import main

    return main


def _evaluate() -> VerbMain:
    from gsrender.cli.evaluate import main

    return main


def _export() -> VerbMain:
    from gsrender.cli.export import main

    return main


@dataclass(frozen=True)
class Verb:
    """A verb: its loader, its line in `gsrender --help`, and the pip extra it needs (if any)."""

    load: Callable[[], VerbMain]
    help: str
    extra: str | None = None


VERBS: dict[str, Verb] = {
    "info": Verb(_info, "print what the engine sees in an image file"),
    "doctor": Verb(_doctor, "what this node can run (GPU, TensorRT, providers, engines)"),
    "build-engine": Verb(_build_engine, "build the TensorRT engine for this GPU", "tensorrt"),
    "job": Verb(_job, "write an Open Job Description template for a farm"),
    "serve": Verb(_serve, "run the local worker the OpenFX plugin talks to"),
    "train": Verb(_train, "train a model from a config", "train"),
    "evaluate": Verb(_evaluate, "matting metrics of models on a validation set", "train"),
    "export": Verb(_export, "export a checkpoint to ONNX (+FP16)", "train"),
}


def run_verb(verb: str, argv: list[str]) -> int:
    """Load a verb and run it; a verb that cannot load here is a usage error naming its extra."""
    spec = VERBS[verb]
    try:
        verb_main = spec.load()
    except ImportError as exc:
        hint = f": pip install 'gsrender[{spec.extra}]'" if spec.extra else ""
        raise UsageError(None, f"'gsrender {verb}' is unavailable here ({exc}){hint}") from None
    return verb_main(argv)


def main(argv: list[str] | None = None) -> int:
    """The `gsrender` script: `gsrender VERB ...` runs a verb, anything else renders."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in VERBS:
        verb = argv[0]
        return run_command(lambda rest: run_verb(verb, rest), argv[1:], verb)
    return render(argv, verbs={name: spec.help for name, spec in VERBS.items()})
