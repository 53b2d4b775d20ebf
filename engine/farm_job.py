"""`gsrender job`: write an Open Job Description template that renders a sequence on a farm.

    gsrender job plate.####.exr -o keyed/plate.####.exr -F 1001-1100 --params shot.json > job.yaml
    openjd check job.yaml && openjd run job.yaml --step Render --run-dependencies -p file://shot.json

The template (``jobtemplate-2023-09``, what AWS Deadline Cloud and ``openjd run`` execute)
has a ``BuildEngine`` step and a ``Render`` step whose tasks are contiguous frame chunks
(``CHUNK[INT]`` from the TASK_CHUNKING extension, or with ``--no-task-chunking`` an INT
range of chunk starts for schedulers without it). Every render option given here is passed
through to each task; ``--skip-existing`` is always added so that a retried chunk only
renders what is missing. Input, output, frames and chunk size are job parameters, so a
submitter can change them without regenerating the template.

Two helper modes are run by the template on the farm hosts (not meant to be typed):
``gsrender job --build-engine-if-available [--required] [build-engine options]`` and
``gsrender job --run-chunk START --chunk-size N --last END -- RENDER ARGS``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cli import _default_output, _negative_frame_ranges, _render_parser
from .errors import EXIT_BACKEND, EXIT_OK, GsRenderError, OutputError, UsageError
from .sequence import expand_sequence, has_frame_token, parse_frame_range

BUILD_GUARD = "--build-engine-if-available"
RUN_CHUNK = "--run-chunk"
EXTENSION = "TASK_CHUNKING"
NOTIFY_SECONDS = 30  # SIGTERM grace: gsrender finishes the frames in flight, then exits 130

# Compositor inputs (engine/compositor_inputs.py): render option dest -> (job parameter, option, label).
# They are PATH job parameters, so a submitter can point them elsewhere and path mapping applies.
_INPUT_PARAMS = {
    "garbage_matte": ("GarbageMatte", "--garbage-matte", "Garbage matte"),
    "core_matte": ("CoreMatte", "--core-matte", "Core matte"),
    "clean_plate": ("CleanPlate", "--clean-plate", "Clean plate"),
}
# Render options the template itself sets (or that make no sense on a farm).
_CONTROLLED = {"help", "input", "output", "frames", "skip_existing", "no_progress", "dry_run", "report"}
_CONTROLLED |= set(_INPUT_PARAMS)
# Render options holding a local path: made absolute, since tasks run in a session folder.
_PATH_OPTIONS = {"model"}
# Backends that can use a TensorRT engine; the others make the build step pointless.
_ENGINE_BACKENDS = {"auto", "tensorrt"}
_GPU_BACKENDS = {"tensorrt", "cuda"}


@dataclass
class JobSpec:
    """Everything the template is built from, resolved to absolute paths."""

    input_dir: str
    input_name: str
    output_dir: str
    output_name: str
    frames: list[int]
    chunk: int = 10
    chunk_target_seconds: int = 0
    task_chunking: bool = True
    executable: str = "gsrender"
    name: str = "gsrender"
    render_args: list[str] = field(default_factory=list)
    report: str | None = None
    require_gpu: bool = False
    engine_build: bool = True
    engine_args: list[str] = field(default_factory=list)
    engine_required: bool = False
    engine_cache: str | None = None
    timeout: int | None = None
    inputs: dict[str, str] = field(default_factory=dict)  # job parameter -> absolute path (pattern)


# ---------------------------------------------------------------- command line


def _job_parser() -> argparse.ArgumentParser:
    """The render parser plus job options, so render options are checked exactly as `gsrender` would."""
    p = _render_parser()
    p.prog = "gsrender job"
    p.description = (
        "Write an Open Job Description template (jobtemplate-2023-09) that renders SEQUENCE on a "
        "render farm in chunks of frames, to stdout. Render options are passed through to every task."
    )
    p.epilog = (
        "examples:\n"
        "  gsrender job plate.####.exr -o keyed/k.####.exr -F 1001-1100 --params shot.json > job.yaml\n"
        "  openjd run job.yaml --step Render --run-dependencies -p file://shot.json\n"
        "  gsrender job plate.####.exr -o keyed/k.####.exr --bundle bundle && deadline bundle submit bundle\n"
        "the template holds no absolute paths (OpenJD forbids them as defaults): --params/--bundle\n"
        "write this shot's values. See docs/farm.md for exit codes, retries and other schedulers."
    )
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
    return p


def _given_render_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Parse argv; return all options and the render options the user gave, as canonical tokens.

    Render actions get SUPPRESS defaults so only what was typed appears, and each is written
    back as ``--long-name=value``: aliases and abbreviations are resolved, and a value that
    starts with '-' cannot be taken for an option on the farm host.
    """
    p = _job_parser()
    render_dests = {a.dest for a in _render_parser()._actions}  # argparse has no public list
    for action in p._actions:
        if action.dest in render_dests and action.dest != "help":
            action.default = argparse.SUPPRESS
    args = p.parse_args(_negative_frame_ranges(argv))
    tokens: list[str] = []
    for action in p._actions:
        if action.dest not in render_dests or action.dest in _CONTROLLED or not hasattr(args, action.dest):
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


