"""The allocator tuning applies on glibc (every setting accepted) and is a no-op elsewhere."""

from __future__ import annotations

import platform
import subprocess
import sys

from gsrender.engine import allocator


def test_tune_for_frames_in_a_fresh_process():
    # a child process, so the settings do not leak into the test session
    code = "from gsrender.engine import allocator; print(allocator.tune_for_frames())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert out.strip() == str(glibc)


def test_not_glibc_is_a_no_op(monkeypatch):
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert allocator.tune_for_frames() is False
