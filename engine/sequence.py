"""Frame sequences: frame-range specs, frame tokens in paths and discovery on disk.

Token styles (the width is the zero-padding; wider frame numbers are never truncated):
  ``####`` Nuke style, one digit per ``#`` (``#`` alone is 1 digit, not 4 as in old Shake);
  ``@@@@`` Houdini/Shake style, one digit per ``@``;
  ``%04d`` / ``%d`` printf style; ``$F4`` Houdini style (accepted because fileseq parses it).
Only the file name carries a token; folders are taken literally.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import fileseq

from .errors import InputError, UsageError

# A range that expands to more frames than this is almost certainly a typo ("1-10000000").
MAX_FRAMES = 1_000_000

_RANGE_PART = re.compile(r"^(-?\d+)(?:-(-?\d+)(?:[x:](\d+))?)?$")  # 1-100x2, or OpenJD 1-100:2


@dataclass(frozen=True)
class FrameRef:
    """One frame to process: its number (None for a single still file) and its input path."""

    frame: int | None
    path: Path


def parse_frame_range(spec: str) -> list[int]:
    """Parse "1-100", "1-100x2", "1-10,20-30", "5" or "-5-5" into sorted unique frames.

    Descending ranges ("10-1") are accepted: the frames are sorted anyway.
    """
    text = (spec or "").strip()
    if not text:
        raise UsageError(None, f"bad frame range '{spec}': it is empty")
    frames: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        m = _RANGE_PART.match(part)
        if not m:
            raise UsageError(
                None, f"bad frame range '{spec}': '{part}' is not N, A-B or A-BxSTEP (e.g. 1-100x2)"
            )
        start = int(m.group(1))
        end = start if m.group(2) is None else int(m.group(2))
        step = 1 if m.group(3) is None else int(m.group(3))
        if step < 1:
            raise UsageError(None, f"bad frame range '{spec}': the step in '{part}' must be 1 or more")
        lo, hi = min(start, end), max(start, end)
        if (hi - lo) // step + 1 + len(frames) > MAX_FRAMES:
            raise UsageError(None, f"bad frame range '{spec}': more than {MAX_FRAMES} frames")
        # A descending range counts down from its first frame, so the step stays anchored there.
        frames.update(range(start, end + 1, step) if start <= end else range(start, end - 1, -step))
    return sorted(frames)


@dataclass(frozen=True)
class _Token:
    head: str  # folder + file-name prefix, e.g. "shots/plate."
    tail: str  # everything after the token, e.g. ".exr"
    width: int  # zero-padding width


def _parse_token(pattern: str) -> _Token | None:
    """Split a pattern around its frame token, or None when it has none.

    Only the file name is parsed: the folder is kept as written, so a doubled separator from a
    script's path join ("shots//plate.####.exr") or a '#' in a folder name changes nothing.
    """
    name = os.path.basename(pattern)
    folder = pattern[: len(pattern) - len(name)]
    try:
        seq = fileseq.FileSequence(name, pad_style=fileseq.PAD_STYLE_HASH1)
    except fileseq.ParseException:
        return None
    # A literal number ("plate.1001.exr") parses as a frame range, not as a token.
    if not seq.padding() or seq.frameRange() or seq.dirname():
        return None
    return _Token(head=folder + seq.basename(), tail=seq.extension(), width=max(seq.zfill(), 1))


def _format(token: _Token, frame: int) -> str:
    return f"{token.head}{frame:0{token.width}d}{token.tail}"


def has_frame_token(pattern: str) -> bool:
    """True when the file name holds a frame token (``#``, ``@``, ``%04d``, ``$F4``)."""
    return _parse_token(str(pattern)) is not None


def frame_path(pattern: str, frame: int) -> Path:
    """The path of one frame: the token replaced by the zero-padded number.

    Negative frames keep the sign inside the width, as printf does (-3 with #### -> "-003").
    """
    token = _parse_token(str(pattern))
    if token is None:
        raise UsageError(str(pattern), "this path has no frame token (####, %04d or @@@@)")
    return Path(_format(token, frame))


def _frames_on_disk(token: _Token) -> list[int]:
    """Frames whose file exists with exactly the padding the pattern asks for."""
    folder, prefix = os.path.split(token.head)
    match = re.compile(re.escape(prefix) + r"(-?\d+)" + re.escape(token.tail) + r"$")
    try:
        entries = list(os.scandir(folder or "."))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise InputError(folder, f"cannot list folder: {exc.strerror or exc}") from None
    frames = []
    for entry in entries:
        m = match.match(entry.name)
        if not m:
            continue
        digits = m.group(1)
        frame = int(digits)
        # "plate.00007.exr" is not frame 7 of "plate.####.exr": it belongs to another sequence.
        if f"{frame:0{token.width}d}" == digits and entry.is_file():
            frames.append(frame)
    return sorted(frames)


def expand_sequence(pattern: str, frames: list[int] | None = None) -> list[FrameRef]:
    """Turn an input pattern into the frames to process.

    With a token and ``frames`` given, those frames are returned without checking the disk,
    so a missing frame is reported by the reader for that frame. With ``frames`` None the
    folder is scanned. A pattern without a token is a single still file.
    """
    pattern = str(pattern)
    token = _parse_token(pattern)
    if token is None:
        if frames is not None:
            raise UsageError(pattern, "a frame range needs a frame token in the input path (####, %04d)")
        return [FrameRef(None, Path(pattern))]
    if frames is not None:
        return [FrameRef(f, Path(_format(token, f))) for f in sorted(set(frames))]
    found = _frames_on_disk(token)
    if not found:
        raise InputError(pattern, "no frames found matching this pattern")
    return [FrameRef(f, Path(_format(token, f))) for f in found]


class FramePlan(Sequence):
    """(input FrameRef, output Path) per frame of a sequence, made on access.

    Planning -F 1-200000 needs only the two folders and the file names; making 400,000 Path
    objects up front would cost seconds before the first frame. Iterating yields the pairs in
    frame order, as a list of them would. ``target`` is a plain file name when a single frame
    is written to one.
    """

    def __init__(self, frames: list[int], source: _Token, target: _Token | str) -> None:
        self.frames = frames
        self._source, self._target = source, target
        self.input_folder = Path(os.path.dirname(source.head) or ".")
        out_head = target.head if isinstance(target, _Token) else target
        self.output_folder = Path(os.path.dirname(out_head) or ".")

    def __len__(self) -> int:
        return len(self.frames)

    def _output(self, frame: int) -> str:
        return _format(self._target, frame) if isinstance(self._target, _Token) else self._target

    def pair(self, frame: int) -> tuple[FrameRef, Path]:
        """(input, output) of any frame number, in the plan or not."""
        return self._pair(frame)

    def _pair(self, frame: int) -> tuple[FrameRef, Path]:
        return FrameRef(frame, Path(_format(self._source, frame))), Path(self._output(frame))

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self._pair(f) for f in self.frames[index]]
        return self._pair(self.frames[index])

    def __iter__(self) -> Iterator[tuple[FrameRef, Path]]:
        return (self._pair(f) for f in self.frames)

    def _names(self, token: _Token | str) -> set[str]:
        return _names_of(token, self.frames)

    def missing(self) -> list[int]:
        """Frames whose input file is not on disk, from one listing of the input folder."""
        present = set(_frames_on_disk(self._source))
        return [f for f in self.frames if f not in present]

    def without(self, frames: list[int]) -> FramePlan:
        """The same plan less some frames."""
        drop = set(frames)
        return FramePlan([f for f in self.frames if f not in drop], self._source, self._target)

    def input_pattern(self) -> str:
        """The input path with its frame token, as written in reports (plate.####.exr)."""
        return f"{self._source.head}{'#' * self._source.width}{self._source.tail}"

    def input_names(self) -> set[str]:
        """File names of the input frames (no folder), as strings: cheap for any length."""
        return self._names(self._source)

    def output_names(self) -> set[str]:
        return self._names(self._target)


