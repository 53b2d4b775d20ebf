"""Blender's compositor Keying node as a peer keyer for `gsrender evaluate` (``--model blender``).

A compositor comparing keyers would try Blender's free Keying node with its default settings,
so the evaluation scores it beside the classic keyer and the networks. The node runs in a
``blender`` subprocess (background mode, factory settings; the in-Blender script is
blender_keying_job.py beside this module): every plate is written as a scene-linear Rec.709
float EXR (Blender's working space, as ours), keyed by Image -> Keying (defaults) and its
Matte read back from a float EXR. All plates of a run go through ONE Blender process, since
its start-up costs seconds.

The key colour is picked as a user would with the eyedropper on clean screen: the per-channel
median of the plate's outer border (a band BORDER_FRACTION of the short side wide, at least
2 px) in linear light. It does not use the engine's own screen estimate, so the peer stays
independent of the keyer it is compared with.

A missing or failing ``blender`` is a BackendError (one line, exit 5).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gsrender.engine.errors import BackendError

BLENDER = "blender"
JOB_SCRIPT = Path(__file__).with_name("blender_keying_job.py")
BORDER_FRACTION = 0.02
START_TIMEOUT_S = 120.0  # Blender start-up and the first plate, generously
PER_MEGAPIXEL_TIMEOUT_S = 60.0
SETTINGS_TAG = "gsrender-keying-settings "


def find_blender() -> str:
    """The ``blender`` executable on PATH, or a BackendError saying how to get one."""
    exe = shutil.which(BLENDER)
    if exe is None:
        raise BackendError(
            BLENDER,
            "executable not found on PATH, needed for --model blender "
            "(install Blender 3.x, e.g. apt-get install blender)",
        )
    return exe


def blender_version(exe: str) -> str:
    """'Blender 3.4.1' (the first line of ``blender --version``)."""
    try:
        res = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(exe, f"cannot run 'blender --version' ({exc})") from None
    first = next((ln.strip() for ln in res.stdout.splitlines() if ln.strip()), "")
    if res.returncode != 0 or not first.startswith("Blender"):
        raise BackendError(exe, f"'blender --version' failed (exit {res.returncode}): {first or 'no output'}")
    return first


def border_key_colour(plate_lin: np.ndarray) -> np.ndarray:
    """Median linear RGB of the plate's outer border band: the eyedropper on clean screen."""
    h, w = plate_lin.shape[:2]
    b = max(2, round(BORDER_FRACTION * min(h, w)))
    band = np.concatenate(
        [
            plate_lin[:b].reshape(-1, 3),
            plate_lin[-b:].reshape(-1, 3),
            plate_lin[b:-b, :b].reshape(-1, 3),
            plate_lin[b:-b, -b:].reshape(-1, 3),
        ]
    )
    return np.median(band, axis=0).astype(np.float32)


