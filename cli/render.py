"""The render command: key a frame sequence (`gsrender plate.####.exr -o keyed/k.####.exr -F 1001-1100`).

The `gsrender` script is gsrender.cli, which runs the other verbs (info, job, train...) and hands
everything else to `main` here; `python -m gsrender.cli` renders too.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from gsrender.cli.progress import ProgressPrinter
from gsrender.cli.render_end import exit_code, summarise, write_report
from gsrender.cli.render_options import (
    OneLineParser,
    add_render_arguments,
    compositor_inputs_from_args,
    default_output,
    negative_frame_ranges,
)
from gsrender.engine import allocator, compositor_inputs, overwrite_guard
from gsrender.engine.atomic_files import remove_stale_temps
from gsrender.engine.backends.base import Backend
from gsrender.engine.command import SignalInterrupt, note_signal, quiet_stdout, run_command
from gsrender.engine.encoding import HALF_MAX
from gsrender.engine.errors import (
    EXIT_OK,
    GsRenderError,
    InputError,
    InternalError,
    OutputError,
    UsageError,
    describe_exception,
)
from gsrender.engine.formats import AlphaMode, InputAlpha
from gsrender.engine.image_write import validate_output_options
from gsrender.engine.layers import PlateSelection
from gsrender.engine.output import OutputSettings, validate_output, writer_dtype
from gsrender.engine.output_check import check_report_path
from gsrender.engine.overwrite_guard import FileSet
from gsrender.engine.preflight import resolved, utf8_path
from gsrender.engine.render import (
    FrameReport,
    RenderSettings,
    StageTimes,
    existing_problem,
    render_frames,
)
from gsrender.engine.sequence import (
    FramePlan,
    FrameRef,
    describe_ranges,
    expand_sequence,
    has_frame_token,
    parse_frame_range,
    pattern_files,
    plan_sequence,
)

log = logging.getLogger("gsrender")

EXIT_CODES = """exit codes:
  0    every frame rendered (or skipped as existing)
  1    some frames failed on bad input (--on-error skip), or the run stopped at one (--on-error fail)
  2    bad command line, option or environment value (unknown option, value out of range,
       NaN, a path that is not UTF-8, GSRENDER_DEBUG=maybe...); an output frame or --report
       that is a file the run reads (plate, matte, clean plate, model)
  3    bad input and nothing rendered (no frames match, every frame missing/corrupt/too large)
  4    an output could not be written: missing folder, permission, read-only or full disk
       ("no space left on device"), I/O error, a read-only output frame (never replaced), a
       symlink loop; also when other frames rendered
  5    the model or inference backend failed to load, validate or run
  70   internal error (an unexpected exception, a bug): the line names the frame; --debug
       shows the traceback
  130  interrupted by SIGINT/SIGTERM (also during start-up); frames in flight are finished,
       the summary and --report are written, partial frames never are: re-run with
       --skip-existing to resume
  141  stdout was closed (a pipe reader went away), as for other Unix tools"""


MAX_SCREEN = HALF_MAX  # no plate holds a brighter screen


def _render_parser(verbs: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The render command's parser; `verbs` (verb -> one-line help) are the other verbs of the
    command that runs it, listed in --help."""
    others = "; ".join(f"'gsrender {k}': {v}" for k, v in (verbs or {}).items())
    p = OneLineParser(
        prog="gsrender",
        description="Key green-screen frames with the gsrender neural keyer."
        + (f" Other verbs: {others}." if others else ""),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_render_arguments(p)
    return p


def _parse_colour(text: str | None) -> tuple[float, float, float] | None:
    """--screen-colour: three finite linear values, none negative, not all zero."""
    if not text:
        return None
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3:
        raise UsageError(None, f"--screen-colour wants three numbers R,G,B, got '{text}'")
    if not all(math.isfinite(v) for v in vals) or min(vals) < 0 or max(vals) <= 0 or max(vals) > MAX_SCREEN:
        raise UsageError(
            None,
            f"--screen-colour wants linear values from 0 to {MAX_SCREEN:g}, not all 0, got '{text}'",
        )
    return vals  # type: ignore[return-value]


def _plan_jobs(args: argparse.Namespace) -> FramePlan | list[tuple[FrameRef, Path]]:
    """(input, output) per frame. Patterns are parsed once and folders resolved once, and a
    sequence's pairs are made as the render takes them (-F 1-200000 plans in well under a second)."""
    utf8_path(args.input)
    frames = parse_frame_range(args.frames) if args.frames else None
    out_pattern = args.output or default_output(args.input)
    utf8_path(out_pattern)
    plan = plan_sequence(args.input, out_pattern, frames)
    if plan is None:
        (ref,) = expand_sequence(args.input, frames)
        target = Path(out_pattern)
        resolved(ref.path, output=False)  # a symlink loop is one line (exit 3 or 4), never 70
        resolved(target, output=True)
        return [(ref, target)]
    resolved(plan.input_folder, output=False)
    resolved(plan.output_folder, output=True)
    return plan


def _drop_missing(jobs: FramePlan | list, settings: RenderSettings) -> tuple[FramePlan | list, list[int]]:
    """With --on-error skip, frames whose input file is missing are found once, from one listing of
    the input folder, and reported in one line as ranges instead of failing one by one (-F 1-1000000
    over a 5-frame sequence). With --on-error fail the first missing frame stops the run as before."""
    if settings.on_error != "skip" or not isinstance(jobs, FramePlan):
        return jobs, []
    missing = jobs.missing()
    if not missing:
        return jobs, []
    if len(missing) == 1:  # as the reader says it for one frame
        ref, _ = jobs.pair(missing[0])
        where, problem = f"frame {ref.frame}: {ref.path}", "file not found"
    else:
        where = f"frames {describe_ranges(missing)}: {jobs.input_pattern()}"
        problem = f"{len(missing)} input frames missing (file not found)"
    if len(missing) == len(jobs):
        raise InputError(None, f"{where}: no input frame exists, {problem}")
    print(f"gsrender: error: {where}: {problem}", file=sys.stderr, flush=True)
    return jobs.without(missing), missing


def _check_overwrites(
    args: argparse.Namespace, jobs: FramePlan | list, settings: RenderSettings, report: Path | None
) -> None:
    """Every file the run reads (plate frames, mattes, clean plate, model) against every file it
    writes (frames, report): engine/overwrite_guard.py. By folder and names for a plan, so that
    no Path is made per frame."""
    if isinstance(jobs, FramePlan):
        reads = [FileSet("input frame", jobs.input_folder, jobs.input_names(), many=True)]
        writes = [FileSet("output frame", jobs.output_folder, jobs.output_names(), many=True)]
        frames = jobs.frames
    else:
        reads = overwrite_guard.files("input frame", [ref.path for ref, _ in jobs])
        writes = overwrite_guard.files("output frame", [target for _, target in jobs])
        frames = [ref.frame for ref, _ in jobs if ref.frame is not None]
    for option, pattern in compositor_inputs.named_patterns(settings.inputs):
        folder, names = pattern_files(pattern, frames)
        reads.append(FileSet(option, folder, names, many=has_frame_token(pattern)))
    if args.keyer == "neural":
        from gsrender.engine.backends.base import default_model_path

        reads.append(overwrite_guard.single("--model", args.model or default_model_path()))
    if report is not None:
        writes.append(overwrite_guard.single("--report", report))
    overwrite_guard.check_no_overwrite(reads, writes)


def _output_names(jobs: FramePlan | list) -> dict[Path, set[str]]:
    """Output file names per output folder."""
    if isinstance(jobs, FramePlan):
        return {jobs.output_folder: jobs.output_names()}
    names: dict[Path, set[str]] = {}
    for _, target in jobs:
        names.setdefault(target.parent, set()).add(target.name)
    return names


def _prepare_output_folders(folders: set[Path]) -> None:
    """Create missing output folders and fail fast, before any rendering, if one is unusable."""
    for folder in sorted(folders):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(folder, f"cannot create output folder ({exc.strerror or exc})") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(folder, "output folder is not writable")


class _Signals:
    """SIGTERM/SIGINT: during start-up they abort (exit 130); once rendering, they stop taking new
    frames, the frames in flight are finished, and the summary and report are written. A second
    signal while rendering aborts at once."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.rendering = False
        self.received: int | None = None

    def install(self) -> None:
        self._previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():  # Python allows handlers only there
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        """Put back what was there (matters when render_main runs inside another program)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, _frame: object) -> None:
        first = self.received is None
        self.received = signum
        note_signal(signum)
        self.stop.set()
        if not self.rendering or not first:
            raise SignalInterrupt


