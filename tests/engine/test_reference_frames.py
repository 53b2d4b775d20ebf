"""Regression test: the bundled model still produces the committed reference frames.

Tolerances: EXR (half float) within 2e-3 absolute plus one half-float step (2^-10 of the
value: HDR foreground values above 1 round in coarser steps) in every channel, which covers
half rounding and instruction-set differences in ONNX Runtime between CPUs; PNG within one
code value (1/255 for 8-bit, 1/65535 * 64 for 16-bit). When the model changes on
purpose, regenerate with `python tests/reference/regenerate.py` and commit.
"""

from __future__ import annotations

import numpy as np
import OpenImageIO as oiio
import pytest

from tests.reference.regenerate import CASES, EXPECTED, render_case


def _read(path) -> tuple[np.ndarray, list[str]]:
    cfg = oiio.ImageSpec()
    cfg.attribute("oiio:UnassociatedAlpha", 1)
    buf = oiio.ImageBuf(str(path), 0, 0, cfg)
    return buf.get_pixels(oiio.FLOAT), list(buf.spec().channelnames)


def _tolerance(name: str, expected_path, want: np.ndarray) -> np.ndarray | float:
    if name.endswith(".exr"):
        return 2e-3 + np.abs(want) * 2.0**-10
    bits = oiio.ImageInput.open(str(expected_path)).spec().format.size() * 8
    return 1.0 / 255 + 1e-6 if bits == 8 else 64.0 / 65535


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_frame(name, tmp_path):
    expected_path = EXPECTED / name
    assert expected_path.is_file(), f"missing reference {name}: run python tests/reference/regenerate.py"
    got, got_names = _read(render_case(name, tmp_path))
    want, want_names = _read(expected_path)
    assert got_names == want_names and got.shape == want.shape
    diff = np.abs(got - want)
    excess = diff - _tolerance(name, expected_path, want)
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert excess[worst] <= 0, f"{name}: diff {diff[worst]:.2e} at {worst} (reference {want[worst]:.4g})"
    assert want[..., 3].max() > 0.5 and want[..., 3].min() < 0.5  # references hold a real key
