"""What users read, as checked-in text: `gsrender --help`, `gsrender info` on the sample plate and
the keys of a render report. tests/golden/test_golden.py compares the command's output with ref/.

When a change to that text is meant, regenerate the references and review the diff:

    python tests/golden/regenerate.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REF = Path(__file__).resolve().parent / "ref"
SAMPLE = "samples/shot/plate.1001.png"  # relative to ROOT, so no machine's path enters the text


def gsrender(*args: str) -> str:
    """stdout of `gsrender ARGS` run from the repository root, at a fixed terminal width."""
    env = {**os.environ, "COLUMNS": "100", "LINES": "50"}
    env.pop("GSRENDER_MODEL", None)
    run = subprocess.run(
        [sys.executable, "-m", "gsrender.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if run.returncode != 0:
        raise RuntimeError(f"gsrender {' '.join(args)} exited {run.returncode}: {run.stderr.strip()}")
    return run.stdout


def key_paths(value: Any, prefix: str = "") -> list[str]:
    """Every key of a JSON document as a dotted path; list items share one `[]` path."""
    if isinstance(value, dict):
        paths = []
        for key in sorted(value):
            path = f"{prefix}.{key}" if prefix else key
            paths.append(path)
            paths += key_paths(value[key], path)
        return paths
    if isinstance(value, list):
        return sorted({p for item in value for p in key_paths(item, prefix + "[]")})
    return []


def report_keys() -> str:
    """The keys of the JSON report of a classic-keyer render of the sample shot (values vary)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        out = Path(tmp) / "keyed" / "k.####.exr"
        gsrender(
            "samples/shot/plate.####.png", "-o", str(out), "-F", "1001-1002", "--keyer", "classic",
            "--report", str(report), "-q",
        )  # fmt: skip
        return "\n".join(key_paths(json.loads(report.read_text()))) + "\n"


# reference file -> how its text is made now
OUTPUTS = {
    "help.txt": lambda: gsrender("--help"),
    "info_sample.txt": lambda: gsrender("info", SAMPLE),
    "report_keys.txt": report_keys,
}


def main() -> int:
    REF.mkdir(exist_ok=True)
    for name, make in OUTPUTS.items():
        (REF / name).write_text(make())
        print(f"wrote {(REF / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
