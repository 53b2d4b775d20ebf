"""What users read matches the checked-in references (regenerate: python tests/golden/regenerate.py)."""

from __future__ import annotations

import difflib

import pytest

from tests.golden.regenerate import OUTPUTS, REF, key_paths


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_output_matches_its_reference(name: str) -> None:
    want = (REF / name).read_text()
    got = OUTPUTS[name]()
    if got != want:
        lines = difflib.unified_diff(want.splitlines(True), got.splitlines(True), f"ref/{name}", "now")
        hint = "if on purpose, run python tests/golden/regenerate.py"
        pytest.fail(f"{name} changed; {hint}\n{''.join(lines)}", pytrace=False)


def test_key_paths_lists_nested_keys_once() -> None:
    doc = {"b": 1, "a": {"y": [1], "x": None}, "frames": [{"s": 1}, {"s": 2, "t": 3}]}
    assert key_paths(doc) == ["a", "a.x", "a.y", "b", "frames", "frames[].s", "frames[].t"]