def _names_of(token: _Token | str, frames: list[int]) -> set[str]:
    if not isinstance(token, _Token):
        return {os.path.basename(token)}
    prefix, tail, width = os.path.basename(token.head), token.tail, token.width
    return {f"{prefix}{f:0{width}d}{tail}" for f in frames}


def pattern_files(pattern: str, frames: list[int]) -> tuple[Path, set[str]]:
    """(folder, file names) a pattern names for these frames; a path without a token names itself."""
    token = _parse_token(str(pattern))
    folder = os.path.dirname(token.head if token else str(pattern))
    return Path(folder or "."), _names_of(token or str(pattern), frames)


def plan_sequence(pattern: str, out_pattern: str, frames: list[int] | None) -> FramePlan | None:
    """The plan for a sequence, or None when ``pattern`` has no frame token (a still file).

    Each pattern is parsed once; ``frames`` None scans the disk, as expand_sequence does.
    """
    source = _parse_token(str(pattern))
    if source is None:
        return None
    if frames is None:
        frames = _frames_on_disk(source)
        if not frames:
            raise InputError(pattern, "no frames found matching this pattern")
    else:
        frames = sorted(set(frames))
    check_output_pattern(out_pattern, len(frames))
    return FramePlan(frames, source, _parse_token(str(out_pattern)) or str(out_pattern))


def check_output_pattern(out_pattern: str, n_frames: int) -> None:
    """Refuse an output path without a frame token when several frames would overwrite it."""
    if n_frames > 1 and not has_frame_token(out_pattern):
        raise UsageError(
            str(out_pattern),
            f"{n_frames} frames would all be written to this one file; add a frame token (e.g. ####)",
        )


def frame_ranges(frames: list[int]) -> list[tuple[int, int]]:
    """Sorted frames as (first, last) runs of consecutive numbers: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], f)
        else:
            runs.append((f, f))
    return runs


def describe_ranges(frames: list[int], limit: int = 8) -> str:
    """Frames as "1-3, 7" for one line: at most ``limit`` runs, then how many more."""
    runs = frame_ranges(frames)
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs[:limit])
    if len(runs) > limit:
        shown += f" and {len(runs) - limit} more ranges"
    return shown
