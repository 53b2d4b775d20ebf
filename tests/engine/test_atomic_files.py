"""One home for atomic writes and file hashes: a reader never sees half a file, no temp file stays."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from gsrender.engine.atomic_files import (
    atomic_write_bytes,
    atomic_write_text,
    file_sha256,
    remove_stale_temps,
    replacing,
    temp_path,
)


def test_write_text_and_bytes_replace_the_file_and_leave_no_temp(tmp_path: Path):
    target = tmp_path / "report.json"
    atomic_write_text(target, "first\n")
    atomic_write_text(target, "é second\n")
    assert target.read_text(encoding="utf-8") == "é second\n"
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "report.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path):
    target = tmp_path / "k.exr"
    target.write_bytes(b"good frame")
    with pytest.raises(RuntimeError), replacing(target) as tmp:
        tmp.write_bytes(b"half a fr")
        raise RuntimeError("the writer died")
    assert target.read_bytes() == b"good frame"
    assert [p.name for p in tmp_path.iterdir()] == ["k.exr"]


def test_a_missing_folder_is_an_oserror_and_leaves_nothing(tmp_path: Path):
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "missing" / "t.yaml", "x")
    assert list(tmp_path.iterdir()) == []


def test_temp_names_keep_the_suffix_and_are_what_remove_stale_temps_removes(tmp_path: Path):
    target = tmp_path / "k.1001.exr"
    a, b = temp_path(target), temp_path(target)
    assert a != b and a.parent == tmp_path and a.name.startswith(".k.1001.exr.tmp-") and a.suffix == ".exr"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(a, (old, old))  # a killed writer's, hours ago; b may still be written by another host
    (tmp_path / ".other.exr.tmp-1-ab.exr").write_bytes(b"x")  # not one of this run's outputs
    os.utime(tmp_path / ".other.exr.tmp-1-ab.exr", (old, old))
    assert remove_stale_temps(tmp_path, {"k.1001.exr"}) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([b.name, ".other.exr.tmp-1-ab.exr"])


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path: Path):
    data = os.urandom(3 << 20)  # more than one block
    (tmp_path / "m.onnx").write_bytes(data)
    assert file_sha256(tmp_path / "m.onnx") == hashlib.sha256(data).hexdigest()


def test_a_read_only_file_is_never_replaced(tmp_path):
    """Every atomic write (frames, reports, job templates, engines) refuses an existing file that
    is read-only, for root too: the rename would replace it whatever its mode."""
    from gsrender.engine.atomic_files import ReadOnlyFileError, atomic_write_text

    target = tmp_path / "template.yaml"
    target.write_text("locked\n")
    target.chmod(0o444)
    with pytest.raises(ReadOnlyFileError, match="read-only; refusing to replace it"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "locked\n"
    assert [p.name for p in tmp_path.iterdir()] == ["template.yaml"]  # no temp file either
    target.chmod(0o644)
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
