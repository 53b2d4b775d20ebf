"""The `gsrender` command: render a frame sequence, or run one of the tool verbs.

gsrender plate.####.exr -o keyed/plate.####.exr -F 1001-1100
gsrender info plate.1001.exr
gsrender train|evaluate|export ...   (need the [train] extra)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from . import allocator, compositor_inputs
from .backends.base import Backend
from .errors import (
    EXIT_FRAMES_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUT,
    GsRenderError,
    InternalError,
    OutputError,
    UsageError,
    describe_exception,
)
from .image_io import WINDOW_MODES, remove_stale_temps, validate_output_options
from .layers import INPUT_ALPHA_MODES, PlateSelection
from .output import OutputSettings, validate_output, writer_dtype
from .output_check import check_report_path, problem_of
from .preflight import DEFAULT_MAX_PIXELS, utf8_path
from .progress import ProgressPrinter
from .render import FrameReport, RenderSettings, StageTimes, render_frames
from .sequence import FramePlan, FrameRef, expand_sequence, parse_frame_range, plan_sequence

log = logging.getLogger("gsrender")

# verb -> (module with main(argv) -> int, one-line help, extra it needs or None)
TOOL_VERBS: dict[str, tuple[str, str, str | None]] = {
    "info": ("gsrender.engine.info", "print what the engine sees in an image file", None),
    "doctor": ("gsrender.engine.doctor", "what this node can run (GPU, TensorRT, providers, engines)", None),
    "build-engine": ("gsrender.export.engine_build", "build the TensorRT engine for this GPU", "tensorrt"),
    "job": ("gsrender.engine.farm_job", "write an Open Job Description template for a farm", None),
    "serve": ("gsrender.ofx_bridge.worker", "run the local worker the OpenFX plugin talks to", None),
    "train": ("gsrender.training.train", "train a model from a config", "train"),
    "evaluate": ("gsrender.training.evaluate", "matting metrics of models on a validation set", "train"),
    "export": ("gsrender.export.onnx_export", "export a checkpoint to ONNX (+FP16)", "train"),
}

EXIT_CODES = """exit codes:
  0    every frame rendered (or skipped as existing)
  1    some frames failed on bad input (--on-error skip), or the run stopped at one (--on-error fail)
  2    bad command line or option (unknown option, value out of range, NaN...)
  3    bad input and nothing rendered (no frames match, every frame missing/corrupt/too large)
  4    an output could not be written: missing folder, permission, read-only or full disk
       ("no space left on device"), I/O error; also when other frames rendered
  5    the model or inference backend failed to load, validate or run
  70   internal error (an unexpected exception, a bug): the line names the frame; --debug
       shows the traceback
  130  interrupted by SIGINT/SIGTERM; frames in flight are finished, the summary and --report
       are written, partial frames never are: re-run with --skip-existing to resume
  141  stdout was closed (a pipe reader went away), as for other Unix tools"""


MAX_THREADS = 1024  # inference threads; more is a typo, and ONNX Runtime fails obscurely on it
MAX_IO_THREADS = 64  # frames read and written at once, each
MAX_SCREEN = 65504.0  # the largest half float: no plate holds a brighter screen


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one `gsrender: error:` line (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"gsrender: error: {message} (see '{self.prog} --help')\n")


def _count(text: str, most: int = 1 << 20) -> int:
    """argparse type for sizes and thread counts: a whole number, 0 meaning auto."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (auto) or more, got {value}")
    if value > most:
        raise argparse.ArgumentTypeError(f"must be at most {most}, got {value}")
    return value


def _threads(text: str) -> int:
    return _count(text, MAX_THREADS)


def _io_threads(text: str) -> int:
    return _count(text, MAX_IO_THREADS)


def _positive(text: str) -> int:
    """argparse type for limits: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _unit(text: str) -> float:
    """argparse type for strengths: a finite number from 0 to 1 (NaN would reach every pixel)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a number from 0 to 1, got '{text}'") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got '{text}'")
    return value


