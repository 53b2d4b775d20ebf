"""No file a run writes (frames, report) may be a file it reads (plate frames, mattes, clean
plate, model): by name, through symlinks and through hard links, in the CLI, `gsrender job`
and the worker. Refused with exit 2 before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gsrender.engine import farm_job
from gsrender.engine.cli import main
from tests.conftest import assert_one_line, make_plate, write_plate


def run(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def shot(tmp_path: Path) -> Path:
    """A plate still, a roto matte and a clean plate of its size."""
    plate = make_plate()
    write_plate(tmp_path / "plate.png", plate)
    write_plate(tmp_path / "roto.png", plate)
    write_plate(tmp_path / "clean.png", plate)
    return tmp_path


def _refused(capsys, rc: int, *words: str) -> None:
    assert rc == 2
    assert_one_line(capsys.readouterr().err, *words)


def test_report_cannot_replace_a_matte(shot, capsys):
    before = (shot / "roto.png").read_bytes()
    rc = run(shot / "plate.png", "-o", shot / "k.exr", "--garbage-matte", shot / "roto.png",
             "--report", shot / "roto.png")  # fmt: skip
    _refused(capsys, rc, "roto.png", "--report would overwrite the --garbage-matte")
    assert (shot / "roto.png").read_bytes() == before and not (shot / "k.exr").exists()


def test_output_cannot_replace_the_clean_plate(shot, capsys):
    before = (shot / "clean.png").read_bytes()
    rc = run(shot / "plate.png", "-o", shot / "clean.png", "--clean-plate", shot / "clean.png")
    _refused(capsys, rc, "clean.png", "output would overwrite the --clean-plate")
    assert (shot / "clean.png").read_bytes() == before


def test_report_cannot_replace_the_model(shot, capsys, model_path):
    model = shot / "m.onnx"
    model.write_bytes(model_path.read_bytes())
    rc = run(shot / "plate.png", "-o", shot / "k.exr", "--model", model, "--report", model)
    _refused(capsys, rc, "m.onnx", "--report would overwrite the --model")
    assert model.read_bytes() == model_path.read_bytes()


def test_through_a_symlinked_name_and_a_symlinked_folder(shot, capsys):
    (shot / "link.png").symlink_to(shot / "roto.png")
    rc = run(shot / "plate.png", "-o", shot / "k.exr", "--core-matte", shot / "link.png",
             "--report", shot / "roto.png")  # fmt: skip
    _refused(capsys, rc, "--report would overwrite the --core-matte")
    (shot / "alias").symlink_to(shot, target_is_directory=True)
    rc = run(shot / "plate.png", "-o", shot / "alias" / "clean.png", "--clean-plate", shot / "clean.png")
    _refused(capsys, rc, "output would overwrite the --clean-plate")


def test_through_a_hard_link(shot, capsys):
    os.link(shot / "clean.png", shot / "k.png")  # the output's name is another name of the clean plate
    rc = run(shot / "plate.png", "-o", shot / "k.png", "--clean-plate", shot / "clean.png")
    _refused(capsys, rc, "k.png", "output would overwrite the --clean-plate", "the same file")


def test_sequences_of_mattes_against_output_frames(plate_seq, tmp_path, capsys):
    src = plate_seq()
    out = tmp_path / "o"
    out.mkdir()
    for f in (1001, 1002, 1003):
        write_plate(out / f"k.{f}.png", make_plate())
    rc = run(src / "plate.####.png", "-o", out / "k.####.png", "--garbage-matte", out / "k.####.png")
    _refused(capsys, rc, "output would overwrite the --garbage-matte")
    # a matte frame hard-linked to another frame's output name
    (tmp_path / "m").mkdir()
    os.link(out / "k.1002.png", tmp_path / "m" / "g.1002.png")
    rc = run(src / "plate.####.png", "-o", out / "k.####.exr",
             "--garbage-matte", tmp_path / "m" / "g.####.png", "--report", out / "k.1002.png")  # fmt: skip
    _refused(capsys, rc, "--report would overwrite the --garbage-matte", "the same file")


def test_gsrender_job_refuses_the_same(plate_seq, tmp_path, capsys):
    src = plate_seq()
    clean = tmp_path / "c"
    clean.mkdir()
    for f in (1001, 1002, 1003):
        write_plate(clean / f"c.{f}.png", make_plate())
    rc = farm_job.main([str(src / "plate.####.png"), "-o", str(clean / "c.####.png"),
                        "--clean-plate", str(clean / "c.####.png")])  # fmt: skip
    _refused(capsys, rc, "output would overwrite the --clean-plate")


def test_the_worker_never_writes_its_answer_into_the_model(tmp_path):
    from gsrender.ofx_bridge import protocol, worker
    from gsrender.ofx_bridge.protocol import Settings
    from tests.ofx_bridge.test_ofx_worker import render_request, shared

    with shared(8, 8, (0, 0, 8, 8)) as (name, _mm, out_off):
        model = worker.SHM_DIR / name.lstrip("/")
        w = worker.Worker(tmp_path / "w.sock", worker.WarmKeyer(), 0.0)
        request = render_request(name, 8, 8, (0, 0, 8, 8), out_off, Settings(model=str(model)))
        reply = w.handle({**request, "version": protocol.VERSION})
        assert reply["ok"] is False and "would overwrite the Model file" in reply["error"]


def test_gsrender_job_never_writes_its_side_files_over_inputs(plate_seq, tmp_path, capsys):
    src = plate_seq()
    roto = write_plate(tmp_path / "roto.png", make_plate())
    before = roto.read_bytes()
    base = [str(src / "plate.####.png"), "-o", str(tmp_path / "o" / "k.####.exr")]
    base += ["--garbage-matte", str(roto)]
    rc = farm_job.main([*base, "--params", str(roto)])
    _refused(capsys, rc, "--params would overwrite the --garbage-matte")
    assert roto.read_bytes() == before
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "template.yaml").symlink_to(src / "plate.1002.png")
    rc = farm_job.main([*base, "--bundle", str(tmp_path / "b")])
    _refused(capsys, rc, "--bundle would overwrite an input frame")