def _check_model_option(args: argparse.Namespace) -> None:
    """Backend name and model file, checked before anything is planned on them (also by --dry-run)."""
    from gsrender.engine.backends import BACKENDS

    if args.backend not in BACKENDS:
        raise UsageError(None, f"unknown backend '{args.backend}' ({', '.join(BACKENDS)})")
    if args.keyer != "classic" and args.classic_form != "local":
        raise UsageError(None, "--classic-form applies to --keyer classic only")
    if args.keyer == "neural" and args.model:
        from gsrender.engine.errors import BackendError

        utf8_path(args.model)
        if not Path(args.model).is_file():
            raise BackendError(args.model, "model file not found")


def _log_input_colour(args: argparse.Namespace, jobs: FramePlan | list, plate: PlateSelection) -> None:
    """One line saying which layer and colour space the first frame is keyed as, and why."""
    from gsrender.engine import colour
    from gsrender.engine.image_io import probe
    from gsrender.engine.layers import choose_plate

    try:
        info = probe(jobs[0][0].path)
        layer = choose_plate(info.path, info, plate)
        info = probe(info.path, layer.part) if layer.part else info  # that part's own header
    except GsRenderError:
        return  # the render reports a bad first frame itself
    if args.colorspace:
        space, why = colour.resolve_colorspace(args.colorspace), "--colorspace"
    else:
        space, why = colour.input_colorspace(info)
    ignored = layer.alpha is not None and plate.input_alpha == InputAlpha.IGNORE
    note = "; its alpha is ignored (see --input-alpha)" if ignored else ""
    log.info(
        "gsrender: input %s: keying %s as %s (%s)%s", jobs[0][0].path.name, layer.describe(), space, why, note
    )


