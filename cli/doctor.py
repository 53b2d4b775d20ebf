"""`gsrender doctor`: what this node can run, and what `--backend auto` would pick.

    gsrender doctor [--model M] [--cache DIR] [--json] [--require gpu|tensorrt|cuda]

A farm wrangler runs this on a node before sending work to it (or as a job's first
step with --require, which exits 1 when the node cannot do what the job needs). It
only looks: it never builds an engine, and imports nothing that is not installed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import sys
from pathlib import Path
from typing import Any

from gsrender.engine.backends import default_model_path, resolve_auto
from gsrender.engine.backends.tensorrt.cache import default_cache_dir, list_engines
from gsrender.engine.backends.tensorrt.node import NodeIdentity, nvidia_smi, trt_major
from gsrender.engine.command import run_command


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def probe_gpu() -> dict[str, Any]:
    """GPUs and driver from nvidia-smi, else from pycuda or torch (whichever is importable)."""
    smi = nvidia_smi()
    if smi.get("gpus"):
        return {"source": "nvidia-smi", "gpus": smi["gpus"], "cuda_driver": smi.get("cuda")}
    notes = [smi.get("error", "nvidia-smi lists no GPU")]
    if importlib.util.find_spec("pycuda") is not None:
        try:
            import pycuda.driver as cuda

            cuda.init()
            gpus = []
            for i in range(cuda.Device.count()):
                d = cuda.Device(i)
                cc = d.compute_capability()
                gpus.append(
                    {
                        "index": str(i),
                        "name": d.name(),
                        "memory_mib": str(d.total_memory() >> 20),
                        "compute_capability": f"{cc[0]}.{cc[1]}",
                        "driver": None,
                    }
                )
            v = cuda.get_driver_version()
            if gpus:
                return {"source": "pycuda", "gpus": gpus, "cuda_driver": f"{v // 1000}.{v % 1000 // 10}"}
            notes.append("pycuda sees no GPU")
        except Exception as exc:  # pycuda raises its own errors without a driver
            notes.append(f"pycuda: {_first_line(exc)}")
    if importlib.util.find_spec("torch") is not None:
        try:
            import torch

            if torch.cuda.is_available():
                gpus = []
                for i in range(torch.cuda.device_count()):
                    p = torch.cuda.get_device_properties(i)
                    gpus.append(
                        {
                            "index": str(i),
                            "name": p.name,
                            "memory_mib": str(p.total_memory >> 20),
                            "compute_capability": f"{p.major}.{p.minor}",
                            "driver": None,
                        }
                    )
                return {"source": "torch", "gpus": gpus, "cuda_driver": None}
            notes.append("torch: CUDA not available")
        except Exception as exc:
            notes.append(f"torch: {_first_line(exc)}")
    return {"source": None, "gpus": [], "notes": notes}


def probe_tensorrt() -> dict[str, Any]:
    if importlib.util.find_spec("tensorrt") is None:
        return {"installed": False, "note": "not installed (pip install 'gsrender[tensorrt]')"}
    try:
        import tensorrt as trt
    except Exception as exc:
        return {"installed": True, "version": _version("tensorrt"), "error": _first_line(exc)}
    major = trt_major(trt.__version__)
    typing = "strongly typed only (FP16 from the FP16 ONNX)" if major >= 11 else "FP16 builder flag"
    return {"installed": True, "version": trt.__version__, "fp16": typing}


def probe_pycuda() -> dict[str, Any]:
    if importlib.util.find_spec("pycuda") is None:
        return {"installed": False, "note": "not installed (pip install 'gsrender[tensorrt]')"}
    info: dict[str, Any] = {"installed": True, "version": _version("pycuda")}
    try:
        import pycuda.driver as cuda

        info["built_for_cuda"] = ".".join(str(v) for v in cuda.get_version())
    except Exception as exc:
        info["error"] = _first_line(exc)
    return info


def probe_onnxruntime() -> dict[str, Any]:
    try:
        import onnxruntime as ort
    except Exception as exc:
        return {"installed": False, "error": _first_line(exc)}
    return {"installed": True, "version": ort.__version__, "providers": ort.get_available_providers()}


def probe_torch() -> dict[str, Any]:
    if importlib.util.find_spec("torch") is None:
        return {"installed": False, "note": "not installed (the [train] extra)"}
    try:
        import torch

        return {
            "installed": True,
            "version": torch.__version__,
            "cuda_build": torch.version.cuda,
            "cuda_available": bool(torch.cuda.is_available()),
        }
    except Exception as exc:
        return {"installed": True, "error": _first_line(exc)}


def auto_choice(model: Path, gpu_found: bool) -> tuple[str, str, str | None]:
    """(backend, reason, warning) as `create_backend('auto')` decides, without building anything."""
    try:
        name, why = resolve_auto(model)
    except Exception as exc:  # onnxruntime missing or broken: auto cannot run anything
        return "none", f"onnxruntime unusable: {_first_line(exc)}", "no backend can run here"
    warn = None
    if name == "tensorrt" and not gpu_found:
        warn = "TensorRT and pycuda are installed but no GPU is visible: auto falls back to ONNX Runtime"
    elif name == "cuda" and not gpu_found:
        warn = "onnxruntime has the CUDA provider but no GPU is visible"
    return name, why, warn


def collect(model: Path, cache: Path) -> dict[str, Any]:
    """Everything doctor reports, as plain data (for --json and for tests)."""
    gpu = probe_gpu()
    trt = probe_tensorrt()
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gsrender": _version("gsrender"),
        "gpu": gpu,
        "tensorrt": trt,
        "pycuda": probe_pycuda(),
        "onnxruntime": probe_onnxruntime(),
        "torch": probe_torch(),
        "model": {"path": str(model), "exists": model.is_file()},
    }
    node = None
    if gpu.get("gpus") and trt.get("version"):
        g = gpu["gpus"][0]
        if g.get("compute_capability"):
            node = NodeIdentity(trt["version"], g["name"], g["compute_capability"])
    try:
        engines = list_engines(cache, node)
    except OSError as exc:
        engines = []
        report["engine_cache_error"] = _first_line(exc)
    report["engine_cache"] = {"path": str(cache), "engines": engines}
    name, why, warn = auto_choice(model, bool(gpu.get("gpus")))
    report["auto"] = {"backend": name, "reason": why, "warning": warn}
    return report


def _fmt_gpu(g: dict[str, Any]) -> str:
    parts = [g["name"]]
    if g.get("compute_capability"):
        parts.append(f"sm {g['compute_capability']}")
    if str(g.get("memory_mib") or "").isdigit():  # nvidia-smi may say [N/A]
        parts.append(f"{int(g['memory_mib']) / 1024:.0f} GiB")
    return f"[{g['index']}] " + ", ".join(parts)


def render_text(r: dict[str, Any]) -> str:
    """The human-readable report, one fact per line."""
    lines = [f"gsrender doctor  (gsrender {r['gsrender'] or '?'}, Python {r['python']}, {r['platform']})"]

    def row(label: str, text: str) -> None:
        lines.append(f"  {label:<13}{text}")

    gpu = r["gpu"]
    if gpu.get("gpus"):
        for i, g in enumerate(gpu["gpus"]):
            row("GPU" if i == 0 else "", f"{_fmt_gpu(g)}  (via {gpu['source']})")
        drivers = {g.get("driver") for g in gpu["gpus"]} - {None}
        row("driver", ", ".join(sorted(drivers)) or "?")
        row("CUDA", f"{gpu['cuda_driver']} (highest the driver supports)" if gpu.get("cuda_driver") else "?")
    else:
        row("GPU", "none found: " + "; ".join(gpu.get("notes", [])))
        row("driver", "-")
        row("CUDA", "-")
    t = r["tensorrt"]
    if t.get("version") and not t.get("error"):
        row("TensorRT", f"{t['version']} ({t['fp16']})")
    else:
        row("TensorRT", t.get("error") or t.get("note", "?"))
    pc = r["pycuda"]
    if pc.get("installed"):
        detail = pc.get("error") or f"built for CUDA {pc.get('built_for_cuda', '?')}"
        row("pycuda", f"{pc.get('version') or '?'} ({detail})")
    else:
        row("pycuda", pc.get("note", "not installed"))
    o = r["onnxruntime"]
    row(
        "onnxruntime",
        f"{o['version']}, providers: {', '.join(o['providers'])}"
        if o.get("installed")
        else f"unusable: {o.get('error')}",
    )
    tc = r["torch"]
    if tc.get("version"):
        cuda = "CUDA available" if tc.get("cuda_available") else "CUDA not available"
        row("torch", f"{tc['version']} ({cuda}; built for CUDA {tc.get('cuda_build') or 'none'})")
    else:
        row("torch", tc.get("error") or tc.get("note", "not installed"))
    m = r["model"]
    row("model", f"{m['path']}" + ("" if m["exists"] else "  (missing!)"))
    cache = r["engine_cache"]
    engines = cache["engines"]
    row(
        "engines",
        f"{len(engines)} cached in {cache['path']}"
        + (f" ({r['engine_cache_error']})" if r.get("engine_cache_error") else ""),
    )
    for e in engines:
        state = {True: "usable here", False: "other GPU/TensorRT: not loaded here", None: "?"}[e["usable"]]
        row(
            "",
            f"{Path(e['path']).name}  {e.get('precision', '?')}  {e.get('gpu_name', '?')} "
            f"sm {e.get('compute_capability', '?')}  TensorRT {e.get('trt_version', '?')}  [{state}]",
        )
    a = r["auto"]
    row("auto picks", f"{a['backend']}: {a['reason']}")
    if a.get("warning"):
        row("warning", a["warning"])
    return "\n".join(lines)


REQUIRE = {
    "gpu": lambda r: bool(r["gpu"].get("gpus")),
    "tensorrt": lambda r: r["auto"]["backend"] == "tensorrt" and not r["auto"].get("warning"),
    "cuda": lambda r: bool(r["gpu"].get("gpus")) and r["auto"]["backend"] in ("tensorrt", "cuda"),
}


def main(argv: list[str] | None = None) -> int:
    """Print the report; 0, or 1 when --require is not met."""
    return run_command(_doctor, argv, "doctor")


def _doctor(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gsrender doctor", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model to check (default: the bundled one)")
    p.add_argument(
        "--cache",
        default=None,
        help="TensorRT engine cache folder (default: $GSRENDER_ENGINE_CACHE or ~/.cache/gsrender/engines)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--require", choices=sorted(REQUIRE), help="exit 1 unless the node can do this")
    args = p.parse_args(argv)
    model = Path(args.model) if args.model else default_model_path()
    cache = Path(args.cache).expanduser() if args.cache else default_cache_dir()
    report = collect(model, cache)
    print(json.dumps(report, indent=2, default=str) if args.json else render_text(report))
    if args.require and not REQUIRE[args.require](report):
        print(f"gsrender doctor: this node does not meet --require {args.require}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
