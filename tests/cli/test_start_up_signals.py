"""SIGTERM at any moment of start-up ends `gsrender` with exit 130 and one line.

The signal is sent when a given library has just been mapped into the process (read from
/proc/PID/maps), so it lands inside the imports: numpy and OpenImageIO while the command
loads, ONNX Runtime while the model's backend loads. It used to end in 143 (no handler yet)
or 70 ("ImportError: initialization failed", a signal inside the ONNX Runtime import).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_plate, write_plate

GSRENDER = [sys.executable, "-m", "gsrender.cli"]


def _mapped(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize(
    "library, delay",
    # 3 ms after ONNX Runtime's module is mapped its initialisation runs: 6 runs in 6 exited 70
    [("numpy", 0.0), ("OpenImageIO", 0.0), ("onnxruntime_pybind11_state", 0.003)],
)
def test_sigterm_while_start_up_loads_a_library_exits_130(tmp_path, library, delay):
    plate = write_plate(tmp_path / "plate.png", make_plate(64, 96))
    cmd = [*GSRENDER, str(plate), "-o", str(tmp_path / "out" / "k.png")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _mapped(proc.pid, library) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.0005)
    assert proc.poll() is None, f"finished before {library} was loaded"
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err and "error" not in err, err
    assert [line for line in err.splitlines() if "interrupted" in line], err
    assert not (tmp_path / "out" / "k.png").exists()
