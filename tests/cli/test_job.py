"""`gsrender job`: the Open Job Description template validates, runs for real with `openjd run`,
and its tasks are safe to retry, kill and overlap. Outputs are compared with plain gsrender runs."""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import yaml

from gsrender.cli import job as farm_job
from gsrender.cli.job import host as farm_host
from gsrender.cli.job import template as farm_template
from gsrender.cli.render import main as gsrender_main
from tests.conftest import make_plate, write_plate

openjd_model = pytest.importorskip("openjd.model")

BIN = Path(sys.executable).parent
OPENJD = shutil.which("openjd", path=str(BIN)) or shutil.which("openjd")
GSRENDER = shutil.which("gsrender", path=str(BIN)) or shutil.which("gsrender")
needs_cli = pytest.mark.skipif(not (OPENJD and GSRENDER), reason="openjd-cli and the gsrender script needed")

PATTERN = "plate.####.png"
OUT = "k.####.exr"
OPTS = ["--threads", "1", "--despill", "0.8", "-q"]  # one thread: the machine is shared, results are exact
LONG = 64  # frames of the sequence that tasks are stopped in
SUMMARY = re.compile(r"gsrender summary: rendered=(\d+) skipped=(\d+) failed=(\d+)")


def pixels(path: Path) -> np.ndarray:
    """Every channel of a frame, as stored."""
    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    try:
        return np.asarray(inp.read_image(0, 0, 0, inp.spec().nchannels, "float"))
    finally:
        inp.close()


def assert_same_frames(got: Path, want: Path, frames: range) -> None:
    assert sorted(p.name for p in got.glob("k.*.exr")) == sorted(p.name for p in want.glob("k.*.exr"))
    for f in frames:
        name = OUT.replace("####", f"{f:04d}")
        np.testing.assert_array_equal(pixels(got / name), pixels(want / name), err_msg=name)


def summaries(text: str) -> list[tuple[int, int, int]]:
    return [tuple(int(x) for x in m.groups()) for m in SUMMARY.finditer(text)]  # type: ignore[misc]


def make_job(tmp: Path, src: Path, out: Path, *extra: str, name: str = "job") -> tuple[Path, Path]:
    """Write template + parameter values with `gsrender job` (in-process); returns both paths."""
    template, params = tmp / f"{name}.yaml", tmp / f"{name}.params.json"
    args = [str(src / PATTERN), "-o", str(out / OUT), "--executable", str(GSRENDER), "--params", str(params)]
    with open(template, "w") as fh:
        real = sys.stdout
        sys.stdout = fh
        try:
            rc = farm_job.main([*args, *extra])
        finally:
            sys.stdout = real
    assert rc == 0
    return template, params


def openjd_run(template: Path, params: Path, *extra: str) -> subprocess.CompletedProcess:
    # Hide GPUs so that the engine-build guard takes its CPU-host path on any test machine.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    cmd = [str(OPENJD), "run", str(template), "-p", f"file://{params}", "--step", "Render", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def task_command(template: Path, params: Path, chunk: str) -> list[str]:
    """The Render task's command for one chunk, format strings filled in as a scheduler would."""
    values = {f"Param.{k}": str(v) for k, v in json.loads(params.read_text()).items()}
    values["Task.Param.Frame"] = chunk
    action = yaml.safe_load(template.read_text())["steps"][-1]["script"]["actions"]["onRun"]

    def fill(text: str) -> str:
        return re.sub(r"\{\{\s*([\w.]+)\s*\}\}", lambda m: values[m.group(1)], text)

    return [fill(action["command"]), *map(fill, action["args"])]


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> dict[str, Path]:
    """Six small frames and their plain `gsrender` render, the reference for every farm run."""
    root = tmp_path_factory.mktemp("farm")
    for i, f in enumerate(range(1, 7)):
        write_plate(root / "in" / PATTERN.replace("####", f"{f:04d}"), make_plate(48, 64, seed=i))
    assert gsrender_main([str(root / "in" / PATTERN), "-o", str(root / "ref" / OUT), *OPTS]) == 0
    return {"root": root, "src": root / "in", "ref": root / "ref"}


# ---------------------------------------------------------------- the template


