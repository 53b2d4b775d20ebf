"""The `gsrender` command: render a frame sequence, or run one of the tool verbs.

gsrender plate.####.exr -o keyed/plate.####.exr -F 1001-1100
gsrender info plate.1001.exr
gsrender train|evaluate|export ...   (need the [train] extra)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from . import allocator
from .errors import EXIT_FRAMES_FAILED, EXIT_INTERRUPTED, EXIT_OK, GsRenderError, OutputError, UsageError
from .io import WINDOW_MODES, remove_stale_temps, validate_output_options
from .layers import INPUT_ALPHA_MODES, PlateSelection
from .output import OutputSettings, validate_output, writer_dtype
from .progress import ProgressPrinter
from .render import FrameReport, RenderSettings, StageTimes, render_frames
from .sequence import check_output_pattern, expand_sequence, frame_path, parse_frame_range

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
  1    some frames failed (--on-error skip), or the run stopped at one (--on-error fail)
  2    bad command line or option
  3    bad input and nothing rendered (no frames match, every frame missing/corrupt)
  4    an output cannot be written and nothing rendered (missing folder, permission, disk full)
  5    the model or inference backend failed to load or run
  130  interrupted by SIGINT/SIGTERM; complete frames are kept, partial ones never written:
       re-run with --skip-existing to resume"""


def _count(text: str) -> int:
    """argparse type for sizes and thread counts: a whole number, 0 meaning auto."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (auto) or more, got {value}")
    return value


def _render_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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
    g.add_argument("--threads", type=_count, default=0, help="inference threads (0 = auto)")
    g.add_argument(
        "--io-threads",
        type=_count,
        default=0,
        help="frames read and written at once, each (0 = auto: 1 when inference runs on the CPU, "
        "up to 4 beside a GPU)",
    )
    g.add_argument(
        "--precision", choices=("fp16", "fp32"), default="fp16", help="TensorRT precision (fp32 = reference)"
    )
    g.add_argument("--despill", type=float, default=1.0, help="despill strength 0..1 (0 = off; default 1)")
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
    f.add_argument("-q", "--quiet", action="store_true", help="only errors and the summary")
    return p


def _parse_colour(text: str | None) -> tuple[float, float, float] | None:
    if not text:
        return None
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3:
        raise UsageError(None, f"--screen-colour wants three numbers R,G,B, got '{text}'")
    return vals  # type: ignore[return-value]


def _default_output(pattern: str) -> str:
    src = Path(pattern)
    return str(src.parent / "keyed" / (src.stem + ".exr"))


def _plan_jobs(args: argparse.Namespace) -> list[tuple]:
    frames = parse_frame_range(args.frames) if args.frames else None
    refs = expand_sequence(args.input, frames)
    out_pattern = args.output or _default_output(args.input)
    check_output_pattern(out_pattern, len(refs))
    jobs = []
    for ref in refs:
        target = frame_path(out_pattern, ref.frame) if ref.frame is not None else Path(out_pattern)
        if target.resolve() == ref.path.resolve():
            raise UsageError(target, "output would overwrite the input frame")
        jobs.append((ref, target))
    return jobs


def _prepare_output_folders(folders: set[Path]) -> None:
    """Create missing output folders and fail fast, before any rendering, if one is unusable."""
    for folder in sorted(folders):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(folder, f"cannot create output folder ({exc.strerror or exc})") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(folder, "output folder is not writable")


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, _frame: object) -> None:
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handle)


def _negative_frame_ranges(argv: list[str]) -> list[str]:
    """'-F -3-2' as '-F=-3-2': argparse takes a value starting with '-' for an option."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] in ("-F", "--frames") and arg.startswith("-") and arg[1:2].isdigit():
            out[-1] = f"{argv[i - 1]}={arg}"
        else:
            out.append(arg)
    return out


