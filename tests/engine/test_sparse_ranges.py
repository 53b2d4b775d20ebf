"""A huge frame range over a short sequence (--on-error skip): the missing frames are found
once and reported as ranges, in one line, instead of failing one by one."""

from __future__ import annotations

import json

from gsrender.engine.cli import main
from gsrender.engine.sequence import describe_ranges, frame_ranges
from tests.conftest import error_lines


def run(*args: object) -> int:
    return main([str(a) for a in args])


def test_frame_ranges_and_their_one_line_description():
    assert frame_ranges([1, 2, 3, 7, 9, 10]) == [(1, 3), (7, 7), (9, 10)]
    assert frame_ranges([]) == []
    assert describe_ranges([1, 2, 3, 7]) == "1-3, 7"
    assert describe_ranges(list(range(0, 40, 2)), limit=3) == "0, 2, 4 and 17 more ranges"


def test_a_million_frame_range_over_five_frames_reports_the_gap_once(plate_seq, tmp_path, capsys):
    src = plate_seq("plate.{:07d}.png", frames=[1, 2, 3, 500, 600])
    report = tmp_path / "r.json"
    rc = run(src / "plate.#######.png", "-o", tmp_path / "o" / "k.#######.exr", "-F", "1-1000000",
             "--on-error", "skip", "--report", report, "--no-progress")  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 1
    (line,) = error_lines(captured.err)
    assert "999995 input frames missing" in line and "frames 4-499, 501-599, 601-1000000:" in line
    assert "rendered=5 skipped=0 failed=999995 not_started=0" in captured.out
    data = json.loads(report.read_text())
    assert data["counts"] == {"rendered": 5, "skipped": 0, "failed": 999995}
    assert data["frames_total"] == 1000000 and data["exit_code"] == 1
    assert data["missing_frames"] == [[4, 499], [501, 599], [601, 1000000]]
    listed = data["frames"]  # the first 1000 missing frames one by one, all of them as ranges
    assert len(listed) == 1005 and [f["frame"] for f in listed[:5]] == [1, 2, 3, 4, 5]
    assert listed[3]["status"] == "failed" and "file not found" in listed[3]["error"]


def test_when_no_frame_of_the_range_exists_nothing_is_rendered(plate_seq, tmp_path, capsys):
    src = plate_seq()
    rc = run(src / "plate.####.png", "-o", tmp_path / "o" / "k.####.exr", "-F", "1-500", "--on-error", "skip")
    assert rc == 3
    (line,) = error_lines(capsys.readouterr().err)
    assert "no input frame exists" in line and "500 input frames missing" in line and "1-500" in line


def test_fail_mode_still_stops_at_the_first_missing_frame(plate_seq, tmp_path, capsys):
    src = plate_seq()
    rc = run(src / "plate.####.png", "-o", tmp_path / "o" / "k.####.exr", "-F", "1001-1010")
    assert rc == 1
    (line,) = error_lines(capsys.readouterr().err)
    assert "frame 1004" in line and "file not found" in line