def _render_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="gsrender",
        description="Key green-screen frames with the gsrender neural keyer. "
        "Other verbs: " + "; ".join(f"'gsrender {k}': {v[1]}" for k, v in TOOL_VERBS.items()) + ".",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "input",
        help="input image or sequence: plate.####.exr (one digit per #), plate.%%04d.png, "
        "plate.@@@@.exr, or a single file",
    )
    p.add_argument(
        "-o",
        "--output",
        help="output file or pattern; format from the extension (.exr, .png, "
        ".tif). Default: a 'keyed' folder beside the input, EXR",
    )
    p.add_argument(
        "-F",
        "--frames",
        help="frame range: 1-100, 1-100x2, 1-10,20-30, -3-2 (default: every frame on disk)",
    )
    i = p.add_argument_group("input")
    i.add_argument(
        "--layer",
        help="RGB layer to key in a layered or multi-part EXR (beauty, rgba, or a part's name); "
        "default: the rgba/beauty plate, refusing to guess between equals",
    )
    i.add_argument("--part", help="EXR part (subimage) to key, by index or name (default: any)")
    i.add_argument(
        "--input-alpha",
        choices=INPUT_ALPHA_MODES,
        default="ignore",
        help="the plate's own alpha: ignore (default: the key alone decides), straight or "
        "premultiplied (the output alpha is the key times it; premultiplied RGB is divided first)",
    )
    g = p.add_argument_group("keying")
    g.add_argument(
        "--keyer",
        choices=("neural", "classic"),
        default="neural",
        help="neural network (default) or the classic colour-difference keyer",
    )
    g.add_argument("--backend", default="auto", help="auto (default), onnxruntime, cuda, torch, tensorrt")
    g.add_argument(
        "--model", help="ONNX model (default: the bundled models/gskey.onnx); a .pt for --backend torch"
    )
    g.add_argument(
        "--tile",
        type=_count,
        default=0,
        help="tile size in pixels (0 = auto: whole frame up to 2560x1440, else 1536); "
        "results do not depend on it",
    )
    g.add_argument(
        "--threads", type=_threads, default=0, help=f"inference threads (0 = auto, at most {MAX_THREADS})"
    )
    g.add_argument(
        "--io-threads",
        type=_io_threads,
        default=0,
        help="frames read and written at once, each (0 = auto: 1 when inference runs on the CPU, "
        f"up to 4 beside a GPU; at most {MAX_IO_THREADS})",
    )
    g.add_argument(
        "--precision", choices=("fp16", "fp32"), default="fp16", help="TensorRT precision (fp32 = reference)"
    )
    g.add_argument("--despill", type=_unit, default=1.0, help="despill strength 0..1 (0 = off; default 1)")
    g.add_argument(
        "--screen-colour",
        "--screen-color",
        dest="screen_colour",
        help="screen colour override as linear Rec.709 R,G,B (default: estimated per frame)",
    )
    c = p.add_argument_group("colour")
    c.add_argument(
        "--colorspace",
        "--colourspace",
        dest="colorspace",
        help="input colour space (OCIO name in the built-in config, e.g. ACEScg, ACES2065-1, "
        "'Linear Rec.709 (sRGB)', 'sRGB - Texture', or Cineon); default: the file's colour tag, "
        "log DPX transfer (Cineon) or EXR chromaticities, else EXR/DPX scene-linear Rec.709, "
        "PNG/JPEG/TIFF sRGB",
    )
    c.add_argument(
        "--out-colorspace",
        "--out-colourspace",
        dest="out_colorspace",
        help="output colour space (default: the input's for EXR from linear input, sRGB for PNG)",
    )
    o = p.add_argument_group("output")
    o.add_argument(
        "--layers", default="", help="extra EXR layers, comma separated: fg (straight foreground), matte"
    )
    o.add_argument(
        "--alpha-mode",
        choices=("auto", "premultiplied", "straight"),
        default="auto",
        help="auto: EXR premultiplied, PNG/TIFF straight",
    )
    o.add_argument("--exr-dtype", choices=("half", "float"), default="half")
    o.add_argument(
        "--compression",
        default="zip",
        help="EXR compression: zip (default), piz, dwaa, none, ...; under the lossy dwaa, dwab, "
        "b44 and b44a, alpha and matte.A stay lossless (b44: stored as 32-bit float)",
    )
    o.add_argument("--png-bits", type=int, choices=(8, 16), default=8)
    o.add_argument(
        "--output-window",
        choices=WINDOW_MODES,
        default="auto",
        help="auto (default): PNG/TIFF at the input's display window (padded with alpha 0, "
        "overscan cropped), EXR keeps the data window; display: always the display window; "
        "data: always the data window",
    )
    compositor_inputs.add_arguments(p)
    f = p.add_argument_group("farm")
    f.add_argument("--skip-existing", action="store_true", help="skip frames whose output exists (resume)")
    f.add_argument(
        "--on-error",
        choices=("fail", "skip"),
        default="fail",
        help="bad input frame: fail = stop taking new frames, finish those in flight, exit 1; "
        "skip = log it, render the rest, exit 1 at the end",
    )
    f.add_argument("--dry-run", action="store_true", help="list what would be rendered and exit")
    f.add_argument("--report", help="write a JSON report of this run (per frame status, seconds, errors)")
    f.add_argument("--no-progress", action="store_true", help="plain log lines even on a terminal")
    f.add_argument(
        "--max-pixels",
        type=_positive,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse input frames declaring more pixels than this, before decoding them "
        f"(default {DEFAULT_MAX_PIXELS}: 16384x16384); frames that would not fit in free memory are "
        "refused too",
    )
    f.add_argument("-q", "--quiet", action="store_true", help="only errors and the summary")
    f.add_argument(
        "--debug",
        action="store_true",
        help="log the traceback of an unexpected error (also GSRENDER_DEBUG=1)",
    )
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