def render_main(argv: list[str], verbs: Mapping[str, str] | None = None) -> int:
    """Render as the command line says (errors propagate; `main` turns them into exit codes)."""
    signals = _Signals()
    signals.install()
    try:
        return _render(argv, signals, verbs)
    finally:
        signals.restore()


def _settings(args: argparse.Namespace) -> RenderSettings:
    return RenderSettings(
        tile=args.tile,
        despill=args.despill,
        despot=args.despot,
        colorspace=args.colorspace,
        screen_colour=_parse_colour(args.screen_colour),
        skip_existing=args.skip_existing,
        on_error=args.on_error,
        io_workers=args.io_threads,
        plate=PlateSelection(layer=args.layer, part=args.part, input_alpha=InputAlpha(args.input_alpha)),
        max_pixels=args.max_pixels,
        inputs=compositor_inputs_from_args(args),
        output=OutputSettings(
            colorspace=args.out_colorspace,
            alpha_mode=AlphaMode(args.alpha_mode),
            layers=tuple(x.strip() for x in args.layers.split(",") if x.strip()),
            exr_dtype=args.exr_dtype,
            compression=args.compression,
            png_bits=args.png_bits,
            window=args.output_window,
        ),
    )


def _dry_run(jobs: FramePlan | list, settings: RenderSettings) -> int:
    for ref, target in jobs:
        state = "render"
        if target.is_dir():
            state = "ERROR: a folder has this name"
        elif settings.skip_existing and target.exists():
            problem = existing_problem(ref, target, settings)
            state = "exists, skip" if problem is None else f"exists but will be rendered again: {problem}"
        print(f"{ref.path} -> {target} ({state})")
    print(f"{len(jobs)} frame(s)")
    return EXIT_OK