def test_template_validates_and_passes_render_options_through(shot, tmp_path):
    out = tmp_path / "o"
    template, params = make_job(
        tmp_path,
        shot["src"],
        out,
        *OPTS,
        "--screen-color",
        "0.1,0.4,0.1",
        "--chunk",
        "4",
        "--bundle",
        str(tmp_path / "bundle"),
    )
    doc = yaml.safe_load(template.read_text())
    job = openjd_model.decode_job_template(template=doc, supported_extensions=["TASK_CHUNKING"])
    assert job.specificationVersion == "jobtemplate-2023-09"
    assert doc["extensions"] == ["TASK_CHUNKING"]
    assert [s["name"] for s in doc["steps"]] == ["BuildEngine", "Render"]
    render = doc["steps"][1]
    assert render["dependencies"] == [{"dependsOn": "BuildEngine"}]
    (task,) = render["parameterSpace"]["taskParameterDefinitions"]
    assert task["type"] == "CHUNK[INT]" and task["chunks"]["rangeConstraint"] == "CONTIGUOUS"
    args = render["script"]["actions"]["onRun"]["args"]
    for token in (
        "--skip-existing",
        "--threads=1",
        "--despill=0.8",
        "--quiet",
        "--screen-colour=0.1,0.4,0.1",
    ):
        assert token in args
    assert args[-2:] == ["--frames", "{{Task.Param.Frame}}"]
    assert render["script"]["actions"]["onRun"]["cancelation"]["mode"] == "NOTIFY_THEN_TERMINATE"
    values = json.loads(params.read_text())
    assert values["InputDir"] == str(shot["src"]) and values["OutputDir"] == str(out)
    assert values["Frames"] == "1-6" and values["ChunkSize"] == 4
    # no absolute path is baked into the template: a submitter can point it at any shot
    assert str(shot["src"]) not in template.read_text()
    bundle = yaml.safe_load((tmp_path / "bundle" / "parameter_values.yaml").read_text())
    assert {"name": "OutputDir", "value": str(out)} in bundle["parameterValues"]
    assert yaml.safe_load((tmp_path / "bundle" / "template.yaml").read_text()) == doc


def test_template_variants(shot, tmp_path):
    out = str(tmp_path / "o")
    trt, _ = make_job(
        tmp_path, shot["src"], Path(out), "--backend", "tensorrt", "--no-task-chunking", name="trt"
    )
    doc = yaml.safe_load(trt.read_text())
    openjd_model.decode_job_template(template=doc)  # no extension needed
    build, render = doc["steps"]
    gpu = {"amounts": [{"name": "amount.worker.gpu", "min": 1}]}
    assert build["hostRequirements"] == gpu and render["hostRequirements"] == gpu
    assert "--required" in build["script"]["actions"]["onRun"]["args"]
    (task,) = render["parameterSpace"]["taskParameterDefinitions"]
    assert task["type"] == "INT" and "extensions" not in doc
    cached, _ = make_job(tmp_path, shot["src"], Path(out), "--engine-cache", "/farm/engines", name="cached")
    envs = yaml.safe_load(cached.read_text())["jobEnvironments"]  # the build and the render share it
    assert envs == [{"name": "GsRenderEngineCache", "variables": {"GSRENDER_ENGINE_CACHE": "/farm/engines"}}]
    classic, _ = make_job(tmp_path, shot["src"], Path(out), "--keyer", "classic", name="classic")
    assert [s["name"] for s in yaml.safe_load(classic.read_text())["steps"]] == ["Render"]


@pytest.mark.parametrize(
    "extra",
    [
        ["--chunk", "0"],
        ["--dry-run"],
        ["--no-task-chunking", "-F", "1-2,5-6"],
        ["--screen-colour", "{{Param.X}}"],
        ["--layers", "fg"],  # PNG cannot hold layers: caught by the local dry run, not on the farm
    ],
)
def test_usage_errors_are_caught_before_submitting(shot, tmp_path, capsys, extra):
    args = [str(shot["src"] / PATTERN), "-o", str(tmp_path / "k.####.png"), *extra]
    assert farm_job.main(args) == 2
    assert capsys.readouterr().err.startswith("gsrender: error: ")


