"""How a render ends: one exit code for the run, the summary line, the JSON report (--report).

Output failures (disk, permission, I/O) win over bad input, so a scheduler retries a chunk
that hit a full disk once it is freed; README.md and docs/farm.md document the codes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gsrender.engine.atomic_files import atomic_write_text
from gsrender.engine.errors import (
    EXIT_FRAMES_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUT,
    GsRenderError,
    InputError,
)
from gsrender.engine.output_check import problem_of
from gsrender.engine.render import (
    FrameReport,
    FrameStatus,
    StageTimes,
)
from gsrender.engine.sequence import (
    FramePlan,
    frame_ranges,
)


def exit_code(
    reports: list[FrameReport], fatal: GsRenderError | None, interrupted: bool, missing: int = 0
) -> int:
    """One code for the run: interrupted, then a fatal error, then the worst frame failure.

    Output failures (disk, permission, I/O) win over bad input, so a scheduler retries a chunk
    that hit a full disk once it is freed; a bug (70) wins over bad input too.
    """
    if interrupted:
        return EXIT_INTERRUPTED
    if fatal is not None:
        return fatal.exit_code
    failed = [r for r in reports if r.status == FrameStatus.FAILED]
    if not failed and not missing:
        return EXIT_OK
    codes = {r.error.exit_code if r.error else EXIT_FRAMES_FAILED for r in failed}
    if missing:
        codes.add(InputError.exit_code)  # a missing input frame is bad input (3)
    for worst in (EXIT_OUTPUT, EXIT_INTERNAL):
        if worst in codes:
            return worst
    if not any(r.status in (FrameStatus.RENDERED, FrameStatus.SKIPPED) for r in reports) and len(codes) == 1:
        return codes.pop()  # nothing could render: say why (3 bad input)
    return EXIT_FRAMES_FAILED


def summarise(reports: list[FrameReport], wall: float, backend: str, jobs: list, missing: int = 0) -> None:
    """The summary line; ``missing`` input frames (dropped from the plan) count as failed."""
    done = [r for r in reports if r.status == FrameStatus.RENDERED]
    skipped = [r for r in reports if r.status == FrameStatus.SKIPPED]
    failed = sum(r.status == FrameStatus.FAILED for r in reports) + missing
    not_started = len(jobs) - len(reports)
    per_frame = wall / len(done) if done else 0.0
    print(
        f"gsrender summary: rendered={len(done)} skipped={len(skipped)} failed={failed} "
        f"not_started={not_started} seconds_per_frame={per_frame:.3f} backend={backend}",
        flush=True,
    )
    if done:
        outs = sorted({str(r.target.parent) for r in done})
        print("output: " + ", ".join(outs), flush=True)


MAX_LISTED_MISSING = 1000  # missing input frames listed one by one in --report; all are in its ranges


def _missing_report(jobs: FramePlan | list, frame: int) -> FrameReport:
    ref, target = jobs.pair(frame)  # type: ignore[union-attr] - only plans have missing frames
    missing = InputError(ref.path, "file not found")
    return FrameReport(frame, ref.path, target, FrameStatus.FAILED, error=missing)


def write_report(
    path: Path,
    reports: list[FrameReport],
    jobs: list,
    backend: str,
    times: StageTimes,
    code: int,
    fatal: GsRenderError | None = None,
    missing: list[int] | None = None,
) -> int:
    """Machine-readable run report for farm tooling; written atomically. Returns the exit code,
    4 when the report itself cannot be written (and the run had nothing worse to say).
    Missing input frames (--on-error skip) are listed as ranges, not one entry each."""
    import json

    missing = missing or []
    listed = [_missing_report(jobs, f) for f in missing[:MAX_LISTED_MISSING]]
    counts = {s.value: sum(r.status == s for r in reports) for s in FrameStatus}
    counts[FrameStatus.FAILED.value] += len(missing)

    data = {
        "backend": backend,
        "exit_code": code,
        "error": fatal.message if fatal else None,
        "frames_total": len(jobs) + len(missing),
        "counts": counts,
        "missing_frames": [[a, b] for a, b in frame_ranges(missing)],
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
            for r in sorted([*reports, *listed], key=lambda r: r.frame or 0)
        ],
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        print(f"gsrender: error: {path}: cannot write the report: {problem_of(exc)}", file=sys.stderr)
        return code if code != EXIT_OK else EXIT_OUTPUT
    return code
