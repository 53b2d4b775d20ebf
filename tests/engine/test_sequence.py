from pathlib import Path

import pytest

from gsrender.engine.errors import InputError, UsageError
from gsrender.engine.sequence import (
    FrameRef,
    check_output_pattern,
    expand_sequence,
    frame_path,
    has_frame_token,
    parse_frame_range,
)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("5", [5]),
        ("1-5", [1, 2, 3, 4, 5]),
        ("1-10x3", [1, 4, 7, 10]),
        ("1-3,7-8", [1, 2, 3, 7, 8]),
        ("3-5, 1-4", [1, 2, 3, 4, 5]),  # overlapping, unsorted, spaces
        ("-3-1", [-3, -2, -1, 0, 1]),
        ("-10--8", [-10, -9, -8]),
        ("-2", [-2]),
        ("5-3", [3, 4, 5]),
        ("1001-1100x50", [1001, 1051]),
    ],
)
def test_parse_frame_range(spec, expected):
    assert parse_frame_range(spec) == expected


@pytest.mark.parametrize("spec", ["", "   ", "a-b", "1-", "1-10x0", "1-10x", "1..10", "1-10,", "1-2-3", "x2"])
def test_parse_frame_range_rejects(spec):
    with pytest.raises(UsageError) as err:
        parse_frame_range(spec)
    assert err.value.message.startswith(f"bad frame range '{spec}'")


def test_parse_frame_range_refuses_absurd_size():
    with pytest.raises(UsageError, match="more than"):
        parse_frame_range("1-100000000")


@pytest.mark.parametrize(
    "pattern, frame, expected",
    [
        ("plate.####.exr", 7, "plate.0007.exr"),
        ("plate.#.exr", 7, "plate.7.exr"),  # Nuke: one digit per '#'
        ("plate.#.exr", 1234, "plate.1234.exr"),
        ("plate.##.exr", 7, "plate.07.exr"),
        ("plate.%04d.exr", 42, "plate.0042.exr"),
        ("plate.%d.exr", 42, "plate.42.exr"),
        ("plate.@@@.exr", 5, "plate.005.exr"),
        ("plate.@.exr", 5, "plate.5.exr"),
        ("plate.####.exr", 123456, "plate.123456.exr"),  # wider numbers are not truncated
        ("plate.####.exr", -3, "plate.-003.exr"),
        ("dir.v2/sh_010_####_fg.png", 12, "dir.v2/sh_010_0012_fg.png"),
    ],
)
def test_frame_path(pattern, frame, expected):
    assert has_frame_token(pattern)
    assert frame_path(pattern, frame) == Path(expected)


@pytest.mark.parametrize("pattern", ["plate.exr", "plate.1001.exr", "shots/v002/plate.exr", "/abs/still.png"])
def test_no_token(pattern):
    assert not has_frame_token(pattern)
    with pytest.raises(UsageError, match="no frame token"):
        frame_path(pattern, 1)


def test_folders_are_taken_as_written(tmp_path):
    """A doubled separator from a script's path join, or a '#' or '@' in a folder name, neither
    hides the file name's token nor becomes one."""
    _touch(tmp_path, "p.0001.exr", "p.0002.exr")
    joined = f"{tmp_path}//p.####.exr"
    assert has_frame_token(joined) and frame_path(joined, 3) == tmp_path / "p.0003.exr"
    assert [r.frame for r in expand_sequence(joined)] == [1, 2]
    assert [r.path for r in expand_sequence(joined, [5])] == [tmp_path / "p.0005.exr"]
    odd = tmp_path / "take #2" / "v@1"
    odd.mkdir(parents=True)
    _touch(odd, "p.0007.exr", "still.exr")
    assert [r.frame for r in expand_sequence(str(odd / "p.%04d.exr"))] == [7]
    assert expand_sequence(str(odd / "still.exr")) == [FrameRef(None, odd / "still.exr")]


def _touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_bytes(b"x")


def test_expand_discovers_frames_on_disk(tmp_path):
    _touch(tmp_path, "p.0003.exr", "p.0001.exr", "p.0002.exr", "p.12345.exr", "p.-001.exr")
    # Wrong padding, other sequences and other extensions are not frames of this pattern.
    _touch(tmp_path, "p.00004.exr", "p.004.exr", "p.0005.png", "q.0006.exr", "p.0007.exr.tmp", "p.abcd.exr")
    (tmp_path / "p.0008.exr").mkdir()
    refs = expand_sequence(str(tmp_path / "p.####.exr"))
    assert [r.frame for r in refs] == [-1, 1, 2, 3, 12345]
    assert refs[1] == FrameRef(1, tmp_path / "p.0001.exr")
    assert all(r.path.exists() for r in refs)


@pytest.mark.parametrize("pattern", ["p.%04d.exr", "p.@@@@.exr"])
def test_expand_other_token_styles(tmp_path, pattern):
    _touch(tmp_path, "p.0010.exr", "p.0011.exr", "p.10.exr")
    assert [r.frame for r in expand_sequence(str(tmp_path / pattern))] == [10, 11]


def test_expand_single_hash_is_unpadded(tmp_path):
    _touch(tmp_path, "p.9.exr", "p.10.exr", "p.09.exr")
    assert [r.frame for r in expand_sequence(str(tmp_path / "p.#.exr"))] == [9, 10]


def test_expand_with_frames_does_not_check_disk(tmp_path):
    refs = expand_sequence(str(tmp_path / "p.####.exr"), [3, 1, 3])
    assert refs == [FrameRef(1, tmp_path / "p.0001.exr"), FrameRef(3, tmp_path / "p.0003.exr")]


def test_expand_nothing_found(tmp_path):
    _touch(tmp_path, "p.001.exr")
    with pytest.raises(InputError, match="no frames found matching this pattern"):
        expand_sequence(str(tmp_path / "p.####.exr"))
    with pytest.raises(InputError, match="no frames found"):
        expand_sequence(str(tmp_path / "missing_dir" / "p.####.exr"))


def test_expand_single_file(tmp_path):
    still = tmp_path / "still.1001.exr"
    assert expand_sequence(str(still)) == [FrameRef(None, still)]
    with pytest.raises(UsageError, match="frame token"):
        expand_sequence(str(still), [1, 2])


def test_check_output_pattern():
    check_output_pattern("out.####.exr", 10)
    check_output_pattern("out.exr", 1)
    with pytest.raises(UsageError, match="3 frames"):
        check_output_pattern("out.exr", 3)


def test_openjd_step_syntax_is_accepted():
    from gsrender.engine.sequence import parse_frame_range

    assert parse_frame_range("1-9:4") == [1, 5, 9]
