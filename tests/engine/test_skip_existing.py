"""--skip-existing skips only complete frames: one that is empty, truncated, of another size or
with other channels than this render writes is rendered again."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gsrender.cli.render import main
from gsrender.engine.image_io import read_frame
from gsrender.engine.image_write import write_frame


def run(*args: object) -> int:
    return main([str(a) for a in args])


def _damage(out: Path) -> None:
    (out / "k.1001.exr").write_bytes(b"")  # 0 bytes
    data = (out / "k.1002.exr").read_bytes()
    (out / "k.1002.exr").write_bytes(data[: len(data) // 2])  # truncated: the header still reads
    small = np.zeros((8, 8, 4), np.float32)
    write_frame(out / "k.1003.exr", small, ["R", "G", "B", "A"])  # another size
    info = read_frame(out / "k.1004.exr").info
    rgb = np.zeros((info.height, info.width, 3), np.float32)
    write_frame(out / "k.1004.exr", rgb, ["R", "G", "B"])  # no alpha: other channels


def test_broken_or_foreign_frames_are_rendered_again(plate_seq, tmp_path, capsys, caplog):
    src = plate_seq(frames=range(1001, 1006))
    out = tmp_path / "o"
    assert run(src / "plate.####.png", "-o", out / "k.####.exr") == 0
    good = out / "k.1005.exr"
    want = good.read_bytes()
    os.utime(good, (1_000_000, 1_000_000))
    _damage(out)
    capsys.readouterr()
    assert run(src / "plate.####.png", "-o", out / "k.####.exr", "--skip-existing", "--dry-run") == 0
    plan = capsys.readouterr().out
    assert plan.count("will be rendered again") == 4 and plan.count("exists, skip") == 1
    assert run(src / "plate.####.png", "-o", out / "k.####.exr", "--skip-existing") == 0
    captured = capsys.readouterr()
    assert "rendered=4 skipped=1" in captured.out
    assert caplog.text.count("existing frame rendered again") == 4
    assert good.stat().st_mtime == 1_000_000  # the complete frame was not touched
    for frame in range(1001, 1005):
        path = out / f"k.{frame}.exr"
        assert path.read_bytes() == want or read_frame(path).rgb.shape == read_frame(good).rgb.shape
        assert read_frame(path).info.channel_names == ["R", "G", "B", "A"]


def test_a_frame_written_in_the_display_window_is_complete(tmp_path, capsys):
    """PNG output of a plate with overscan is written at the display window: that size is expected."""
    from tests.conftest import make_plate

    plate = make_plate(40, 64)
    src = tmp_path / "p.0001.exr"
    write_frame(src, plate, ["R", "G", "B"])
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(src))
    spec = buf.spec()
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = 4, 4, 48, 30  # overscan cropped
    buf.set_full(4, 52, 4, 34, 0, 1)
    assert buf.write(str(tmp_path / "q.0001.exr"))
    out = tmp_path / "o"
    assert run(tmp_path / "q.####.exr", "-o", out / "k.####.png") == 0
    assert read_frame(out / "k.0001.png").rgb.shape[:2] == (30, 48)
    assert run(tmp_path / "q.####.exr", "-o", out / "k.####.png", "--skip-existing") == 0
    assert "rendered=0 skipped=1" in capsys.readouterr().out
