"""The command line of `gsrender job`: the render options plus job options, checked as the
render would check them, resolved into a JobSpec.

Every render option given is passed through to each farm task as ``--long-name=value``;
compositor inputs become PATH job parameters; a local dry run and a model probe catch
mistakes here rather than in every task on the farm.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from pathlib import Path

from gsrender.cli.job.template import INPUT_PARAMS, JobSpec, input_args
from gsrender.cli.render import render_main
from gsrender.cli.render_options import (
    OneLineParser,
    add_render_arguments,
    default_output,
    negative_frame_ranges,
)
from gsrender.engine.errors import UsageError
from gsrender.engine.sequence import expand_sequence, has_frame_token, parse_frame_range

# Render options the template itself sets (or that make no sense on a farm).
_CONTROLLED = {"help", "input", "output", "frames", "skip_existing", "no_progress", "dry_run", "report"}
_CONTROLLED |= set(INPUT_PARAMS)
# Render options holding a local path: made absolute, since tasks run in a session folder.
_PATH_OPTIONS = {"model"}
# Backends that can use a TensorRT engine; the others make the build step pointless.
_ENGINE_BACKENDS = {"auto", "tensorrt"}
_GPU_BACKENDS = {"tensorrt", "cuda"}


_EPILOG = (
    "examples:\n"
    "  gsrender job plate.####.exr -o keyed/k.####.exr -F 1001-1100 --params shot.json > job.yaml\n"
    "  openjd run job.yaml --step Render --run-dependencies -p file://shot.json\n"
    "  gsrender job plate.####.exr -o keyed/k.####.exr --bundle bundle && deadline bundle submit bundle\n"
    "the template holds no absolute paths (OpenJD forbids them as defaults): --params/--bundle\n"
    "write this shot's values. See docs/farm.md for exit codes, retries and other schedulers."
)


def _job_parser() -> tuple[argparse.ArgumentParser, list[argparse.Action]]:
    """The render options plus job options, so render options are checked exactly as `gsrender`
    would; also returns the render options' actions."""
    p = OneLineParser(
        prog="gsrender job",
        description="Write an Open Job Description template (jobtemplate-2023-09) that renders SEQUENCE "
        "on a render farm in chunks of frames, to stdout. Render options are passed through to every task.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    render_actions = add_render_arguments(p)
    g = p.add_argument_group("job template")
    g.add_argument("--chunk", type=int, default=10, help="frames per task (default 10)")
    g.add_argument(
        "--chunk-target-seconds",
        type=int,
        default=0,
        help="let the scheduler resize chunks to about this many seconds (0 = fixed chunks)",
    )
    g.add_argument(
        "--no-task-chunking",
        action="store_true",
        help="for schedulers without the TASK_CHUNKING extension: one INT task per chunk start "
        "(needs one contiguous frame range)",
    )
    g.add_argument("--name", help="job name (default: gsrender and the input file name)")
    g.add_argument(
        "--executable",
        default="gsrender",
        help="gsrender command on the farm hosts (default 'gsrender' on PATH); a job parameter",
    )
    g.add_argument(
        "--gpu",
        action="store_true",
        help="render only on hosts with a GPU (implied by --backend tensorrt or cuda)",
    )
    g.add_argument("--no-engine-build", action="store_true", help="leave out the TensorRT engine-build step")
    g.add_argument(
        "--engine-cache",
        metavar="DIR",
        help="TensorRT engine cache folder on the farm hosts, as they spell it (sets GSRENDER_ENGINE_CACHE "
        "for every task; default: each host's ~/.cache/gsrender/engines)",
    )
    g.add_argument("--timeout", type=int, help="seconds a chunk may run before the scheduler cancels it")
    g.add_argument(
        "--format", choices=("yaml", "json"), default="yaml", help="template format (default yaml)"
    )
    g.add_argument(
        "--params",
        metavar="FILE",
        help="also write this shot's job parameter values (JSON) for 'openjd run -p file://FILE'",
    )
    g.add_argument(
        "--bundle",
        metavar="DIR",
        help="also write a Deadline Cloud job bundle: DIR/template.yaml + DIR/parameter_values.yaml",
    )
    return p, render_actions


def given_render_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Parse argv; return all options and the render options the user gave, as canonical tokens.

    Render actions get SUPPRESS defaults so only what was typed appears, and each is written
    back as ``--long-name=value``: aliases and abbreviations are resolved, and a value that
    starts with '-' cannot be taken for an option on the farm host.
    """
    p, render_actions = _job_parser()
    for action in render_actions:
        action.default = argparse.SUPPRESS
    args = p.parse_args(negative_frame_ranges(argv))
    tokens: list[str] = []
    for action in render_actions:
        if action.dest in _CONTROLLED or not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        flag = next((s for s in action.option_strings if s.startswith("--")), action.option_strings[0])
        if action.nargs == 0:
            if value:
                tokens.append(flag)
            continue
        text = str(value)
        if action.dest in _PATH_OPTIONS:
            text = os.path.abspath(os.path.expanduser(text))
        tokens.append(f"{flag}={text}")
    return args, tokens


def absolute(path: str) -> Path:
    """A path as typed here, made absolute: farm tasks run in a session folder of their own."""
    return Path(os.path.abspath(os.path.expanduser(path)))


def _check_format_free(values: list[str]) -> None:
    """Text placed in the template is an OpenJD format string: '{{' would be read as an expression."""
    for v in values:
        if "{{" in v:
            raise UsageError(
                None, f"'{v}' contains '{{{{', which Open Job Description reads as an expression"
            )


def spec_from_args(args: argparse.Namespace, render_args: list[str]) -> JobSpec:
    """Check the job options and resolve them, with the render options given, into a JobSpec."""
    if getattr(args, "dry_run", False):
        raise UsageError(None, "--dry-run does not go into a job; run 'gsrender ... --dry-run' locally")
    if args.chunk < 1:
        raise UsageError(None, f"--chunk must be 1 or more, got {args.chunk}")
    if args.chunk_target_seconds < 0:
        raise UsageError(None, "--chunk-target-seconds must be 0 or more")
    if args.timeout is not None and args.timeout < 1:
        raise UsageError(None, "--timeout must be 1 second or more")
    if not has_frame_token(args.input):
        raise UsageError(
            args.input, "a farm job needs a frame sequence: put a frame token (####) in the name"
        )
    inp = absolute(args.input)
    out = absolute(getattr(args, "output", None) or default_output(args.input))
    frames = parse_frame_range(args.frames) if getattr(args, "frames", None) else None
    if frames is None:  # every frame on disk now, written out so that the job does not depend on a rescan
        frames = [ref.frame for ref in expand_sequence(str(inp)) if ref.frame is not None]
    if args.no_task_chunking and frames != list(range(frames[0], frames[-1] + 1)):
        raise UsageError(
            None,
            "--no-task-chunking needs one contiguous frame range (A-B); use the TASK_CHUNKING template "
            "or one job per range",
        )
    inputs = {
        param: str(absolute(getattr(args, dest)))
        for dest, (param, _, _) in INPUT_PARAMS.items()
        if getattr(args, dest, None)
    }
    _check_local_render(inp, out, frames, [*render_args, *input_args(inputs, lambda param: inputs[param])])
    _probe_model(args)

    backend = getattr(args, "backend", "auto")
    keyer = getattr(args, "keyer", "neural")
    engine_args: list[str] = []
    if getattr(args, "model", None):
        engine_args.append("--model=" + os.path.abspath(os.path.expanduser(args.model)))
    report = str(absolute(args.report)) if getattr(args, "report", None) else None
    name = args.name or f"gsrender {inp.name}"
    spec = JobSpec(
        input_dir=str(inp.parent),
        input_name=inp.name,
        output_dir=str(out.parent),
        output_name=out.name,
        frames=frames,
        chunk=args.chunk,
        chunk_target_seconds=args.chunk_target_seconds,
        task_chunking=not args.no_task_chunking,
        executable=args.executable,
        name=name[:128],
        render_args=render_args,
        report=report,
        require_gpu=args.gpu or backend in _GPU_BACKENDS,
        engine_build=not args.no_engine_build and keyer == "neural" and backend in _ENGINE_BACKENDS,
        engine_args=engine_args,
        engine_required=backend == "tensorrt",
        engine_cache=args.engine_cache,
        timeout=args.timeout,
        inputs=inputs,
    )
    _check_format_free(
        [spec.name, *spec.render_args, *spec.engine_args, spec.report or "", args.engine_cache or ""]
    )
    return spec


def _check_local_render(inp: Path, out: Path, frames: list[int], render_args: list[str]) -> None:
    """Fail now, not on the farm: the render's own dry run checks output format, layers, colour spaces."""
    span = f"{frames[0]}-{frames[-1]}"  # the dry run only needs one valid range, not the frame list
    with contextlib.redirect_stdout(io.StringIO()):
        render_main([str(inp), "-o", str(out), "-F", span, "--dry-run", "--quiet", *render_args])


def _probe_model(args: argparse.Namespace) -> None:
    """Load the model here once (a local probe): a broken or foreign model fails now with exit 5,
    not in every task. The farm's backend may need a GPU this host lacks, so the probe runs the
    same file on a backend this host has: ONNX Runtime for .onnx, torch for a .pt checkpoint."""
    if getattr(args, "keyer", "neural") != "neural" or not getattr(args, "model", None):
        return  # the bundled model ships with gsrender and is tested with it
    from gsrender.engine.backends import create_backend

    path = Path(args.model).expanduser()
    local = "torch" if path.suffix == ".pt" or getattr(args, "backend", "auto") == "torch" else "onnxruntime"
    if local == "torch":
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return  # cannot load a checkpoint here; the file was checked to exist by the dry run
    backend = create_backend(local, model=path, threads=1)
    backend.close()