def _failure_line(text: str) -> str:
    """The most telling line of Blender's output: its last error line, else its last line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    return (errors or lines or ["no output"])[-1][:300]


def keying_node_mattes(
    plates: Sequence[np.ndarray], keys: Sequence[np.ndarray] | None = None
) -> tuple[list[np.ndarray], dict]:
    """Key every plate (HxWx3 linear) with the Keying node in one Blender process.

    keys: the key colour per plate (linear RGB); None: border_key_colour of each plate.
    Returns the mattes (HxW float32 in [0, 1]) and a description: Blender's version, the node's
    settings as the running Blender reports them, the key colours and the wall time.
    """
    from ..indep_val.dataset import IndepValError, read_exr, write_exr

    exe = find_blender()
    version = blender_version(exe)
    keys = [border_key_colour(p) for p in plates] if keys is None else [np.asarray(k) for k in keys]
    megapixels = sum(p.shape[0] * p.shape[1] for p in plates) / 1e6
    with tempfile.TemporaryDirectory(prefix="gsrender_blender_") as tmp:
        tmpdir = Path(tmp)
        items = []
        for i, (plate, key) in enumerate(zip(plates, keys, strict=True)):
            path = tmpdir / f"plate{i:05d}.exr"
            write_exr(path, np.asarray(plate, np.float32), "float")
            key3 = [float(v) for v in np.asarray(key, np.float64).reshape(3)]
            items.append({"plate": str(path), "key": key3, "out_dir": str(tmpdir), "stem": f"matte{i:05d}_"})
        job = tmpdir / "job.json"
        job.write_text(json.dumps({"plates": items}))
        cmd = [exe, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "3"]
        cmd += ["--python", str(JOB_SCRIPT), "--", str(job)]
        t0 = time.perf_counter()
        try:
            res = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT_S + PER_MEGAPIXEL_TIMEOUT_S * megapixels,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BackendError(exe, f"the Keying node job on {len(plates)} plates timed out") from None
        except OSError as exc:
            raise BackendError(exe, f"cannot start Blender ({exc})") from None
        seconds = time.perf_counter() - t0
        if res.returncode != 0:
            why = _failure_line(res.stderr + res.stdout)
            raise BackendError(exe, f"the Keying node job failed (exit {res.returncode}): {why}")
        mattes = []
        for i, plate in enumerate(plates):
            out = tmpdir / f"matte{i:05d}_0001.exr"
            try:
                m = read_exr(out, 1)
            except IndepValError as exc:
                raise BackendError(
                    exe, f"the Keying node wrote no usable matte for plate {i} ({exc})"
                ) from None
            if m.shape != plate.shape[:2]:
                raise BackendError(
                    exe, f"the Keying node's matte {m.shape} differs from plate {plate.shape[:2]}"
                )
            mattes.append(np.clip(np.nan_to_num(m, nan=0.0), 0.0, 1.0).astype(np.float32))
    settings_line = next((ln for ln in res.stdout.splitlines() if ln.startswith(SETTINGS_TAG)), None)
    settings = json.loads(settings_line[len(SETTINGS_TAG) :]) if settings_line else {}
    return mattes, {"version": version, "settings": settings, "keys": keys, "seconds": seconds}


def describe(info: dict) -> str:
    """One header line: what ran, with which settings and key colour."""
    settings = ", ".join(
        f"{k} {round(v, 4) if isinstance(v, float) else v}" for k, v in info.get("settings", {}).items()
    )
    return (
        f"{info.get('version', 'Blender')} compositor Keying node, default settings ({settings}); "
        f"plate in as scene-linear Rec.709 float EXR; Key Color = median of each plate's border "
        f"({BORDER_FRACTION:.0%} of the short side, >= 2 px), linear"
    )


class BlenderKeyingPredictor:
    """`gsrender evaluate --model blender`: the Keying node on each sample's linear plate.

    prepare(samples) keys them all in one Blender process; a sample not prepared is keyed
    on its own (one process per call). The screen colour output is None (the engine's
    unmix then uses its screen guide, as for the classic keyer).
    """

    label = "blender"

    def __init__(self) -> None:
        find_blender()  # fail at load time, with the other models' checks
        self._cache: dict[int, tuple[object, np.ndarray]] = {}  # holds the sample: its id stays unique
        self.info: dict = {}

    def prepare(self, samples: Sequence) -> None:
        """Key every sample not keyed yet, in one Blender process."""
        todo = [s for s in samples if self._cached(s) is None]
        if not todo:
            return
        mattes, self.info = keying_node_mattes([s.frame.plate_lin for s in todo])
        for s, m in zip(todo, mattes, strict=True):
            self._cache[id(s)] = (s, m)

    def _cached(self, s) -> np.ndarray | None:
        hit = self._cache.get(id(s))
        return hit[1] if hit is not None and hit[0] is s else None

    def describe(self) -> str:
        return describe(self.info)

    def __call__(self, s) -> tuple[np.ndarray, np.ndarray | None]:
        m = self._cached(s)
        if m is None:  # not prepared: key this one alone
            (m,), self.info = keying_node_mattes([s.frame.plate_lin])
        return m, None
