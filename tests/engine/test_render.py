"""The render pipeline's stages: how many reader/writer threads, and that more change nothing."""

from __future__ import annotations

import numpy as np
import OpenImageIO as oiio
import pytest

from gsrender.engine.backends.classic import ClassicBackend
from gsrender.engine.backends.onnx_runtime import OnnxRuntimeBackend
from gsrender.engine.render import MAX_IO_WORKERS, RenderSettings, io_workers_for, render_frames
from gsrender.engine.sequence import expand_sequence


def test_io_workers_one_beside_cpu_inference_more_beside_a_gpu():
    cpu = ClassicBackend()
    gpu = ClassicBackend()
    gpu.cpu_bound = False  # what the TensorRT and CUDA backends declare
    assert io_workers_for(cpu, cores=64) == 1
    assert io_workers_for(gpu, cores=2) == 1
    assert io_workers_for(gpu, cores=8) == 2
    assert io_workers_for(gpu, cores=64) == MAX_IO_WORKERS
    assert io_workers_for(cpu, requested=3, cores=2) == 3  # an explicit request wins


@pytest.fixture(scope="module")
def backend(model_path):
    return OnnxRuntimeBackend(model_path, threads=1)


def _render(src, out_dir, backend, workers):
    refs = expand_sequence(str(src / "plate.####.png"))
    out_dir.mkdir()
    jobs = [(r, out_dir / f"k.{r.frame:04d}.exr") for r in refs]
    reports = render_frames(jobs, backend, RenderSettings(io_workers=workers))
    return reports, [oiio.ImageBuf(str(t)).get_pixels(oiio.FLOAT) for _, t in jobs]


def test_several_io_workers_render_every_frame_once_and_identically(plate_seq, tmp_path, backend):
    src = plate_seq(frames=range(1, 8))
    one, px_one = _render(src, tmp_path / "one", backend, 1)
    many, px_many = _render(src, tmp_path / "many", backend, 3)
    assert [r.frame for r in many] == list(range(1, 8))  # reports come back in frame order
    assert all(r.status == "rendered" for r in many)
    for a, b in zip(px_one, px_many, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == [f"k.{f:04d}.exr" for f in range(1, 8)]


def test_a_bad_frame_with_several_workers_fails_only_itself(plate_seq, tmp_path, backend):
    src = plate_seq(frames=range(1, 7))
    (src / "plate.0004.png").write_bytes(b"not a png")
    refs = expand_sequence(str(src / "plate.####.png"))
    out = tmp_path / "o"
    out.mkdir()
    jobs = [(r, out / f"k.{r.frame:04d}.exr") for r in refs]
    reports = render_frames(jobs, backend, RenderSettings(io_workers=3, on_error="skip"))
    status = {r.frame: r.status for r in reports}
    assert status == {1: "rendered", 2: "rendered", 3: "rendered", 4: "failed", 5: "rendered", 6: "rendered"}
    assert "k.0004.exr" not in {p.name for p in out.iterdir()}
