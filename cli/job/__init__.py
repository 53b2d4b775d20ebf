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

This module is the entry point and writes the side files; the command line is
cli/job/options.py, the template cli/job/template.py, the host modes cli/job/host.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gsrender.cli.job.host import build_engine_if_available, run_chunk
from gsrender.cli.job.options import absolute, given_render_args, spec_from_args
from gsrender.cli.job.template import (
    BUILD_GUARD,
    INPUT_PARAMS,
    RUN_CHUNK,
    JobSpec,
    build_template,
    dump_template,
    parameter_values,
    validate_template,
)
from gsrender.engine import overwrite_guard
from gsrender.engine.atomic_files import atomic_write_text
from gsrender.engine.command import run_command
from gsrender.engine.errors import EXIT_OK, OutputError
from gsrender.engine.overwrite_guard import FileSet
from gsrender.engine.sequence import has_frame_token, pattern_files


def _write_text(path: Path, text: str) -> None:
    """Atomic, like every file gsrender writes: a reader never sees half a template."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write_text(path, text)
    except OSError as exc:  # name the file, not the temp file beside it
        raise OutputError(path, f"cannot write ({exc.strerror or exc})") from None


def write_side_files(
    args: argparse.Namespace, template: dict[str, Any], values: dict[str, str | int]
) -> None:
    """--params (openjd run) and --bundle (Deadline Cloud job bundle) outputs."""
    try:
        if args.params:
            _write_text(absolute(args.params), json.dumps(values, indent=2) + "\n")
        if args.bundle:
            bundle = absolute(args.bundle)
            _write_text(bundle / "template.yaml", dump_template(template, "yaml"))
            listed = {"parameterValues": [{"name": k, "value": v} for k, v in values.items()]}
            _write_text(bundle / "parameter_values.yaml", dump_template(listed, "yaml", header=False))
    except OSError as exc:
        raise OutputError(exc.filename, f"cannot write ({exc.strerror or exc})") from None


def check_side_files(args: argparse.Namespace, spec: JobSpec) -> None:
    """The render's rule (engine/overwrite_guard.py) for the files this verb writes: --params and
    the --bundle files may not be a plate frame, matte, clean plate, model or output frame."""
    writes = []
    if args.params:
        writes.append(overwrite_guard.single("--params", absolute(args.params)))
    if args.bundle:
        bundle = absolute(args.bundle)
        names = ("template.yaml", "parameter_values.yaml")
        writes += [overwrite_guard.single("--bundle", bundle / name) for name in names]
    if not writes:
        return
    in_dir, in_names = pattern_files(str(Path(spec.input_dir) / spec.input_name), spec.frames)
    out_dir, out_names = pattern_files(str(Path(spec.output_dir) / spec.output_name), spec.frames)
    reads = [
        FileSet("input frame", in_dir, in_names, many=True),
        FileSet("output frame", out_dir, out_names, many=True),
    ]
    for param, option, _ in INPUT_PARAMS.values():
        if param in spec.inputs:
            folder, names = pattern_files(spec.inputs[param], spec.frames)
            reads.append(FileSet(option, folder, names, many=has_frame_token(spec.inputs[param])))
    if getattr(args, "model", None):
        reads.append(overwrite_guard.single("--model", absolute(args.model)))
    overwrite_guard.check_no_overwrite(reads, writes)


# ---------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """`gsrender job`: print the template (and write --params/--bundle), or run a farm-host mode."""
    return run_command(_job, argv, "job")


def _job(argv: list[str]) -> int:
    if argv[:1] == [BUILD_GUARD]:
        return build_engine_if_available(argv[1:])
    if argv[:1] == [RUN_CHUNK]:
        return run_chunk(argv[1:])
    args, render_args = given_render_args(argv)
    spec = spec_from_args(args, render_args)
    template = build_template(spec)
    values = parameter_values(spec)
    if not validate_template(template, values):
        print(
            "gsrender job: warning: openjd-model is not installed, the template was not validated "
            "(pip install 'gsrender[farm]')",
            file=sys.stderr,
        )
    check_side_files(args, spec)
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


if __name__ == "__main__":
    sys.exit(main())
