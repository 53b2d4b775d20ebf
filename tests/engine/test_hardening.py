"""Hostile inputs, full disks and signals: one line, the right exit code, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from gsrender.cli import job as farm_job
from gsrender.cli.render import main
from gsrender.engine import frame_pipeline, sequence
from tests.conftest import assert_one_line, error_lines, make_plate, write_plate

CLI = [sys.executable, "-m", "gsrender.cli"]
INFO = [sys.executable, "-m", "gsrender.cli.info"]


def run(*args: object) -> int:
    return main([str(a) for a in args])


# ---------------------------------------------------------------- report path


def test_report_cannot_overwrite_an_input_plate(plate_seq, tmp_path, capsys):
    src = plate_seq()
    plate = src / "plate.1002.png"
    before = plate.read_bytes()
    rc = run(src / "plate.####.png", "-o", tmp_path / "o" / "k.####.exr", "--report", plate)
    assert rc == 2
    assert_one_line(capsys.readouterr().err, "would overwrite an input frame")
    assert plate.read_bytes() == before
    assert not (tmp_path / "o").exists()  # refused before rendering


def test_report_cannot_overwrite_an_output_frame(plate_seq, tmp_path, capsys):
    src = plate_seq()
    out = tmp_path / "o"
    rc = run(src / "plate.####.png", "-o", out / "k.####.exr", "--report", out / "k.1001.exr")
    assert rc == 2
    assert_one_line(capsys.readouterr().err, "would overwrite an output frame")


def test_report_in_an_unusable_folder_fails_before_rendering(plate_seq, tmp_path, capsys):
    src = plate_seq()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = run(src / "plate.####.png", "-o", tmp_path / "o" / "k.####.exr", "--report", blocker / "r.json")
    assert rc == 4
    assert_one_line(capsys.readouterr().err, "is not a folder")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- declared size


def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A 1.1 MB PNG whose header declares width x height."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    idat = np.random.default_rng(0).bytes(1_100_000)  # about the size a real bomb has; never decoded
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_huge_declared_image_is_refused_before_decoding(tmp_path):
    bomb = _png_declaring(tmp_path / "bomb.png", 20000, 20000)
    proc = subprocess.run([*CLI, str(bomb), "-o", str(tmp_path / "k.exr")], capture_output=True, text=True)
    assert proc.returncode == 3
    assert_one_line(proc.stderr, "bomb.png", "20000x20000", "--max-pixels")
    info = subprocess.run([*INFO, str(bomb)], capture_output=True, text=True)
    assert info.returncode == 0 and "readable:     NO" in info.stdout and "Traceback" not in info.stderr


def test_image_larger_than_free_memory_is_refused_before_decoding(tmp_path, capsys):
    from gsrender.engine.preflight import DECODE_BYTES_PER_SAMPLE, available_memory

    free = available_memory()
    if free is None:
        pytest.skip("this kernel does not report MemAvailable")
    # 1.5x the free memory once decoded to float (OpenImageIO's own limit, on 8-bit size, passes it)
    side = int((free * 1.5 / (3 * DECODE_BYTES_PER_SAMPLE)) ** 0.5) + 1
    bomb = _png_declaring(tmp_path / "wide.png", side, side)
    assert run(bomb, "-o", tmp_path / "k.exr", "--max-pixels", str(10**12)) == 3
    assert_one_line(capsys.readouterr().err, "wide.png", "GiB of memory is available")


def test_max_pixels_option(tmp_path, capsys):
    src = write_plate(tmp_path / "p.png", make_plate())  # 104x72 = 7488 pixels
    assert run(src, "-o", tmp_path / "k.exr", "--max-pixels", "7000") == 3
    assert_one_line(capsys.readouterr().err, "7488 pixels", "over the limit of 7000")
    assert run(src, "-o", tmp_path / "k.exr", "--max-pixels", "7488") == 0
    with pytest.raises(SystemExit) as exc:
        run(src, "-o", tmp_path / "k.exr", "--max-pixels", "0")
    assert exc.value.code == 2


def test_a_16k_plate_passes_the_default_limit(tmp_path):
    from gsrender.engine.preflight import DECODE_BYTES_PER_SAMPLE, available_memory, check_frame

    free = available_memory()
    if free is None or 16384 * 8640 * 3 * DECODE_BYTES_PER_SAMPLE > free:
        pytest.skip("this machine has too little free memory to decode a 16K plate")
    check_frame(_png_declaring(tmp_path / "16k.png", 16384, 8640))  # header only: passes, no error


# ---------------------------------------------------------------- paths and pipes


def test_non_utf8_paths_are_one_line_and_exit_2(tmp_path):
    """Exit 2 (a usage error, as README says) for every path on the command line that is not
    UTF-8: plate, output, matte, clean plate, model, report; `gsrender info` too. (The plate, a
    matte and `info` exited 3.)"""
    good = write_plate(tmp_path / "p.png", make_plate())
    bad_in = os.fsencode(tmp_path) + b"/pl\xffate.png"
    os.link(good, bad_in)
    bad_out = os.fsencode(tmp_path) + b"/k\xff.exr"
    out = str(tmp_path / "k.exr")
    for args in (
        [bad_in, "-o", out],
        [str(good), "-o", bad_out],
        [str(good), "-o", out, "--garbage-matte", bad_in],
        [str(good), "-o", out, "--clean-plate", bad_in],
        [str(good), "-o", out, "--model", os.fsencode(tmp_path) + b"/m\xff.onnx"],
        [str(good), "-o", out, "--report", os.fsencode(tmp_path) + b"/r\xff.json"],
    ):
        proc = subprocess.run([*CLI, *args], capture_output=True, text=True)
        assert proc.returncode == 2, (args, proc.stderr)
        assert_one_line(proc.stderr, "not valid UTF-8")
    proc = subprocess.run([*INFO, bad_in], capture_output=True, text=True)
    assert proc.returncode == 2
    assert_one_line(proc.stderr, "not valid UTF-8")
    assert not (tmp_path / "k.exr").exists()


def test_closed_stdout_does_not_fail_a_render(plate_seq, tmp_path):
    src = plate_seq()
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [*CLI, str(src / "plate.####.png"), "-o", str(tmp_path / "o" / "k.####.exr"), "--no-progress"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(list((tmp_path / "o").glob("k.*.exr"))) == 3


# ---------------------------------------------------------------- unexpected exceptions


def test_unexpected_reader_exception_is_one_line_summary_and_report(plate_seq, tmp_path, capsys, monkeypatch):
    """Fault injection: no known input triggers this path (those are fixed), so frame 1002's read
    raises what a library bug would; the real reader handles every other frame."""
    real = frame_pipeline.read_frame

    def flaky(path, *args):
        if "1002" in str(path):
            raise TypeError("incompatible function arguments")
        return real(path, *args)

    monkeypatch.setattr(frame_pipeline, "read_frame", flaky)
    src = plate_seq()
    report = tmp_path / "r.json"
    rc = run(
        src / "plate.####.png", "-o", tmp_path / "o" / "k.####.exr", "--on-error", "skip", "--report", report
    )
    assert rc == 70
    captured = capsys.readouterr()
    assert_one_line(captured.err, "frame 1002", "plate.1002.png", "TypeError")
    assert "gsrender summary: rendered=2 skipped=0 failed=1" in captured.out
    data = json.loads(report.read_text())
    assert data["exit_code"] == 70 and data["counts"]["failed"] == 1


# ---------------------------------------------------------------- disks, folders, signals


@pytest.fixture
def tiny_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", str(mnt)])


def test_full_disk_is_exit_4_with_no_space_left(plate_seq, tiny_disk, capsys):
    src = plate_seq(frames=range(1, 7), size=(320, 480))
    rc = run(src / "plate.####.png", "-o", tiny_disk / "k.####.exr", "--on-error", "skip")
    captured = capsys.readouterr()
    assert rc == 4, captured.err
    lines = error_lines(captured.err)
    assert lines and all("no space left on device" in line for line in lines), lines
    assert "rendered=" in captured.out and "rendered=0 " not in captured.out  # some frames fitted
    assert not [p for p in tiny_disk.iterdir() if p.name.startswith(".")]  # no temp files left


def test_skip_existing_does_not_skip_a_folder(plate_seq, tmp_path, capsys):
    src = plate_seq()
    out = tmp_path / "o"
    (out / "k.1002.exr").mkdir(parents=True)
    rc = run(src / "plate.####.png", "-o", out / "k.####.exr", "--skip-existing", "--on-error", "skip")
    assert rc == 4
    assert_one_line(capsys.readouterr().err, "frame 1002", "a folder has this output frame's name")
    assert (out / "k.1001.exr").is_file() and (out / "k.1003.exr").is_file()


def _handles_sigterm(pid: int) -> bool:
    """True once the process has installed a SIGTERM handler (SigCgt in /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    except OSError:
        pass
    return False


def test_sigterm_writes_the_summary_and_report(plate_seq, tmp_path):
    src = plate_seq(frames=range(1, 41), size=(180, 260))
    out = tmp_path / "o"
    report = tmp_path / "r.json"
    cmd = [*CLI, str(src / "plate.####.png"), "-o", str(out / "k.####.exr"), "--report", str(report)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and any(out.glob("k.*.exr"))):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "gsrender summary: rendered=" in stdout
    data = json.loads(report.read_text())
    assert data["exit_code"] == 130
    done = sorted(out.glob("k.*.exr"))
    assert data["counts"]["rendered"] == len(done) and data["not_started"] == 40 - len(done)


def test_sigterm_during_start_up_exits_130(plate_seq, tmp_path):
    """A million-frame plan keeps start-up busy; the signal lands there, before any frame."""
    src = plate_seq()
    cmd = [*CLI, str(src / "plate.####.png"), "-o", str(tmp_path / "o" / "k.#######.exr"), "-F", "1-1000000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not _handles_sigterm(proc.pid) and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


# ---------------------------------------------------------------- option values


@pytest.mark.parametrize(
    "option, value",
    [
        ("--despill", "nan"),
        ("--despill", "5"),
        ("--despill", "-0.1"),
        ("--despill", "inf"),
        ("--despot", "-1"),
        ("--despot", "1.5"),
        ("--despot", "5000"),
        ("--screen-colour", "nan,nan,nan"),
        ("--screen-colour", "0.1,inf,0.1"),
        ("--screen-colour", "0,0,0"),
        ("--screen-colour", "-1,0.5,0"),
        ("--screen-colour", "1e308,1e308,1e308"),
        ("--threads", "99999999999999999999"),
        ("--io-threads", "100000"),
        ("--out-colorspace", "nonsense"),
    ],
)
def test_option_values_must_be_finite_and_in_range(plate_seq, tmp_path, capfd, option, value):
    src = plate_seq()
    proc = subprocess.run(
        [*CLI, str(src / "plate.####.png"), "-o", str(tmp_path / "k.####.exr"), f"{option}={value}"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line, no usage block
    assert_one_line(proc.stderr, option)
    assert not list(tmp_path.glob("k.*"))


def test_job_checks_backend_and_model_when_written(plate_seq, tmp_path, capsys):
    src = plate_seq()
    base = [src / "plate.####.png", "-o", tmp_path / "o" / "k.####.exr"]

    def job(*args: object) -> int:
        return farm_job.main([str(a) for a in args])

    assert job(*base, "--backend", "bogus") == 2
    assert_one_line(capsys.readouterr().err, "unknown backend 'bogus'")
    assert job(*base, "--model", tmp_path / "missing.onnx") == 5
    assert_one_line(capsys.readouterr().err, "missing.onnx", "model file not found")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    assert job(*base, "--model", broken) == 5
    assert_one_line(capsys.readouterr().err, "broken.onnx")


# ---------------------------------------------------------------- scale


def test_planning_parses_the_output_pattern_once(plate_seq, tmp_path, monkeypatch):
    """-F 1-200000 used to parse the output pattern for every frame (~1.5 ms each: minutes)."""
    calls = []
    real = sequence._parse_token

    def counting(pattern):
        calls.append(pattern)
        return real(pattern)

    monkeypatch.setattr(sequence, "_parse_token", counting)
    src = plate_seq()
    from gsrender.cli.render import _plan_jobs, _render_parser

    args = _render_parser().parse_args(
        [str(src / "plate.####.png"), "-o", str(tmp_path / "k.######.exr"), "-F", "1-20000"]
    )
    jobs = _plan_jobs(args)
    assert len(jobs) == 20000 and jobs[-1][1].name == "k.020000.exr"
    assert len(calls) <= 4, f"the patterns were parsed {len(calls)} times for 20000 frames"


def test_planning_still_refuses_output_over_input(plate_seq, capsys):
    src = plate_seq()
    assert run(src / "plate.####.png", "-o", src / "plate.####.png") == 2
    assert_one_line(capsys.readouterr().err, "overwrite the input frame")
    np.testing.assert_equal(len(list(src.iterdir())), 3)


# ---------------------------------------------------------------- models are input


def _onnx_model(path: Path, *, alpha_channels: int = 1, pooled: bool = False, stride="8", halo="16") -> Path:
    """A tiny graph with the keyer's tensor names: alpha from the plate, bg = screen."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    dims = ["N", 3, "H", "W"]
    nodes = [helper.make_node("Identity", ["screen"], ["bg"])]
    if pooled:  # 1x1 alpha whatever the tile: declared shapes say nothing, the probe notices
        nodes.append(helper.make_node("ReduceMean", ["plate"], ["alpha"], axes=[1, 2, 3], keepdims=1))
        alpha_dims = ["N", 1, "h", "w"]
    elif alpha_channels == 1:
        nodes.append(helper.make_node("ReduceMean", ["plate"], ["alpha"], axes=[1], keepdims=1))
        alpha_dims = ["N", 1, "H", "W"]
    else:
        nodes.append(helper.make_node("Identity", ["plate"], ["alpha"]))
        alpha_dims = ["N", 3, "H", "W"]
    graph = helper.make_graph(
        nodes,
        "keyer",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n in ("plate", "screen")],
        [
            helper.make_tensor_value_info("alpha", TensorProto.FLOAT, alpha_dims),
            helper.make_tensor_value_info("bg", TensorProto.FLOAT, dims),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    for key, value in (("gsrender.stride", stride), ("gsrender.halo", halo), ("gsrender.model", "t")):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({}, None),  # the well-formed tiny model loads: the checks do not refuse a valid keyer
        ({"alpha_channels": 3}, "output 'alpha' has 3 channels"),
        ({"pooled": True}, "output 'alpha' has shape (1, 1, 1, 1)"),
        ({"stride": "0"}, "stride 0 is not between 1 and"),
        ({"halo": "-8"}, "halo -8 is not between 0 and"),
        ({"stride": "8", "halo": "12"}, "not a multiple of the stride"),
    ],
)
def test_models_are_validated_on_load(plate_seq, tmp_path, capsys, kwargs, words):
    model = _onnx_model(tmp_path / "m.onnx", **kwargs)
    src = write_plate(tmp_path / "p.png", make_plate())
    report = tmp_path / "r.json"
    rc = run(src, "-o", tmp_path / "k.exr", "--model", model, "--backend", "onnxruntime", "--report", report)
    captured = capsys.readouterr()
    if words is None:
        assert rc == 0, captured.err
        return
    assert rc == 5
    assert_one_line(captured.err, "m.onnx", words)
    assert not (tmp_path / "k.exr").exists()
    assert "gsrender summary: rendered=0 skipped=0 failed=0 not_started=1" in captured.out
    data = json.loads(report.read_text())
    assert data["exit_code"] == 5 and words in data["error"]


@pytest.mark.parametrize("content", ["empty_state", "wrong_state", "not_a_dict"])
def test_bad_torch_checkpoints_are_exit_5(tmp_path, capsys, content):
    torch = pytest.importorskip("torch")
    ckpt = tmp_path / "m.pt"
    payload = {
        "empty_state": {"model": {}, "config": {"model": {"name": "gskey"}}},
        "wrong_state": {"model": {"conv.weight": torch.zeros(3, 3)}, "config": {}},
        "not_a_dict": [1, 2, 3],
    }[content]
    torch.save(payload, ckpt)
    src = write_plate(tmp_path / "p.png", make_plate())
    assert run(src, "-o", tmp_path / "k.exr", "--model", ckpt, "--backend", "torch") == 5
    assert_one_line(capsys.readouterr().err, "m.pt")


@pytest.mark.parametrize(
    "src, out, frames",
    [
        ("in/plate.####.exr", "out/k.%06d.png", [-3, 0, 7, 1001, 123456]),
        ("in/p.@@.exr", "k.####.exr", list(range(95, 105))),
        ("in/plate.####.exr", "out/one.exr", [5]),
    ],
)
def test_the_lazy_plan_gives_the_same_pairs_as_expanding_each_frame(src, out, frames):
    plan = sequence.plan_sequence(src, out, frames)
    refs = sequence.expand_sequence(src, frames)
    expected = [(r, sequence.frame_path(out, r.frame) if len(frames) > 1 else Path(out)) for r in refs]
    assert list(plan) == expected and plan[-1] == expected[-1] and len(plan) == len(expected)
    assert plan.output_names() == {t.name for _, t in expected}
    assert plan.input_names() == {r.path.name for r, _ in expected}


# ---------------------------------------------------------------- as a user without root's rights

OTHER_UID = 65534  # "nobody"


@pytest.fixture
def as_other_user():
    """Run gsrender as uid 65534 in a folder both users can reach; skip with the reason otherwise.

    Root writes into read-only folders, so permission failures only show as another user. The
    venv's interpreter may sit in root's home, so the system Python of the same version runs this
    venv's packages (site.addsitedir).
    """
    import shutil
    import sysconfig
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root; as non-root the read-only tests elsewhere run")
    python = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if not os.path.exists(python) or not os.stat(python).st_mode & 0o001:
        pytest.skip(f"no world-executable {python} for the other user")
    site_dir = sysconfig.get_paths()["purelib"]
    code = (
        f"import site, sys; site.addsitedir({site_dir!r}); "
        "from gsrender.cli.render import main; sys.exit(main(sys.argv[1:]))"
    )
    root = Path(tempfile.mkdtemp(prefix="gsu-", dir="/tmp"))
    os.chmod(root, 0o755)

    def run_as(*args: object) -> subprocess.CompletedProcess:
        return subprocess.run(
            [python, "-c", code, *map(str, args)],
            user=OTHER_UID,
            group=OTHER_UID,
            extra_groups=[],
            cwd=root,
            capture_output=True,
            text=True,
            env={**os.environ, "HOME": str(root)},
        )

    probe = run_as("--help")
    if probe.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"the other user cannot run this venv's gsrender: {probe.stderr.strip()[-200:]}")
    yield root, run_as
    shutil.rmtree(root, ignore_errors=True)


def test_read_only_output_folder_as_another_user(as_other_user):
    root, run_as = as_other_user
    src = write_plate(root / "in" / "p.png", make_plate())
    os.chmod(src.parent, 0o755)
    ro = root / "ro"
    ro.mkdir(mode=0o555)
    proc = run_as(src, "-o", ro / "k.exr")
    assert proc.returncode == 4, proc.stderr
    assert_one_line(proc.stderr, str(ro), "not writable")


def test_report_folder_not_writable_as_another_user(as_other_user):
    root, run_as = as_other_user
    src = write_plate(root / "in" / "p.png", make_plate())
    os.chmod(src.parent, 0o755)
    out = root / "out"
    out.mkdir()
    os.chown(out, OTHER_UID, OTHER_UID)
    locked = root / "locked"
    locked.mkdir(mode=0o555)
    proc = run_as(src, "-o", out / "k.exr", "--report", locked / "r.json")
    assert proc.returncode == 4, proc.stderr
    assert_one_line(proc.stderr, "r.json", "not writable")
    assert not (out / "k.exr").exists()  # refused before rendering


def test_output_folder_lost_mid_run_is_exit_4_as_another_user(as_other_user):
    """Frames render, then the folder turns read-only: 'permission denied', exit 4 (was 1)."""
    root, run_as = as_other_user
    src = root / "in"
    for f in range(1, 31):
        write_plate(src / f"p.{f:04d}.png", make_plate(120, 180, seed=f))
    os.chmod(src, 0o755)
    out = root / "out"
    out.mkdir()
    os.chown(out, OTHER_UID, OTHER_UID)
    import threading

    def lock_when_first_frame_lands() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not list(out.glob("k.*.exr")):
            time.sleep(0.01)
        os.chown(out, 0, 0)  # no longer the other user's: writes fail with EACCES
        os.chmod(out, 0o755)

    t = threading.Thread(target=lock_when_first_frame_lands)
    t.start()
    proc = run_as(src / "p.####.png", "-o", out / "k.####.exr", "--on-error", "skip")
    t.join()
    assert proc.returncode == 4, proc.stderr
    lines = error_lines(proc.stderr)
    assert lines and all("permission denied" in line for line in lines), lines
    assert "rendered=0 " not in proc.stdout


def test_debug_keeps_the_traceback(plate_seq, tmp_path, monkeypatch):
    """The same injected fault with --debug: the traceback is logged, the one error line stays."""
    import logging

    real = frame_pipeline.read_frame

    def flaky(path):
        if "1002" in str(path):
            raise TypeError("incompatible function arguments")
        return real(path)

    monkeypatch.setattr(frame_pipeline, "read_frame", flaky)
    src = plate_seq()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("gsrender").addHandler(handler)
    try:
        rc = run(src / "plate.####.png", "-o", tmp_path / "o" / "k.####.exr", "--on-error", "skip", "--debug")
    finally:
        logging.getLogger("gsrender").removeHandler(handler)
        logging.getLogger("gsrender").setLevel(logging.NOTSET)
    assert rc == 70
    assert any(r.exc_info and r.exc_info[0] is TypeError for r in records)