def _render(argv: list[str], signals: _Signals, verbs: Mapping[str, str] | None = None) -> int:
    """Check everything that can be checked, then load the model and render. From the model
    load on, every way out prints the summary line and writes the --report file."""
    args = _render_parser(verbs).parse_args(negative_frame_ranges(argv))
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
    )
    if args.debug:  # also when logging was configured before (gsrender embedded in a tool)
        log.setLevel(logging.DEBUG)
    settings = _settings(args)
    jobs = _plan_jobs(args)
    compositor_inputs.check_patterns(settings.inputs, isinstance(jobs, FramePlan))
    validate_output(str(jobs[0][1]), settings.output)
    validate_output_options(
        jobs[0][1], writer_dtype(jobs[0][1], settings.output), settings.output.compression
    )
    from gsrender.engine.colour import resolve_colorspace

    for option, name in (("--colorspace", args.colorspace), ("--out-colorspace", args.out_colorspace)):
        try:
            if name:
                resolve_colorspace(name)
        except UsageError as exc:
            raise UsageError(None, f"{option}: {exc.problem}") from None
    _check_model_option(args)
    report_path = check_report_path(args.report) if args.report else None
    _check_overwrites(args, jobs, settings, report_path)
    if args.dry_run:
        return _dry_run(jobs, settings)
    jobs, missing = _drop_missing(jobs, settings)
    _log_input_colour(args, jobs, settings.plate)
    names_by_folder = _output_names(jobs)
    _prepare_output_folders(set(names_by_folder))
    for folder, names in names_by_folder.items():
        remove_stale_temps(folder, names)

    from gsrender.engine.backends import create_backend

    start = time.perf_counter()
    times = StageTimes()
    collected: list[FrameReport] = []
    fatal: GsRenderError | None = None
    backend_name = args.backend if args.keyer == "neural" else "classic"
    try:
        backend = create_backend(
            args.backend,
            model=args.model,
            keyer=args.keyer,
            threads=args.threads,
            precision=args.precision,
            classic_form=args.classic_form,
        )
    except GsRenderError as exc:
        fatal = exc if signals.received is None else None  # a signal broke the load: that is the cause
    except KeyboardInterrupt:
        pass  # SIGTERM/SIGINT while loading the model: summary and report, exit 130
    else:
        backend_name = backend.name
        note = backend.auto_note
        log.info("gsrender: backend %s%s", backend.describe(), f" [auto: {note}]" if note else "")
        fatal = _run(jobs, backend, settings, args, signals, collected, times)
    if fatal is not None:
        print(f"gsrender: error: {fatal.message}", file=sys.stderr, flush=True)
    reports = sorted(collected, key=lambda r: r.frame or 0)  # jobs are in frame order
    code = exit_code(reports, fatal, signals.received is not None, len(missing))
    if signals.received is not None:
        print(
            "gsrender: interrupted; complete frames kept, re-run with --skip-existing to resume",
            file=sys.stderr,
            flush=True,
        )
    try:
        summarise(reports, time.perf_counter() - start, backend_name, jobs, len(missing))
    except BrokenPipeError:
        quiet_stdout()  # nobody reads stdout any more; the exit code and report still count
    finally:
        if report_path is not None:
            code = write_report(report_path, reports, jobs, backend_name, times, code, fatal, missing)
    return code


def _run(
    jobs: FramePlan | list,
    backend: Backend,
    settings: RenderSettings,
    args: argparse.Namespace,
    signals: _Signals,
    collected: list[FrameReport],
    times: StageTimes,
) -> GsRenderError | None:
    """Render with progress output; the error that stopped the run, if one did."""
    progress = ProgressPrinter(
        len(jobs), backend.name, fancy=sys.stderr.isatty() and not args.no_progress, quiet=args.quiet
    )

    def on_report(r: FrameReport) -> None:
        collected.append(r)
        progress.report(r)

    fatal: GsRenderError | None = None
    signals.rendering = True
    try:
        render_frames(jobs, backend, settings, on_report, signals.stop, times)
    except GsRenderError as exc:
        fatal = exc
    except KeyboardInterrupt:
        pass  # a second signal: what finished is summarised
    except Exception as exc:
        log.debug("unexpected exception", exc_info=exc)
        fatal = InternalError(None, f"unexpected error while rendering: {describe_exception(exc)}")
    finally:
        signals.rendering = False
        backend.close()
        progress.close()
    return fatal


def main(argv: list[str] | None = None, verbs: Mapping[str, str] | None = None) -> int:
    """`gsrender [options] INPUT`: every way out is a documented exit code with at most one error
    line, never a traceback. `verbs`: the other verbs of the calling command, for --help."""

    def body(args: list[str]) -> int:
        allocator.tune_for_frames()
        return render_main(args, verbs)

    return run_command(body, argv, None)


if __name__ == "__main__":
    sys.exit(main())