def _absolute(path: str) -> Path:
    return Path(os.path.abspath(os.path.expanduser(path)))


def range_expr(frames: list[int]) -> str:
    """Sorted unique frames as an OpenJD range expression: runs of one step become A-B or A-B:S."""
    parts: list[str] = []
    i = 0
    while i < len(frames):
        j = i + 1
        step = frames[j] - frames[i] if j < len(frames) else 1
        while j + 1 < len(frames) and frames[j + 1] - frames[j] == step:
            j += 1
        if j >= len(frames) or (j - i < 2 and step != 1):
            parts.append(str(frames[i]))  # a lone frame, or a pair that is not a run
            i += 1
            continue
        a, b = frames[i], frames[j]
        parts.append(f"{a}-{b}" if step == 1 else f"{a}-{b}:{step}")
        i = j + 1
    return ",".join(parts)


def _check_format_free(values: list[str]) -> None:
    """Text placed in the template is an OpenJD format string: '{{' would be read as an expression."""
    for v in values:
        if "{{" in v:
            raise UsageError(
                None, f"'{v}' contains '{{{{', which Open Job Description reads as an expression"
            )


def _spec_from_args(args: argparse.Namespace, render_args: list[str]) -> JobSpec:
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
    inp = _absolute(args.input)
    out = _absolute(getattr(args, "output", None) or _default_output(args.input))
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
        param: str(_absolute(getattr(args, dest)))
        for dest, (param, _, _) in _INPUT_PARAMS.items()
        if getattr(args, dest, None)
    }
    _check_local_render(inp, out, frames, [*render_args, *_input_args(inputs, lambda param: inputs[param])])
    _probe_model(args)

    backend = getattr(args, "backend", "auto")
    keyer = getattr(args, "keyer", "neural")
    engine_args: list[str] = []
    if getattr(args, "model", None):
        engine_args.append("--model=" + os.path.abspath(os.path.expanduser(args.model)))
    report = str(_absolute(args.report)) if getattr(args, "report", None) else None
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


def _input_args(inputs: dict[str, str], value) -> list[str]:  # noqa: ANN001 - param name -> text
    """The render options of the compositor inputs given, in a fixed order."""
    return [f"{option}={value(param)}" for param, option, _ in _INPUT_PARAMS.values() if param in inputs]


def _check_local_render(inp: Path, out: Path, frames: list[int], render_args: list[str]) -> None:
    """Fail now, not on the farm: the render's own dry run checks output format, layers, colour spaces."""
    from .cli import render_main

    span = f"{frames[0]}-{frames[-1]}"  # the dry run only needs one valid range, not the frame list
    with contextlib.redirect_stdout(io.StringIO()):
        render_main([str(inp), "-o", str(out), "-F", span, "--dry-run", "--quiet", *render_args])