def _log_input_colour(args: argparse.Namespace, jobs: list[tuple], plate: PlateSelection) -> None:
    """One line saying which layer and colour space the first frame is keyed as, and why."""
    from . import colour
    from .io import probe
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
    args = _render_parser().parse_args(_negative_frame_ranges(argv))
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    settings = RenderSettings(
        tile=args.tile,
        despill=args.despill,
        colorspace=args.colorspace,
        screen_colour=_parse_colour(args.screen_colour),
        skip_existing=args.skip_existing,
        on_error=args.on_error,
        io_workers=args.io_threads,
        plate=PlateSelection(layer=args.layer, part=args.part, input_alpha=args.input_alpha),
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
    jobs = _plan_jobs(args)
    validate_output(str(jobs[0][1]), settings.output)
    validate_output_options(
        jobs[0][1], writer_dtype(jobs[0][1], settings.output), settings.output.compression
    )
    if args.colorspace:
        from .colour import resolve_colorspace

        resolve_colorspace(args.colorspace)
    if args.dry_run:
        for ref, target in jobs:
            state = "exists, skip" if settings.skip_existing and target.exists() else "render"
            print(f"{ref.path} -> {target} ({state})")
        print(f"{len(jobs)} frame(s)")
        return EXIT_OK
    _log_input_colour(args, jobs, settings.plate)
    _prepare_output_folders({target.parent for _, target in jobs})
    for folder in {target.parent for _, target in jobs}:
        remove_stale_temps(folder, {target.name for _, target in jobs if target.parent == folder})

    from .backends import create_backend

    backend, note = create_backend(
        args.backend, model=args.model, keyer=args.keyer, threads=args.threads, precision=args.precision
    )
    log.info("gsrender: backend %s%s", backend.describe(), f" [auto: {note}]" if note else "")
    stop = threading.Event()
    _install_signal_handlers(stop)
    progress = ProgressPrinter(
        len(jobs), backend.name, fancy=sys.stderr.isatty() and not args.no_progress, quiet=args.quiet
    )
    times = StageTimes()
    start = time.perf_counter()
    try:
        reports = render_frames(jobs, backend, settings, progress.report, stop, times)
    except KeyboardInterrupt:
        progress.close()
        print(
            "gsrender: interrupted; complete frames kept, re-run with --skip-existing to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        backend.close()
    progress.close()
    code = _summarise(reports, time.perf_counter() - start, backend.name, jobs)
    if args.report:
        _write_report(Path(args.report), reports, jobs, backend.name, times, code)
    return code


def _summarise(reports: list[FrameReport], wall: float, backend: str, jobs: list) -> int:
    done = [r for r in reports if r.status == "rendered"]
    skipped = [r for r in reports if r.status == "skipped"]
    failed = [r for r in reports if r.status == "failed"]
    not_started = len(jobs) - len(reports)
    per_frame = wall / len(done) if done else 0.0
    print(
        f"gsrender summary: rendered={len(done)} skipped={len(skipped)} failed={len(failed)} "
        f"not_started={not_started} seconds_per_frame={per_frame:.3f} backend={backend}"
    )
    if done:
        outs = sorted({str(r.target.parent) for r in done})
        print("output: " + ", ".join(outs))
    if failed:
        codes = {r.error.exit_code for r in failed if r.error}
        if not done and not skipped and len(codes) == 1:
            return codes.pop()  # nothing could render: say why (3 bad input, 4 output)
        return EXIT_FRAMES_FAILED
    return EXIT_OK


def _write_report(
    path: Path, reports: list[FrameReport], jobs: list, backend: str, times: StageTimes, code: int
) -> None:
    """Machine-readable run report for farm tooling; written atomically."""
    import json

    data = {
        "backend": backend,
        "exit_code": code,
        "frames_total": len(jobs),
        "counts": {s: sum(r.status == s for r in reports) for s in ("rendered", "skipped", "failed")},
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in TOOL_VERBS:
            return _run_verb(argv[0], argv[1:])
        allocator.tune_for_frames()
        return render_main(argv)
    except GsRenderError as exc:
        print(f"gsrender: error: {exc.message}", file=sys.stderr)
        return exc.exit_code


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