def _default_output(pattern: str) -> str:
    src = Path(pattern)
    return str(src.parent / "keyed" / (src.stem + ".exr"))


def _plan_jobs(args: argparse.Namespace) -> FramePlan | list[tuple[FrameRef, Path]]:
    """(input, output) per frame. Patterns are parsed once and folders resolved once, and a
    sequence's pairs are made as the render takes them (-F 1-200000 plans in well under a second)."""
    utf8_path(args.input)
    frames = parse_frame_range(args.frames) if args.frames else None
    out_pattern = args.output or _default_output(args.input)
    utf8_path(out_pattern, output=True)
    plan = plan_sequence(args.input, out_pattern, frames)
    if plan is None:
        (ref,) = expand_sequence(args.input, frames)
        target = Path(out_pattern)
        if target.resolve() == ref.path.resolve():
            raise UsageError(target, "output would overwrite the input frame")
        return [(ref, target)]
    if plan.input_folder.resolve() == plan.output_folder.resolve():
        clash = plan.input_names() & plan.output_names()
        if clash:
            raise UsageError(plan.output_folder / min(clash), "output would overwrite the input frame")
    return plan


def _sides(jobs: FramePlan | list) -> tuple[Callable[[Path], bool], Callable[[Path], bool]]:
    """Is a resolved path one of the inputs / outputs? By folder and name for a plan, so that
    no Path is made per frame."""
    if isinstance(jobs, FramePlan):
        in_dir, out_dir = jobs.input_folder.resolve(), jobs.output_folder.resolve()
        return (
            lambda p: p.parent == in_dir and p.name in jobs.input_names(),
            lambda p: p.parent == out_dir and p.name in jobs.output_names(),
        )
    inputs = {ref.path.resolve() for ref, _ in jobs}
    outputs = {target.resolve() for _, target in jobs}
    return inputs.__contains__, outputs.__contains__


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
        self.stop.set()
        if not self.rendering or not first:
            raise KeyboardInterrupt


