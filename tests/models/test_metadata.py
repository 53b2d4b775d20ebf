"""Model-file metadata: the parser the engine reads exports with, and the halo rule."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gsrender.models import metadata as M


def test_a_full_export_record_parses_to_its_facts() -> None:
    meta = {
        "gsrender.model": "gskey2",
        "gsrender.stride": "8",
        "gsrender.halo": "88",
        "gsrender.clean_plate_guide": "1",
        "gsrender.precision": "fp16",
        "gsrender.encoding": "srgb_clip",  # recorded, not acted on
    }
    assert M.parse_metadata(meta, default_name="file") == M.ModelMetadata(
        name="gskey2", stride=8, halo=88, clean_plate_guide=True, precision="fp16"
    )


def test_missing_optional_keys_take_their_defaults() -> None:
    md = M.parse_metadata({"gsrender.stride": "4", "gsrender.halo": " 12"}, default_name="mine")
    assert md == M.ModelMetadata(name="mine", stride=4, halo=12, clean_plate_guide=False, precision="fp32")
    for flag, want in (("1", True), (" 1\n", True), ("0", False), ("yes", False), ("", False)):
        meta = {"gsrender.stride": "8", "gsrender.halo": "8", "gsrender.clean_plate_guide": flag}
        assert M.parse_metadata(meta, default_name="m").clean_plate_guide is want


@pytest.mark.parametrize(
    "meta",
    [
        {},
        {"gsrender.stride": "8"},
        {"gsrender.halo": "88"},
        {"gsrender.stride": "eight", "gsrender.halo": "88"},
        {"gsrender.stride": "8", "gsrender.halo": "88.0"},
        {"stride": "8", "halo": "88"},  # not gsrender's keys
    ],
)
def test_without_integer_stride_and_halo_it_is_not_a_gsrender_model(meta) -> None:
    with pytest.raises(M.MetadataError, match="gsrender.stride/gsrender.halo"):
        M.parse_metadata(meta, default_name="m")
    assert issubclass(M.MetadataError, ValueError)


def test_the_writer_form_reads_back_unchanged() -> None:
    facts = M.ModelMetadata(name="gskey", stride=8, halo=88, clean_plate_guide=True, precision=M.FP16)
    written = facts.to_metadata()
    assert written[M.STRIDE] == "8" and written[M.CLEAN_PLATE_GUIDE] == "1" and written[M.PRECISION] == "fp16"
    assert M.parse_metadata(written, default_name="other") == facts


def test_halo_is_the_radius_rounded_up_to_the_stride() -> None:
    assert [M.halo_for(r, 8) for r in (0, 1, 8, 9, 82)] == [0, 8, 8, 16, 88]


def test_the_package_and_its_metadata_import_without_torch_or_onnx() -> None:
    code = (
        "import sys, gsrender.models, gsrender.models.metadata; "
        "bad = [m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules]; "
        "assert not bad, bad; print(gsrender.models.shipped_model_path().name)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "gskey.onnx"


def test_exports_write_their_keys_in_the_order_they_always_have() -> None:
    """Same model, same bytes: the FP16 file and engine caches key on the FP32 file's hash."""
    facts = M.ModelMetadata(name="gskey2", stride=8, halo=88)
    recorded = {"x.extra": "1", M.STEP: "2000", M.RECEPTIVE_RADIUS: "82", M.GRAPH: "deploy"}
    written = M.export_entries(facts, recorded)
    assert list(written) == [
        M.MODEL, M.STRIDE, M.HALO, M.RECEPTIVE_RADIUS, M.PRECISION, M.GRAPH, M.CLEAN_PLATE_GUIDE, M.STEP,
        "x.extra",
    ]  # fmt: skip
    assert M.parse_metadata(written, default_name="m") == facts
    with pytest.raises(ValueError, match="gsrender.halo"):
        M.export_entries(facts, {M.HALO: "16"})