def test_no_frame_token_and_no_frames(tmp_path, capsys):
    assert farm_job.main([str(tmp_path / "still.png"), "-o", str(tmp_path / "k.exr")]) == 2
    assert farm_job.main([str(tmp_path / "none.####.png"), "-o", str(tmp_path / "k.####.exr")]) == 3


def test_range_expr_round_trips_through_openjd():
    rng = random.Random(0)
    cases = [[1, 2, 3, 5, 7, 9, 10], [5], [1, 3], [-3, -2, -1, 0], list(range(1001, 1101, 2))]
    cases += [sorted(rng.sample(range(-20, 200), rng.randint(1, 60))) for _ in range(30)]
    for frames in cases:
        expr = farm_template.range_expr(frames)
        assert list(openjd_model.IntRangeExpr.from_str(expr)) == frames, expr
    assert farm_template.range_expr([1, 2, 3, 5, 7, 9, 10]) == "1-3,5-9:2,10"


# ---------------------------------------------------------------- the engine-build guard


def test_engine_build_guard(monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert farm_job.main([farm_job.BUILD_GUARD]) == 0
    assert "skipped" in capsys.readouterr().out
    assert farm_job.main([farm_job.BUILD_GUARD, "--required"]) == 5  # --backend tensorrt needs it
    # a host that could build, but the build fails: a warning unless the engine is required
    monkeypatch.setattr(farm_host, "_engine_build_problem", lambda: None)
    monkeypatch.setattr(farm_host, "_build_engine", lambda argv: 5)
    assert farm_job.main([farm_job.BUILD_GUARD, "--precision=fp16"]) == 0
    assert "warning" in capsys.readouterr().out
    assert farm_job.main([farm_job.BUILD_GUARD, "--required"]) == 5


# ---------------------------------------------------------------- running it for real


@needs_cli
def test_openjd_run_renders_every_frame_once_like_a_plain_run(shot, tmp_path):
    out = tmp_path / "o"
    report = tmp_path / "rep" / "r.json"
    template, params = make_job(tmp_path, shot["src"], out, *OPTS, "--chunk", "4", "--report", str(report))
    run = openjd_run(template, params, "--run-dependencies")
    log = run.stdout + run.stderr
    assert run.returncode == 0 and "Session ended successfully" in log, log[-3000:]
    assert "gsrender build-engine: skipped" in log  # the engine-build step, no GPU here
    chunks = [tuple(map(int, c)) for c in re.findall(r"Frame\(CHUNK\[INT\]\) = (-?\d+)-(-?\d+)", log)]
    assert len(chunks) == math.ceil(6 / 4)  # contiguous chunks of at most 4 (OpenJD balances them)
    covered = [f for a, b in chunks for f in range(a, b + 1)]
    assert sorted(covered) == list(range(1, 7)) and all(b - a < 4 for a, b in chunks)
    counts = summaries(log)
    assert [r for r, _, _ in counts] == [b - a + 1 for a, b in chunks]  # every frame rendered once
    assert all(s == 0 and f == 0 for _, s, f in counts)
    assert_same_frames(out, shot["ref"], range(1, 7))
    for a, b in chunks:  # one JSON report per chunk, never shared between tasks
        data = json.loads((report.parent / f"r.{a}-{b}.json").read_text())
        assert data["counts"] == {"rendered": b - a + 1, "skipped": 0, "failed": 0}

    # a retried chunk skips its complete frames
    a, b = chunks[0]
    again = openjd_run(template, params, "--task-param", f"Frame={a}-{b}")
    assert again.returncode == 0
    assert summaries(again.stdout + again.stderr) == [(0, b - a + 1, 0)]
    assert_same_frames(out, shot["ref"], range(1, 7))


@needs_cli
def test_int_range_template_for_schedulers_without_chunking(shot, tmp_path):
    out = tmp_path / "o"
    template, params = make_job(tmp_path, shot["src"], out, *OPTS, "--chunk", "4", "--no-task-chunking")
    run = openjd_run(template, params)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert re.findall(r"ChunkStart\(INT\) = (\d+)", log) == ["1", "5"]
    assert summaries(log) == [(4, 0, 0), (2, 0, 0)]  # chunks 1-4 and 5-6
    assert_same_frames(out, shot["ref"], range(1, 7))


@pytest.fixture(scope="module")
def long_shot(tmp_path_factory) -> dict[str, Path]:
    """Enough frames that a task can be stopped part way, and their plain render."""
    root = tmp_path_factory.mktemp("long")
    for i, f in enumerate(range(1, LONG + 1)):
        write_plate(root / "in" / PATTERN.replace("####", f"{f:04d}"), make_plate(144, 208, seed=i % 8))
    assert gsrender_main([str(root / "in" / PATTERN), "-o", str(root / "ref" / OUT), *OPTS]) == 0
    return {"root": root, "src": root / "in", "ref": root / "ref"}


def assert_only_complete_frames(out: Path, ref: Path) -> int:
    """Frames under final names equal the reference; anything else is a hidden temp file."""
    done = sorted(out.glob("k.*.exr"))
    assert len(done) < LONG, "the task finished before it was stopped: make the frames bigger"
    for p in done:
        np.testing.assert_array_equal(pixels(p), pixels(ref / p.name), err_msg=p.name)
    leftovers = [p.name for p in out.iterdir() if not p.name.startswith("k.")]
    assert all(re.fullmatch(r"\.k\.\d{4}\.exr\.tmp-\d+-[0-9a-f]+\.exr", x) for x in leftovers), leftovers
    return len(done)


@needs_cli
def test_sigkill_mid_frame_leaves_no_partial_frame_and_the_retry_completes(long_shot, tmp_path):
    out = tmp_path / "o"
    template, params = make_job(tmp_path, long_shot["src"], out, *OPTS, "--chunk", str(LONG))
    # the task's own command line, from the template, killed like a host that dies
    cmd = task_command(template, params, f"1-{LONG}")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("k.*.exr"))) < 2:  # some frames complete...
        time.sleep(0.002)
    deadline = time.time() + 0.15
    while time.time() < deadline and not list(out.glob(".k.*")):  # ...and, most often, one being written
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = assert_only_complete_frames(out, long_shot["ref"])

    retry = openjd_run(template, params)
    assert retry.returncode == 0, (retry.stdout + retry.stderr)[-3000:]
    assert summaries(retry.stdout + retry.stderr) == [(LONG - done, done, 0)]
    assert_same_frames(out, long_shot["ref"], range(1, LONG + 1))