def _debug_enabled(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("GSRENDER_DEBUG", "") not in ("", "0")


def _check_model_option(args: argparse.Namespace) -> None:
    """Backend name and model file, checked before anything is planned on them (also by --dry-run)."""
    from .backends import BACKENDS

    if args.backend not in BACKENDS:
        raise UsageError(None, f"unknown backend '{args.backend}' ({', '.join(BACKENDS)})")
    if args.keyer == "neural" and args.model:
        from .errors import BackendError

        utf8_path(args.model, output=True)
        if not Path(args.model).is_file():
            raise BackendError(args.model, "model file not found")


def _negative_frame_ranges(argv: list[str]) -> list[str]:
    """'-F -3-2' as '-F=-3-2': argparse takes a value starting with '-' for an option."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] in ("-F", "--frames") and arg.startswith("-") and arg[1:2].isdigit():
            out[-1] = f"{argv[i - 1]}={arg}"
        else:
            out.append(arg)
    return out


def _log_input_colour(args: argparse.Namespace, jobs: FramePlan | list, plate: PlateSelection) -> None:
    """One line saying which layer and colour space the first frame is keyed as, and why."""
    from . import colour
    from .image_io import probe
    from .layers import choose_plate

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
    ignored = layer.alpha is not None and plate.input_alpha == "ignore"
    note = "; its alpha is ignored (see --input-alpha)" if ignored else ""
    log.info(
        "gsrender: input %s: keying %s as %s (%s)%s", jobs[0][0].path.name, layer.describe(), space, why, note
    )


def render_main(argv: list[str]) -> int:
    signals = _Signals()
    signals.install()
    try:
        return _render(argv, signals)
    finally:
        signals.restore()


def _settings(args: argparse.Namespace) -> RenderSettings:
    return RenderSettings(
        tile=args.tile,
        despill=args.despill,
        colorspace=args.colorspace,
        screen_colour=_parse_colour(args.screen_colour),
        skip_existing=args.skip_existing,
        on_error=args.on_error,
        io_workers=args.io_threads,
        plate=PlateSelection(layer=args.layer, part=args.part, input_alpha=args.input_alpha),
        max_pixels=args.max_pixels,
        inputs=compositor_inputs.from_args(args),
        output=OutputSettings(
            colorspace=args.out_colorspace,
            alpha_mode=args.alpha_mode,
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
            state = "exists, skip"
        print(f"{ref.path} -> {target} ({state})")
    print(f"{len(jobs)} frame(s)")
    return EXIT_OK


def _render(argv: list[str], signals: _Signals) -> int:
    """Check everything that can be checked, then load the model and render. From the model
    load on, every way out prints the summary line and writes the --report file."""
    args = _render_parser().parse_args(_negative_frame_ranges(argv))
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
    from .colour import resolve_colorspace

    for option, name in (("--colorspace", args.colorspace), ("--out-colorspace", args.out_colorspace)):
        try:
            if name:
                resolve_colorspace(name)
        except UsageError as exc:
            raise UsageError(None, f"{option}: {exc.problem}") from None
    _check_model_option(args)
    report_path = check_report_path(args.report, *_sides(jobs)) if args.report else None
    if args.dry_run:
        return _dry_run(jobs, settings)
    _log_input_colour(args, jobs, settings.plate)
    names_by_folder = _output_names(jobs)
    _prepare_output_folders(set(names_by_folder))
    for folder, names in names_by_folder.items():
        remove_stale_temps(folder, names)

    from .backends import create_backend

    start = time.perf_counter()
    times = StageTimes()
    collected: list[FrameReport] = []
    fatal: GsRenderError | None = None
    backend_name = args.backend if args.keyer == "neural" else "classic"
    try:
        backend, note = create_backend(
            args.backend, model=args.model, keyer=args.keyer, threads=args.threads, precision=args.precision
        )
    except GsRenderError as exc:
        fatal = exc
    else:
        backend_name = backend.name
        log.info("gsrender: backend %s%s", backend.describe(), f" [auto: {note}]" if note else "")
        fatal = _run(jobs, backend, settings, args, signals, collected, times)
    if fatal is not None:
        print(f"gsrender: error: {fatal.message}", file=sys.stderr, flush=True)
    reports = sorted(collected, key=lambda r: r.frame or 0)  # jobs are in frame order
    code = _exit_code(reports, fatal, signals.received is not None)
    if signals.received is not None:
        print(
            "gsrender: interrupted; complete frames kept, re-run with --skip-existing to resume",
            file=sys.stderr,
            flush=True,
        )
    try:
        _summarise(reports, time.perf_counter() - start, backend_name, jobs)
    except BrokenPipeError:
        _quiet_stdout()  # nobody reads stdout any more; the exit code and report still count
    finally:
        if report_path is not None:
            code = _write_report(report_path, reports, jobs, backend_name, times, code, fatal)
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


def _exit_code(reports: list[FrameReport], fatal: GsRenderError | None, interrupted: bool) -> int:
    """One code for the run: interrupted, then a fatal error, then the worst frame failure.

    Output failures (disk, permission, I/O) win over bad input, so a scheduler retries a chunk
    that hit a full disk once it is freed; a bug (70) wins over bad input too.
    """
    if interrupted:
        return EXIT_INTERRUPTED
    if fatal is not None:
        return fatal.exit_code
    failed = [r for r in reports if r.status == "failed"]
    if not failed:
        return EXIT_OK
    codes = {r.error.exit_code if r.error else EXIT_FRAMES_FAILED for r in failed}
    for worst in (EXIT_OUTPUT, EXIT_INTERNAL):
        if worst in codes:
            return worst
    if not any(r.status in ("rendered", "skipped") for r in reports) and len(codes) == 1:
        return codes.pop()  # nothing could render: say why (3 bad input)
    return EXIT_FRAMES_FAILED


def _summarise(reports: list[FrameReport], wall: float, backend: str, jobs: list) -> None:
    done = [r for r in reports if r.status == "rendered"]
    skipped = [r for r in reports if r.status == "skipped"]
    failed = [r for r in reports if r.status == "failed"]
    not_started = len(jobs) - len(reports)
    per_frame = wall / len(done) if done else 0.0
    print(
        f"gsrender summary: rendered={len(done)} skipped={len(skipped)} failed={len(failed)} "
        f"not_started={not_started} seconds_per_frame={per_frame:.3f} backend={backend}",
        flush=True,
    )
    if done:
        outs = sorted({str(r.target.parent) for r in done})
        print("output: " + ", ".join(outs), flush=True)


def _write_report(
    path: Path,
    reports: list[FrameReport],
    jobs: list,
    backend: str,
    times: StageTimes,
    code: int,
    fatal: GsRenderError | None = None,
) -> int:
    """Machine-readable run report for farm tooling; written atomically. Returns the exit code,
    4 when the report itself cannot be written (and the run had nothing worse to say)."""
    import json

    data = {
        "backend": backend,
        "exit_code": code,
        "error": fatal.message if fatal else None,
        "frames_total": len(jobs),
        "counts": {s: sum(r.status == s for r in reports) for s in ("rendered", "skipped", "failed")},
        "not_started": len(jobs) - len(reports),
        "stage_seconds": {"read": times.read, "infer": times.infer, "write": times.write},
        "frames": [
            {
                "frame": r.frame,
                "input": str(r.source),
                "output": str(r.target),
                "status": r.status,
                "seconds": round(r.seconds, 4),
                "error": r.error.message if r.error else None,
            }
            for r in reports
        ],
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        print(f"gsrender: error: {path}: cannot write the report: {problem_of(exc)}", file=sys.stderr)
        return code if code != EXIT_OK else EXIT_OUTPUT
    return code


def main(argv: list[str] | None = None) -> int:
    """Every way out is a documented exit code with at most one error line, never a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in TOOL_VERBS:
            return _run_verb(argv[0], argv[1:])
        allocator.tune_for_frames()
        return render_main(argv)
    except GsRenderError as exc:
        print(f"gsrender: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        verb = argv[0] if argv and argv[0] in TOOL_VERBS else None
        during = f"'gsrender {verb}'" if verb else "start-up; nothing was rendered"
        print(f"gsrender: interrupted during {during}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except MemoryError:
        print("gsrender: error: out of memory", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:
        if _debug_enabled(argv):
            logging.getLogger("gsrender").exception("unexpected exception")
        where = f"'gsrender {argv[0]}'" if argv and argv[0] in TOOL_VERBS else "gsrender"
        print(
            f"gsrender: error: internal error in {where}: {describe_exception(exc)} "
            "(re-run with --debug or GSRENDER_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell reports for a tool killed by SIGPIPE


def _quiet_stdout() -> None:
    """stdout's reader went away: point stdout at /dev/null so the interpreter's final flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _run_verb(verb: str, argv: list[str]) -> int:
    import importlib

    module_name, _, extra = TOOL_VERBS[verb]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f": pip install 'gsrender[{extra}]'" if extra else ""
        raise UsageError(None, f"'gsrender {verb}' is unavailable here ({exc}){hint}") from None
    return int(module.main(argv) or 0)


if __name__ == "__main__":
    sys.exit(main())
