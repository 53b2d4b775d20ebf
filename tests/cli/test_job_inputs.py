"""`gsrender job` with compositor inputs: mattes and clean plate as PATH job parameters,
run for real under `openjd run` and compared with a plain gsrender run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from gsrender.cli.render import main as gsrender_main
from gsrender.engine.image_write import write_frame
from tests.cli.test_job import (
    OPTS,
    OUT,
    PATTERN,
    assert_same_frames,
    make_job,
    needs_cli,
    openjd_run,
    pixels,
    summaries,
)
from tests.conftest import make_plate, write_plate

pytest.importorskip("openjd.model")
FRAMES = range(1, 5)


@pytest.fixture
def matte_shot(tmp_path):
    """Four frames, a still garbage matte, a core matte sequence, and the plain render with both."""
    (tmp_path / "mattes").mkdir()
    for i, f in enumerate(FRAMES):
        write_plate(tmp_path / "in" / PATTERN.replace("####", f"{f:04d}"), make_plate(48, 64, seed=i))
        core = np.zeros((48, 64, 1), np.float32)
        core[20:30, 20 + 4 * i : 34 + 4 * i] = 1.0
        write_frame(tmp_path / "mattes" / f"core.{f:04d}.exr", core, ["Y"], None, dtype="float")
    garbage = np.ones((48, 64, 1), np.float32)
    garbage[:, 12:] = 0.0  # drawn the other way round: 1 on the subject side
    write_frame(tmp_path / "mattes" / "garbage.png", 1.0 - garbage, ["Y"], None)
    inputs = [
        "--garbage-matte",
        str(tmp_path / "mattes" / "garbage.png"),
        "--invert-garbage",
        "--core-matte",
        str(tmp_path / "mattes" / "core.####.exr"),
    ]
    ref = tmp_path / "ref"
    assert gsrender_main([str(tmp_path / "in" / PATTERN), "-o", str(ref / OUT), *OPTS, *inputs]) == 0
    return {"src": tmp_path / "in", "ref": ref, "inputs": inputs, "garbage": garbage[..., 0] == 1.0}


def test_inputs_are_path_parameters_of_the_template(matte_shot, tmp_path):
    template, params = make_job(tmp_path, matte_shot["src"], tmp_path / "o", *OPTS, *matte_shot["inputs"])
    doc = yaml.safe_load(template.read_text())
    kinds = {p["name"]: p["type"] for p in doc["parameterDefinitions"]}
    assert kinds["GarbageMatte"] == "PATH" and kinds["CoreMatte"] == "PATH" and "CleanPlate" not in kinds
    args = doc["steps"][-1]["script"]["actions"]["onRun"]["args"]
    assert "--garbage-matte={{Param.GarbageMatte}}" in args and "--core-matte={{Param.CoreMatte}}" in args
    assert "--invert-garbage" in args
    values = json.loads(params.read_text())
    assert values["CoreMatte"] == str(tmp_path / "mattes" / "core.####.exr")  # absolute, token kept


def test_a_missing_matte_fails_when_the_job_is_made(matte_shot, tmp_path, capsys):
    from gsrender.cli import job as farm_job

    rc = farm_job.main([str(matte_shot["src"] / PATTERN), "--garbage-matte", str(tmp_path / "none.png")])
    assert rc == 3
    assert "none.png: --garbage-matte: file not found" in capsys.readouterr().err


@needs_cli
def test_openjd_run_with_mattes_matches_a_plain_run(matte_shot, tmp_path):
    out = tmp_path / "o"
    template, params = make_job(
        tmp_path, matte_shot["src"], out, *OPTS, *matte_shot["inputs"], "--chunk", "2"
    )
    run = openjd_run(template, params)
    log = run.stdout + run.stderr
    assert run.returncode == 0 and "Session ended successfully" in log, log[-3000:]
    assert sum(r for r, _, _ in summaries(log)) == len(FRAMES)
    assert_same_frames(out, matte_shot["ref"], FRAMES)
    for f in FRAMES:
        rgba = pixels(out / OUT.replace("####", f"{f:04d}"))
        assert np.all(rgba[matte_shot["garbage"]] == 0.0)
