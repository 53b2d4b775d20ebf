"""One rule for every run: no file it writes may be a file it reads.

A run reads plate frames, mattes, a clean plate and a model, and writes output frames and a
report. Writing any of them over any input destroys it (a garbage matte turned into JSON, a
clean plate replaced by keyed output) and the next run keys with the damage. Files are the
same when their resolved paths are (symlinks followed, in folders and in names) or when
both exist and are one file (same device and inode: hard links too). Checked once, before
anything is written, by listing each folder once: a sequence of any length costs a set
intersection, not a stat per frame.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError


@dataclass(frozen=True)
class FileSet:
    """Files of one role in one folder: ``role`` names them in messages (an option, or "input frame")."""

    role: str
    folder: Path
    names: set[str] | frozenset[str]
    many: bool = False  # one file per frame (a sequence), not one file for the run
    resolved: Path = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "resolved", _resolve(self.folder))


def single(role: str, path: str | os.PathLike) -> FileSet:
    """One file of the run (a still matte, the model, the report)."""
    path = Path(path)
    return FileSet(role, path.parent, frozenset({path.name}))


def files(role: str, paths: Iterable[str | os.PathLike]) -> list[FileSet]:
    """Several files, grouped by folder."""
    by_folder: dict[Path, set[str]] = {}
    for p in map(Path, paths):
        by_folder.setdefault(p.parent, set()).add(p.name)
    return [FileSet(role, folder, names, many=True) for folder, names in by_folder.items()]


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: compared as written
        return Path(os.path.abspath(path))


def _listed(fileset: FileSet) -> list[os.DirEntry]:
    """The set's files that exist, from one listing of its folder."""
    try:
        with os.scandir(fileset.folder) as entries:
            return [e for e in entries if e.name in fileset.names]
    except OSError:  # a missing or unreadable folder holds nothing to overwrite; its users say why
        return []


def _identity(entry: os.DirEntry) -> tuple[int, int] | None:
    try:
        st = entry.stat()  # follows a symlink to the file it names
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _message(writer: FileSet, reader: FileSet) -> str:
    article = "an" if reader.many and not writer.many and not reader.role.startswith("--") else "the"
    noun = reader.role if reader.many or reader.role.startswith("--") else f"{reader.role} file"
    name = "output" if writer.many else writer.role
    return f"{name} would overwrite {article} {noun}"


def check_no_overwrite(reads: list[FileSet], writes: list[FileSet]) -> None:
    """Refuse (exit 2, one line naming the file) when a written file is a read one, or two
    written sets share a file (a report over an output frame)."""
    # by resolved path: the same name in the same real folder, or a symlinked file's target
    named: dict[Path, list[tuple[FileSet, set[str] | frozenset[str]]]] = {}
    identities: dict[tuple[int, int], tuple[FileSet, str]] = {}
    for fs in reads:
        named.setdefault(fs.resolved, []).append((fs, fs.names))
        for entry in _listed(fs):
            ident = _identity(entry)
            if ident is not None:
                identities.setdefault(ident, (fs, entry.path))
            if entry.is_symlink():
                target = _resolve(Path(entry.path))
                named.setdefault(target.parent, []).append((fs, frozenset({target.name})))
    for i, fs in enumerate(writes):
        for reader, names in named.get(fs.resolved, []):
            clash = fs.names & names
            if clash:
                raise UsageError(fs.folder / min(clash), _message(fs, reader))
        for other in writes[i + 1 :]:
            clash = fs.names & other.names if fs.resolved == other.resolved else set()
            if clash:
                first, second = (fs, other) if not fs.many else (other, fs)
                raise UsageError(first.folder / min(clash), _message(first, second))
        for entry in _listed(fs):
            ident = _identity(entry)
            if ident in identities:
                reader, read_path = identities[ident]
                raise UsageError(entry.path, f"{_message(fs, reader)} ({read_path}: the same file)")
            if entry.is_symlink():
                target = _resolve(Path(entry.path))
                for reader, names in named.get(target.parent, []):
                    if target.name in names:
                        raise UsageError(entry.path, _message(fs, reader))
