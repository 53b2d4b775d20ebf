"""The Open Job Description template of `gsrender job`, built from a JobSpec.

The template (``jobtemplate-2023-09``, what AWS Deadline Cloud and ``openjd run`` execute)
has a ``BuildEngine`` step and a ``Render`` step whose tasks are contiguous frame chunks
(``CHUNK[INT]`` from the TASK_CHUNKING extension, or with ``--no-task-chunking`` an INT
range of chunk starts for schedulers without it). Input, output, frames and chunk size are
job parameters, so a submitter can change them without regenerating the template; this
module also lists this shot's values for them, checks a template with openjd-model and
writes it as YAML or JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsrender.engine.errors import UsageError

BUILD_GUARD = "--build-engine-if-available"
RUN_CHUNK = "--run-chunk"
EXTENSION = "TASK_CHUNKING"
NOTIFY_SECONDS = 30  # SIGTERM grace: gsrender finishes the frames in flight, then exits 130

# Compositor inputs (engine/compositor_inputs.py): render option dest -> (job parameter, option, label).
# They are PATH job parameters, so a submitter can point them elsewhere and path mapping applies.
INPUT_PARAMS = {
    "garbage_matte": ("GarbageMatte", "--garbage-matte", "Garbage matte"),
    "core_matte": ("CoreMatte", "--core-matte", "Core matte"),
    "clean_plate": ("CleanPlate", "--clean-plate", "Clean plate"),
}


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


def input_args(inputs: dict[str, str], value: Callable[[str], str]) -> list[str]:
    """The render options of the compositor inputs given, in a fixed order; `value` turns a job
    parameter name into the option's value (a path here, a format string in the template)."""
    return [f"{option}={value(param)}" for param, option, _ in INPUT_PARAMS.values() if param in inputs]


def _param(name: str, kind: str, label: str, description: str, group: str, **extra: Any) -> dict[str, Any]:
    """One job parameter, with the label and group a submitter GUI (Deadline Cloud) shows."""
    ui: dict[str, Any] = {"label": label, "groupLabel": group}
    if extra.pop("control", None) == "dir":
        ui["control"] = "CHOOSE_DIRECTORY"
    return {"name": name, "type": kind, "description": description, **extra, "userInterface": ui}


def _frame_parameters(spec: JobSpec) -> list[dict[str, Any]]:
    """Which frames, and how many per task: a range expression when the scheduler chunks tasks
    itself (task chunking), else the first and last frame."""
    frames = "Frames"
    params: list[dict[str, Any]] = []
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
    return params


def _parameters(spec: JobSpec) -> list[dict[str, Any]]:
    files = "Files"
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
    params += _frame_parameters(spec)
    for param, option, label in INPUT_PARAMS.values():
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
    render += input_args(spec.inputs, lambda param: f"{{{{Param.{param}}}}}")
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
    """The template as text: YAML (with a header comment) when PyYAML is there, else JSON."""
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
