"""Bad input and farm failure modes: one clear line, the right exit code, nothing lost."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gsrender.cli.render import main
from gsrender.engine.image_write import write_frame
from tests.conftest import assert_one_line, make_plate, write_plate


def run(*args: object) -> int:
    return main([str(a) for a in args])


def errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "error" in line]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_INPUTS = {
    "missing": (lambda p: p.unlink(), "file not found"),
    "truncated": (_truncate, ""),
    "empty": (lambda p: p.write_bytes(b""), ""),
    "grayscale": (lambda p: write_frame(p, make_plate()[..., :1], ["Y"], None), "grayscale"),
    "two_channel": (lambda p: write_frame(p, make_plate()[..., :2], ["Y", "A"], None), "2 channel"),
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_frame_is_named_and_the_rest_render_with_skip(plate_seq, tmp_path, capsys, kind):
    src = plate_seq()
    make_bad, words = BAD_INPUTS[kind]
    make_bad(src / "plate.1002.png")
    rc = run(
        src / "plate.####.png", "-o", tmp_path / "o" / "k.####.exr", "-F", "1001-1003", "--on-error", "skip"
    )
    assert rc == 1
    lines = errors(capsys)
    assert len(lines) == 1, lines
    assert "plate.1002.png" in lines[0] and "frame 1002" in lines[0] and words in lines[0]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["k.1001.exr", "k.1003.exr"]


def test_nan_pixels_are_reported(tmp_path, capsys):
    plate = make_plate()
    plate[3, 4, 1] = np.nan
    plate[5, 6, 0] = np.inf
    write_frame(tmp_path / "n.exr", plate, ["R", "G", "B"], None, dtype="float")
    assert run(tmp_path / "n.exr", "-o", tmp_path / "k.exr") == 3
    (line,) = errors(capsys)
    assert "n.exr" in line and "NaN or Inf" in line
    assert not (tmp_path / "k.exr").exists()


def test_fail_mode_stops_and_keeps_good_frames(plate_seq, tmp_path, capsys):
    src = plate_seq(frames=range(1, 9))
    (src / "plate.0003.png").unlink()
    rc = run(src / "plate.####.png", "-o", tmp_path / "o" / "k.####.exr", "-F", "1-8")
    assert rc == 1
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert "k.0003.exr" not in names and names[:2] == ["k.0001.exr", "k.0002.exr"]
    assert len(names) < 7  # stopped taking new frames
    out = capsys.readouterr().out
    assert "failed=1" in out and "not_started=" in out


def test_bad_input_never_replaces_a_good_output_frame(tmp_path):
    src = write_plate(tmp_path / "p.png", make_plate())
    out = tmp_path / "k.exr"
    assert run(src, "-o", out) == 0
    good = out.read_bytes()
    _truncate(src)
    assert run(src, "-o", out) == 3
    assert out.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_unusable_output_folder(tmp_path, capsys):
    src = write_plate(tmp_path / "p.png", make_plate())
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert run(src, "-o", blocker / "k.exr") == 4
    (line,) = errors(capsys)
    assert str(blocker) in line and "output folder" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_output_folder(tmp_path, capsys):
    src = write_plate(tmp_path / "p.png", make_plate())
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    assert run(src, "-o", ro / "k.exr") == 4


def test_usage_errors(plate_seq, tmp_path, capsys):
    src = plate_seq()
    assert run(src / "plate.####.png", "-o", tmp_path / "k.exr") == 2  # many frames, one output name
    assert run(src / "plate.####.png", "-o", tmp_path / "k.####.jpg") == 2  # no alpha in JPEG
    assert run(src / "plate.####.png", "-o", tmp_path / "k.####.png", "--layers", "fg") == 2
    assert run(src / "plate.####.png", "-F", "5-x") == 2
    assert run(src / "plate.####.png", "-o", tmp_path / "k.####.exr", "--compression", "zipp") == 2
    assert not list(tmp_path.glob("k.*"))  # refused before anything rendered
    assert run(src / "plate.1001.png", "-o", src / "plate.1001.png") == 2  # would overwrite the input
    assert run(tmp_path / "nothing.####.exr") == 3
    assert run(src / "plate.####.png", "--model", tmp_path / "missing.onnx") == 5
    for line in errors(capsys):
        assert line.startswith("gsrender: error: ") and "\n" not in line


@pytest.mark.parametrize("option", ["--tile", "--threads", "--io-threads"])
def test_negative_or_non_numeric_counts_are_refused(plate_seq, tmp_path, capsys, option):
    src = plate_seq()
    for value, words in (("-2", "must be 0 (auto) or more, got -2"), ("two", "want a whole number")):
        with pytest.raises(SystemExit) as exc:
            run(src / "plate.####.png", "-o", tmp_path / "k.####.exr", option, value)
        assert exc.value.code == 2
        assert f"argument {option}: {words}" in capsys.readouterr().err
    assert not list(tmp_path.glob("k.*"))


@pytest.mark.parametrize("io_threads", ["1", "3"])
def test_sigterm_leaves_only_complete_frames(plate_seq, tmp_path, io_threads):
    src = plate_seq(frames=range(1, 41), size=(180, 260))
    out = tmp_path / "o"
    cmd = [
        sys.executable,
        "-m",
        "gsrender.cli",
        str(src / "plate.####.png"),
        "-o",
        str(out / "k.####.exr"),
        "--io-threads",
        io_threads,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and any(out.glob("k.*.exr"))):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not [p for p in out.iterdir() if not p.name.startswith("k.")]  # no temp files
    done = sorted(out.glob("k.*.exr"))
    assert 0 < len(done) < 40
    from gsrender.engine.image_io import read_frame

    for p in done:
        read_frame(p)  # every frame on disk is complete
    # resume completes the rest
    assert run(src / "plate.####.png", "-o", out / "k.####.exr", "--skip-existing") == 0
    assert len(list(out.glob("k.*.exr"))) == 40


def test_stale_temp_files_of_killed_writers_are_removed(tmp_path):
    src = write_plate(tmp_path / "p.png", make_plate())
    out = tmp_path / "o"
    out.mkdir()
    stale = out / ".k.exr.tmp-123-abcd.exr"
    fresh = out / ".k.exr.tmp-456-ef01.exr"
    other = out / ".notes.txt.tmp-1-2.txt"
    for p in (stale, fresh, other):
        p.write_bytes(b"partial")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert run(src, "-o", out / "k.exr") == 0
    assert not stale.exists() and fresh.exists() and other.exists()


def test_a_closed_stdout_never_hides_a_later_frames_error(tmp_path):
    """`gsrender ... | head -1`: the progress lines' reader is gone after the first line; frame
    1015's error line must still reach stderr (it was silenced with stdout)."""
    for f in range(1001, 1021):
        if f != 1015:
            write_plate(tmp_path / "in" / f"plate.{f}.png", make_plate(24, 32, seed=f))
    err_file = tmp_path / "err.txt"
    cmd = (
        f"{shlex.quote(sys.executable)} -m gsrender.cli {tmp_path}/in/plate.####.png -F 1001-1020 "
        f"-o {tmp_path}/out/k.####.png --keyer classic --on-error skip 2>{err_file} | head -1; "
        "echo ${PIPESTATUS[0]}"
    )
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    first, code = proc.stdout.splitlines()
    assert first.startswith("frame 1001 rendered") and code == "1", proc.stdout
    err = err_file.read_text()
    assert_one_line(err, "frame 1015", "file not found")
    assert len(list((tmp_path / "out").glob("k.*.png"))) == 19