@needs_cli
def test_scheduler_cancel_sends_sigterm_and_the_retry_completes(long_shot, tmp_path):
    out = tmp_path / "o"
    template, params = make_job(tmp_path, long_shot["src"], out, *OPTS, "--chunk", str(LONG))
    # Cancelling a running session makes openjd use the template's cancel method: SIGTERM, then
    # a grace period. Schedulers do the same on pre-emption, a user cancel or a runtime limit.
    cmd = [str(OPENJD), "run", str(template), "-p", f"file://{params}", "--step", "Render"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("k.*.exr"))) < 2:
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    log, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "exited with code: 130" in log, log[-3000:]
    done = assert_only_complete_frames(out, long_shot["ref"])
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # SIGTERM finishes frames in flight

    retry = openjd_run(template, params)
    assert retry.returncode == 0, (retry.stdout + retry.stderr)[-3000:]
    assert summaries(retry.stdout + retry.stderr) == [(LONG - done, done, 0)]
    assert_same_frames(out, long_shot["ref"], range(1, LONG + 1))


def test_overlapping_concurrent_tasks_never_corrupt_a_frame(shot, tmp_path):
    out = tmp_path / "o"
    base = [
        sys.executable,
        "-m",
        "gsrender.cli",
        str(shot["src"] / PATTERN),
        "-o",
        str(out / OUT),
        *OPTS,
    ]
    # no --skip-existing: both tasks really write frames 3 and 4 at the same time
    procs = [
        subprocess.Popen([*base, "-F", r], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for r in ("1-4", "3-6")
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert sorted(p.name for p in out.iterdir()) == [OUT.replace("####", f"{f:04d}") for f in range(1, 7)]
    assert_same_frames(out, shot["ref"], range(1, 7))
