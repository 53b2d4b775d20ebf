"""Output failures told apart by what the file system says."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from gsrender.engine import output_check
from gsrender.engine.errors import OutputError


def _statvfs(blocks: int, free: int):
    return lambda _folder: SimpleNamespace(f_blocks=blocks, f_bavail=free, f_frsize=4096)


def test_too_little_free_space_names_a_full_disk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(os, "statvfs", _statvfs(1000, 2))
    error = OutputError(tmp_path / "k.0001.exr", "could not write")
    found = output_check.classify_output_failure(error, tmp_path / "k.0001.exr", 1 << 20)
    assert found.problem == "no space left on device (could not write)"


def test_a_file_system_without_a_size_is_not_called_full(tmp_path: Path, monkeypatch) -> None:
    """procfs and some FUSE mounts report 0 blocks and 0 free: the writer's failure stands,
    unless the probe write itself fails."""
    monkeypatch.setattr(os, "statvfs", _statvfs(0, 0))
    error = OutputError(tmp_path / "k.0001.exr", "could not write")
    assert output_check.classify_output_failure(error, tmp_path / "k.0001.exr", 1 << 20) is error
    monkeypatch.setattr(output_check, "probe_write", lambda _folder: "permission denied")
    found = output_check.classify_output_failure(error, tmp_path / "k.0001.exr", 1 << 20)
    assert found.problem == "permission denied (could not write)"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs procfs")
def test_writing_into_procfs_is_not_a_full_disk() -> None:
    target = Path("/proc/k.0001.png")
    error = OutputError(target, 'Could not open file "/proc/k.0001.png"')
    found = output_check.classify_output_failure(error, target, 1 << 20)
    assert "no space left" not in found.problem


def test_a_file_written_at_the_end_is_checked_up_front(tmp_path: Path) -> None:
    from gsrender.engine.errors import UsageError

    with pytest.raises(UsageError, match="--csv names a folder; give a file name such as scores.csv"):
        output_check.check_written_file(tmp_path, "csv", "scores.csv")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="csv folder .*file.txt is not a folder"):
        output_check.check_written_file(blocker / "s.csv", "csv", "scores.csv")
    later = tmp_path / "not" / "yet" / "s.csv"  # made when the table is written
    assert output_check.check_written_file(later, "csv", "scores.csv") == later