@pytest.mark.parametrize(
    "inp, out, extra, code",
    [
        ("plate.1001.png", "loop/k.png", [], 4),  # single frame into a looping folder
        ("plate.####.png", "loop/k.####.png", ["-F", "1001-1002"], 4),  # a sequence
        ("plate.1001.png", "ok/k.png", ["--report", "loop/r.json"], 4),  # the report
        ("loop/plate.png", "ok/k.png", [], 3),  # an input
    ],
)
def test_a_symlink_loop_is_one_line_not_an_internal_error(tmp_path, capsys, inp, out, extra, code):
    """Python's Path.resolve() raises RuntimeError on a symlink loop: that ended the run as an
    internal error (exit 70). A loop on an output is now exit 4, on an input 3."""
    for f in (1001, 1002):
        write_plate(tmp_path / f"plate.{f}.png", make_plate(24, 32, seed=f))
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    args = [str(tmp_path / inp), "-o", str(tmp_path / out), "--keyer", "classic", "-q"]
    args += [str(tmp_path / a) if a.startswith("loop/") else a for a in extra]
    assert main(args) == code
    assert_one_line(capsys.readouterr().err, "loop", "a loop of symbolic links")


def test_an_existing_read_only_output_frame_is_refused_with_exit_4(tmp_path, capsys):
    """A frame someone made read-only (chmod a-w: approved, locked) is never replaced; the
    other frames render, the run exits 4 naming it. The rename of an atomic write would
    replace it silently (exit 0), for root and for its owner alike."""
    for f in (1001, 1002, 1003):
        write_plate(tmp_path / "in" / f"plate.{f}.png", make_plate(24, 32, seed=f))
    out = tmp_path / "out"
    out.mkdir()
    locked = out / "k.1002.png"
    locked.write_bytes(b"approved frame")
    locked.chmod(0o444)
    args = [str(tmp_path / "in" / "plate.####.png"), "-o", str(out / "k.####.png"), "--keyer", "classic"]
    args += ["-q", "--on-error", "skip"]
    assert main(args) == 4
    assert_one_line(capsys.readouterr().err, "frame 1002", "k.1002.png", "read-only")
    assert locked.read_bytes() == b"approved frame"
    assert (out / "k.1001.png").is_file() and (out / "k.1003.png").is_file()
    # --skip-existing renders a broken existing frame again, and a read-only one cannot be: exit 4
    assert main([*args, "--skip-existing"]) == 4
    assert_one_line(capsys.readouterr().err, "frame 1002", "k.1002.png", "read-only")
    assert locked.read_bytes() == b"approved frame"
    locked.chmod(0o644)
    locked.unlink()
    assert main(args) == 0
    approved = locked.read_bytes()
    locked.chmod(0o444)
    assert main([*args, "--skip-existing"]) == 0  # a complete read-only frame is skipped, not written
    assert locked.read_bytes() == approved
    report = tmp_path / "r.json"
    report.write_text("{}")
    report.chmod(0o444)
    assert main([*args, "--skip-existing", "--report", str(report)]) == 4  # refused before rendering
    assert_one_line(capsys.readouterr().err, "r.json", "read-only")
    assert report.read_text() == "{}"