def _probe_model(args: argparse.Namespace) -> None:
    """Load the model here once (a local probe): a broken or foreign model fails now with exit 5,
    not in every task. The farm's backend may need a GPU this host lacks, so the probe runs the
    same file on a backend this host has: ONNX Runtime for .onnx, torch for a .pt checkpoint."""
    if getattr(args, "keyer", "neural") != "neural" or not getattr(args, "model", None):
        return  # the bundled model ships with gsrender and is tested with it
    from .backends import create_backend

    path = Path(args.model).expanduser()
    local = "torch" if path.suffix == ".pt" or getattr(args, "backend", "auto") == "torch" else "onnxruntime"
    if local == "torch":
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return  # cannot load a checkpoint here; the file was checked to exist by the dry run
    backend, _ = create_backend(local, model=path, threads=1)
    backend.close()


# ---------------------------------------------------------------- template


def _param(name: str, kind: str, label: str, description: str, group: str, **extra: Any) -> dict[str, Any]:
    """One job parameter, with the label and group a submitter GUI (Deadline Cloud) shows."""
    ui: dict[str, Any] = {"label": label, "groupLabel": group}
    if extra.pop("control", None) == "dir":
        ui["control"] = "CHOOSE_DIRECTORY"
    return {"name": name, "type": kind, "description": description, **extra, "userInterface": ui}


def _parameters(spec: JobSpec) -> list[dict[str, Any]]:
    files, frames = "Files", "Frames"
    params = [
        # PATH parameters get no default: OpenJD only allows defaults relative to the template's
        # folder. The values of this shot go in --params / --bundle (or -p on the command line).
        _param(
            "InputDir",
            "PATH",
            "Plate folder",
            "Folder of the green-screen plate sequence.",
            files,
            objectType="DIRECTORY",
            dataFlow="IN",
            control="dir",
        ),
        _param(
            "InputName",
            "STRING",
            "Plate file name",
            "Plate file name with its frame token, e.g. plate.####.exr.",
            files,
            minLength=1,
            default=spec.input_name,
        ),
        _param(
            "OutputDir",
            "PATH",
            "Output folder",
            "Folder for the keyed frames.",
            files,
            objectType="DIRECTORY",
            dataFlow="OUT",
            control="dir",
        ),
        _param(
            "OutputName",
            "STRING",
            "Output file name",
            "Keyed file name with its frame token; the extension picks the format.",
            files,
            minLength=1,
            default=spec.output_name,
        ),
    ]
    if spec.task_chunking:
        params.append(
            _param(
                "Frames",
                "STRING",
                "Frames",
                "Frames to render, as an OpenJD range: 1-100, 1-100:2, 1-10,20-30.",
                frames,
                minLength=1,
                default=range_expr(spec.frames),
            )
        )
    else:
        params.append(
            _param(
                "FrameStart", "INT", "First frame", "First frame to render.", frames, default=spec.frames[0]
            )
        )
        params.append(
            _param("FrameEnd", "INT", "Last frame", "Last frame to render.", frames, default=spec.frames[-1])
        )
    params.append(
        _param(
            "ChunkSize", "INT", "Frames per task", "Frames per task.", frames, minValue=1, default=spec.chunk
        )
    )
    if spec.task_chunking:
        params.append(
            _param(
                "ChunkTargetRuntimeSeconds",
                "INT",
                "Target seconds per task",
                "If above 0, a scheduler may resize chunks to take about this long.",
                frames,
                minValue=0,
                default=spec.chunk_target_seconds,
            )
        )
    for param, option, label in _INPUT_PARAMS.values():
        if param in spec.inputs:
            params.append(
                _param(
                    param,
                    "PATH",
                    label,
                    f"{label} file or sequence with the plate's frame token ({option}).",
                    "Compositor inputs",
                    minLength=1,
                )
            )
    params.append(
        _param(
            "GsRenderCommand",
            "STRING",
            "gsrender command",
            "The gsrender command on the farm hosts.",
            "Software",
            minLength=1,
            default=spec.executable,
        )
    )
    return params


def _engine_action(spec: JobSpec) -> dict[str, Any]:
    args = ["job", BUILD_GUARD, *(["--required"] if spec.engine_required else []), *spec.engine_args]
    return {"command": "{{Param.GsRenderCommand}}", "args": args}


def _host_requirements(spec: JobSpec) -> dict[str, Any] | None:
    if not spec.require_gpu:
        return None
    return {"amounts": [{"name": "amount.worker.gpu", "min": 1}]}


def _render_step(spec: JobSpec) -> dict[str, Any]:
    source = "{{Param.InputDir}}/{{Param.InputName}}"
    target = "{{Param.OutputDir}}/{{Param.OutputName}}"
    if spec.task_chunking:
        task_param = {
            "name": "Frame",
            "type": "CHUNK[INT]",
            "range": "{{Param.Frames}}",
            "chunks": {
                "defaultTaskCount": "{{Param.ChunkSize}}",
                "targetRuntimeSeconds": "{{Param.ChunkTargetRuntimeSeconds}}",
                "rangeConstraint": "CONTIGUOUS",  # always "A-B", which -F reads as is
            },
        }
        chunk_ref = "{{Task.Param.Frame}}"
    else:
        task_param = {
            "name": "ChunkStart",
            "type": "INT",
            "range": "{{Param.FrameStart}}-{{Param.FrameEnd}}:{{Param.ChunkSize}}",
        }
        chunk_ref = "{{Task.Param.ChunkStart}}"
    render = [source, "--output", target, "--skip-existing", "--no-progress", *spec.render_args]
    render += _input_args(spec.inputs, lambda param: f"{{{{Param.{param}}}}}")
    if spec.report:
        stem, ext = os.path.splitext(spec.report)
        render.append(f"--report={stem}.{chunk_ref}{ext or '.json'}")  # one report per chunk, never shared
    if spec.task_chunking:
        args = [*render, "--frames", chunk_ref]
    else:  # the chunk end needs arithmetic that plain format strings lack: gsrender works it out
        args = [
            "job",
            RUN_CHUNK,
            chunk_ref,
            "--chunk-size",
            "{{Param.ChunkSize}}",
            "--last",
            "{{Param.FrameEnd}}",
            "--",
            *render,
        ]
    action: dict[str, Any] = {
        "command": "{{Param.GsRenderCommand}}",
        "args": args,
        "cancelation": {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": NOTIFY_SECONDS},
    }
    if spec.timeout:
        action["timeout"] = spec.timeout
    step: dict[str, Any] = {
        "name": "Render",
        "description": "Key one chunk of frames; complete frames are skipped, so a retry resumes.",
        "parameterSpace": {"taskParameterDefinitions": [task_param]},
        "script": {"actions": {"onRun": action}},
    }
    if spec.engine_build:
        step["dependencies"] = [{"dependsOn": "BuildEngine"}]
        step["stepEnvironments"] = [
            {
                "name": "EngineOnThisHost",
                "description": "Make sure this host has the TensorRT engine for its GPU (a cache hit after "
                "the first build); does nothing on hosts without TensorRT or a GPU.",
                "script": {"actions": {"onEnter": _engine_action(spec)}},
            }
        ]
    if (req := _host_requirements(spec)) is not None:
        step["hostRequirements"] = req
    return step


def build_template(spec: JobSpec) -> dict[str, Any]:
    """The job template as a plain dict (YAML/JSON ready)."""
    template: dict[str, Any] = {"specificationVersion": "jobtemplate-2023-09"}
    if spec.task_chunking:
        template["extensions"] = [EXTENSION]
    template["name"] = spec.name
    template["description"] = (
        "Written by 'gsrender job'. Each Render task keys a contiguous chunk of frames with "
        "--skip-existing, so retries are safe. Exit codes: docs/farm.md."
    )
    template["parameterDefinitions"] = _parameters(spec)
    if spec.engine_cache:  # the build step and the render's TensorRT backend must use the same cache
        template["jobEnvironments"] = [
            {"name": "GsRenderEngineCache", "variables": {"GSRENDER_ENGINE_CACHE": spec.engine_cache}}
        ]
    steps: list[dict[str, Any]] = []
    if spec.engine_build:
        build: dict[str, Any] = {
            "name": "BuildEngine",
            "description": "Build the TensorRT engine once into the engine cache; skipped cleanly on hosts "
            "without TensorRT or a GPU.",
            "script": {"actions": {"onRun": _engine_action(spec)}},
        }
        if (req := _host_requirements(spec)) is not None:
            build["hostRequirements"] = req
        steps.append(build)
    steps.append(_render_step(spec))
    template["steps"] = steps
    return template


def parameter_values(spec: JobSpec) -> dict[str, str | int]:
    """This shot's value for every job parameter (the template holds no absolute paths)."""
    values: dict[str, str | int] = {
        "InputDir": spec.input_dir,
        "InputName": spec.input_name,
        "OutputDir": spec.output_dir,
        "OutputName": spec.output_name,
    }
    if spec.task_chunking:
        values["Frames"] = range_expr(spec.frames)
    else:
        values["FrameStart"], values["FrameEnd"] = spec.frames[0], spec.frames[-1]
    values["ChunkSize"] = spec.chunk
    if spec.task_chunking:
        values["ChunkTargetRuntimeSeconds"] = spec.chunk_target_seconds
    values.update(spec.inputs)
    values["GsRenderCommand"] = spec.executable
    return values


def validate_template(template: dict[str, Any], values: dict[str, str | int]) -> bool:
    """Decode with openjd-model and instantiate with the values; False when openjd-model is missing."""
    try:
        from openjd.model import create_job, decode_job_template, preprocess_job_parameters
    except ImportError:
        return False
    try:
        decoded = decode_job_template(template=template, supported_extensions=[EXTENSION])
        here = Path.cwd()
        resolved = preprocess_job_parameters(
            job_template=decoded,
            job_parameter_values={k: str(v) for k, v in values.items()},
            job_template_dir=here,
            current_working_dir=here,
        )
        create_job(job_template=decoded, job_parameter_values=resolved)
    except Exception as exc:  # openjd raises several types (DecodeValidationError, ValueError...)
        raise UsageError(None, f"the job template does not validate: {exc}") from None
    return True


def dump_template(template: dict[str, Any], fmt: str = "yaml", header: bool = True) -> str:
    if fmt == "json":
        return json.dumps(template, indent=2) + "\n"
    try:
        import yaml
    except ImportError:  # JSON is valid YAML, and OpenJD reads both
        return json.dumps(template, indent=2) + "\n"
    text = yaml.safe_dump(template, sort_keys=False, width=4096, allow_unicode=True)
    if header:
        text = (
            "# Open Job Description job template written by 'gsrender job'. Check: openjd check <file>\n"
            + text
        )
    return text


def _write_text(path: Path, text: str) -> None:
    """Atomic, like every file gsrender writes: a reader never sees half a template."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_side_files(
    args: argparse.Namespace, template: dict[str, Any], values: dict[str, str | int]
) -> None:
    """--params (openjd run) and --bundle (Deadline Cloud job bundle) outputs."""
    try:
        if args.params:
            _write_text(_absolute(args.params), json.dumps(values, indent=2) + "\n")
        if args.bundle:
            bundle = _absolute(args.bundle)
            _write_text(bundle / "template.yaml", dump_template(template, "yaml"))
            listed = {"parameterValues": [{"name": k, "value": v} for k, v in values.items()]}
            _write_text(bundle / "parameter_values.yaml", dump_template(listed, "yaml", header=False))
    except OSError as exc:
        raise OutputError(exc.filename, f"cannot write ({exc.strerror or exc})") from None


# ---------------------------------------------------------------- modes run on farm hosts


def _gpu_problem() -> str | None:
    """Why this host has no usable NVIDIA GPU, or None. Cheap: no CUDA library is loaded."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "none", "NoDevFiles"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    gpus = Path("/proc/driver/nvidia/gpus")
    with contextlib.suppress(OSError):
        if gpus.is_dir() and any(gpus.iterdir()):
            return None
    smi = shutil.which("nvidia-smi")
    if smi:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            run = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
            if run.returncode == 0 and "GPU" in run.stdout:
                return None
    return "no NVIDIA GPU found"


def _engine_build_problem() -> str | None:
    """Why `gsrender build-engine` cannot run on this host, or None."""
    import importlib
    import importlib.util

    if (gpu := _gpu_problem()) is not None:
        return gpu
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed (pip install 'gsrender[tensorrt]')"
    from .cli import TOOL_VERBS

    try:
        importlib.import_module(TOOL_VERBS["build-engine"][0])
    except ImportError as exc:
        return f"gsrender build-engine is unavailable ({exc})"
    return None


def build_engine_if_available(argv: list[str]) -> int:
    """Run `gsrender build-engine` where it can run; elsewhere say why and succeed.

    With --required (the render asked for --backend tensorrt) a missing GPU stack or a failed
    build fails the task; otherwise a failed build is a warning, because the `auto` backend
    still renders without the engine.
    """
    required = "--required" in argv
    build_args = [a for a in argv if a != "--required"]
    host = socket.gethostname()
    problem = _engine_build_problem()
    if problem is not None:
        if required:
            print(
                f"gsrender: error: --backend tensorrt, but {host} cannot build an engine: {problem}",
                file=sys.stderr,
            )
            return EXIT_BACKEND
        print(f"gsrender build-engine: skipped on {host}: {problem}", flush=True)
        return EXIT_OK
    from .cli import main as cli_main

    code = cli_main(["build-engine", *build_args])
    if code != EXIT_OK and not required:
        print(
            f"gsrender build-engine: warning: the build failed on {host} (exit {code}); "
            "rendering goes on with the backend 'auto' picks",
            flush=True,
        )
        return EXIT_OK
    return code


def run_chunk(argv: list[str]) -> int:
    """Render frames START..min(START+N-1, LAST): the INT-range template's chunk, for old schedulers."""
    if "--" not in argv:
        raise UsageError(None, f"{RUN_CHUNK} START --chunk-size N --last END -- RENDER ARGS")
    cut = argv.index("--")
    p = argparse.ArgumentParser(prog=f"gsrender job {RUN_CHUNK}")
    p.add_argument("start", type=int)
    p.add_argument("--chunk-size", type=int, required=True)
    p.add_argument("--last", type=int, required=True)
    args = p.parse_args(argv[:cut])
    if args.chunk_size < 1:
        raise UsageError(None, "--chunk-size must be 1 or more")
    end = min(args.start + args.chunk_size - 1, args.last)
    from .cli import main as cli_main

    return cli_main([*argv[cut + 1 :], "--frames", f"{args.start}-{end}"])


# ---------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == [BUILD_GUARD]:
            return build_engine_if_available(argv[1:])
        if argv[:1] == [RUN_CHUNK]:
            return run_chunk(argv[1:])
        args, render_args = _given_render_args(argv)
        spec = _spec_from_args(args, render_args)
        template = build_template(spec)
        values = parameter_values(spec)
        if not validate_template(template, values):
            print(
                "gsrender job: warning: openjd-model is not installed, the template was not validated "
                "(pip install 'gsrender[farm]')",
                file=sys.stderr,
            )
        write_side_files(args, template, values)
        sys.stdout.write(dump_template(template, args.format))
        if not (args.params or args.bundle):
            print(
                "gsrender job: the template has no path defaults (OpenJD allows none outside its folder); "
                f"give them when running it: -p InputDir={spec.input_dir} -p OutputDir={spec.output_dir}, "
                "or write them with --params FILE / --bundle DIR",
                file=sys.stderr,
            )
        return EXIT_OK
    except GsRenderError as exc:
        print(f"gsrender: error: {exc.message}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
