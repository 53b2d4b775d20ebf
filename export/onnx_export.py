"""Export a trained GsKeyNet checkpoint to ONNX (+ an FP16 ONNX for TensorRT), and check it.

    gsrender export runs/gskey/best.pt -o models/gskey.onnx [--fp16 models/gskey_fp16.onnx]
    (the command line is gsrender.cli.export)

The FP32 model is checked against torch with ONNX Runtime (CPU) on random inputs of two
sizes and on synthetic validation plates with their real screen guides; the export fails
when alpha or bg differ by more than 1e-4. The metadata the render engine reads (stride,
halo, encoding, input/output names) is written into the ONNX file, so the engine never
has to guess how to tile for a model.

The FP16 model is for TensorRT's strongly typed mode, where the ONNX types are the
precision: float32 inputs and outputs (the engine's buffers do not change), a Cast to
float16 after each input, float16 weights and convolutions, and the output head after
the last convolution (4 channels of element-wise work) kept in float32 so the screen
guide that passes straight through to bg is not rounded to float16.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from gsrender.engine.atomic_files import file_sha256
from gsrender.models import checkpoint_config as C
from gsrender.models import metadata as M
from gsrender.models.checkpoint import checkpoint_model_name, load_checkpoint, model_from_checkpoint
from gsrender.models.networks import deploy_module, is_keyer, receptive_radius

INPUTS = ("plate", "screen")
OUTPUTS = ("alpha", "bg")
TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2  # above this the CLI warns: float16 has ~3 significant digits
FP16_BROKEN = 0.1  # above this (or non-finite) the conversion is broken and the CLI fails
ENCODING = "srgb_clip"

# Op inputs that the ONNX spec types as float32 whatever the data type (Resize roi/scales).
_FP32_ONLY_INPUTS = {("Resize", 1), ("Resize", 2)}


# What resumes training, never part of a shipped weights-only checkpoint.
TRAINING_STATE = ("optimizer", "scheduler", "scaler", "rng")


def checkpoint_with_overrides(ckpt_path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """A checkpoint whose config has ``--set key=value`` items applied (validated like training's).

    For switches that change the network's function without changing its weights (GsKeyNet2's
    model.kwargs.hold_subject): the shipped model is a trained run's weights under such a switch.
    """
    ckpt = load_checkpoint(ckpt_path)
    if overrides:
        cfg = C.apply_overrides(C.from_dict(ckpt["config"]), overrides)
        C.validate(cfg)
        ckpt = {
            **ckpt,
            "config": cfg,
            "config_json": C.config_json(cfg),
            "config_sha256": C.config_sha256(cfg),
            "export_overrides": list(overrides),
        }
    return ckpt


def export_onnx(
    ckpt_path: str | Path, out_path: str | Path, *, opset: int = 17, overrides: Sequence[str] = ()
) -> Path:
    """Export the gskey network of a checkpoint with dynamic N/H/W and gsrender metadata."""
    ckpt = checkpoint_with_overrides(ckpt_path, overrides)
    name = checkpoint_model_name(ckpt)
    if not is_keyer(name):
        raise ValueError(f"{ckpt_path}: only gskey models are rendered; this checkpoint is '{name}'")
    try:
        model = model_from_checkpoint(ckpt).float().cpu().eval()
    except (TypeError, ValueError) as exc:  # a model option its network does not take
        raise ValueError(f"{ckpt_path}: {exc}") from None
    deploy = deploy_module(model).eval()  # same function, cheaper graph (see GsKeyNetDeploy)
    stride = int(model.stride)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    size = 4 * stride * 2
    dummy = (torch.rand(1, 3, size, size), torch.rand(1, 3, size, size))
    dyn = {"0": "batch", "2": "height", "3": "width"}
    axes = {n: {int(k): v for k, v in dyn.items()} for n in (*INPUTS, *OUTPUTS)}
    tmp = out.with_name(out.name + ".tmp")
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated but still the one that gives a plain,
        # static-shape-free graph for this model; its warnings would only add noise.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            deploy,
            dummy,
            str(tmp),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load(str(tmp))
    tmp.unlink()
    radius = receptive_radius(model)
    engine_facts = M.ModelMetadata(
        name=name,
        stride=stride,
        halo=M.halo_for(radius, stride),
        # trained with the exact clean screen as the guide of some items: the engine may then
        # hand it a compositor's clean plate as its guide (engine.compositor_inputs)
        clean_plate_guide=float(ckpt["config"]["data"].get("clean_guide", 0)) > 0,
        precision=M.FP32,
    )
    recorded = {
        M.RECEPTIVE_RADIUS: str(radius),
        M.ENCODING: ENCODING,
        M.INPUTS: ",".join(INPUTS),
        M.OUTPUTS: ",".join(OUTPUTS),
        M.GRAPH: "deploy",
        M.CONFIG_SHA256: str(ckpt.get("config_sha256", "")),
        M.STEP: str(ckpt.get("step", "")),
        M.EXPORT_OVERRIDES: " ".join(overrides),
    }
    if ckpt.get("train_command"):
        recorded[M.TRAIN_COMMAND] = str(ckpt["train_command"])
    set_metadata(proto, M.export_entries(engine_facts, recorded))
    proto.producer_name = "gsrender"
    proto.doc_string = (
        "gsrender GsKeyNet: alpha and local screen colour from an encoded plate and screen guide"
    )
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    return out


def set_metadata(proto: onnx.ModelProto, meta: dict[str, str]) -> None:
    """Replace/add metadata_props entries (keys not in `meta` are kept)."""
    kept = [p for p in proto.metadata_props if p.key not in meta]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)


def read_metadata(path: str | Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


# --------------------------------------------------------------------------- FP16


def _initializer_map(graph: onnx.GraphProto) -> dict[str, TensorProto]:
    return {t.name: t for t in graph.initializer}


def _head_nodes(graph: onnx.GraphProto) -> set[int]:
    """Nodes before the first and after the last convolution, which stay FP32 in the FP16 model.

    The same rule TensorRT's FP16 build pins (tensorrt.builder.head_layer_indices, one home for it):
    the output head, and the input arithmetic where GsKeyNet2 computes its colour evidence (a
    ratio of colour differences and a green/blue decision that FP16 rounding would flip on
    near-ties; a few element-wise operations per pixel).
    """
    from gsrender.engine.backends.tensorrt.builder import head_layer_indices

    return head_layer_indices([(n.op_type == "Conv", list(n.input), list(n.output)) for n in graph.node])


def _float_tensors(g: onnx.GraphProto, inits: dict[str, TensorProto]) -> set[str]:
    """Names of the graph's float32 tensors: typed values, initializers and Constant outputs."""
    float_tensors: set[str] = set()
    for vi in [*g.input, *g.output, *g.value_info]:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            float_tensors.add(vi.name)
    float_tensors |= {n for n, t in inits.items() if t.data_type == TensorProto.FLOAT}
    for node in g.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                    float_tensors.add(node.output[0])
    return float_tensors


def _constants_to_fp16(g: onnx.GraphProto, inits: dict[str, TensorProto], dtype: dict[str, int]) -> None:
    """Convert the initializers and Constants assigned fp16, in place."""
    for name, t in inits.items():
        if dtype.get(name) == TensorProto.FLOAT16:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), name))
    for node in g.node:
        if node.op_type == "Constant" and dtype.get(node.output[0]) == TensorProto.FLOAT16:
            for a in node.attribute:
                if a.name == "value":
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16)))


def _outputs_back_to_fp32(g: onnx.GraphProto, dtype: dict[str, int]) -> list[onnx.NodeProto]:
    """Graph outputs stay fp32: rename an fp16 producer's output; the Casts back to append."""
    tail: list[onnx.NodeProto] = []
    for o in g.output:
        if dtype.get(o.name) == TensorProto.FLOAT16:
            inner = f"{o.name}__fp16"
            for n in g.node:
                for k, x in enumerate(n.output):
                    if x == o.name:
                        n.output[k] = inner
                for k, x in enumerate(n.input):
                    if x == o.name:
                        n.input[k] = inner
            dtype[inner] = TensorProto.FLOAT16
            tail.append(
                helper.make_node("Cast", [inner], [o.name], to=TensorProto.FLOAT, name=f"{o.name}_to_fp32")
            )
            dtype[o.name] = TensorProto.FLOAT
    return tail


def convert_fp16(proto: onnx.ModelProto, keep_fp32_head: bool = True) -> onnx.ModelProto:
    """A float16 copy of a float32 model with float32 graph inputs and outputs.

    Every float tensor is assigned a precision: fp32 for graph inputs/outputs, the
    head after the last Conv (when keep_fp32_head) and spec-mandated float inputs
    (Resize scales); fp16 for everything else. Cast nodes are inserted wherever a
    tensor is consumed at the other precision, so the graph is explicitly typed.
    """
    model = onnx.shape_inference.infer_shapes(proto)
    g = model.graph
    inits = _initializer_map(g)
    float_tensors = _float_tensors(g, inits)

    fp32_nodes = _head_nodes(g) if keep_fp32_head else set()
    graph_in = {i.name for i in g.input}

    # Which precision each node wants its float inputs in.
    def wanted(i: int, node: onnx.NodeProto, slot: int) -> int:
        if (node.op_type, slot) in _FP32_ONLY_INPUTS or i in fp32_nodes:
            return TensorProto.FLOAT
        return TensorProto.FLOAT16

    # Tensor precision: graph inputs fp32; constants/initializers take the precision their
    # (first) consumer wants; node outputs take their node's precision.
    consumers: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for i, n in enumerate(g.node):
        for s, x in enumerate(n.input):
            if x:
                consumers[x].append((i, s))
    const_like = set(inits) | {n.output[0] for n in g.node if n.op_type == "Constant"}
    dtype: dict[str, int] = {}
    for name in float_tensors:
        if name in graph_in:
            dtype[name] = TensorProto.FLOAT
        elif name in const_like:
            uses = [wanted(i, g.node[i], s) for i, s in consumers.get(name, [])]
            dtype[name] = (
                TensorProto.FLOAT
                if uses and all(u == TensorProto.FLOAT for u in uses)
                else TensorProto.FLOAT16
            )
    for i, n in enumerate(g.node):
        if n.op_type == "Constant":
            continue
        for o in n.output:
            if o in float_tensors:
                dtype[o] = TensorProto.FLOAT if i in fp32_nodes else TensorProto.FLOAT16
        if n.op_type == "Cast" and i not in fp32_nodes:
            for a in n.attribute:
                if a.name == "to" and a.i == TensorProto.FLOAT:
                    a.i = TensorProto.FLOAT16

    _constants_to_fp16(g, inits, dtype)
    tail = _outputs_back_to_fp32(g, dtype)

    # Insert one Cast per (tensor, precision) wherever a consumer wants the other precision.
    new_nodes: list[onnx.NodeProto] = []
    casts: dict[tuple[str, int], str] = {}
    suffix = {TensorProto.FLOAT16: "fp16", TensorProto.FLOAT: "fp32"}
    for i, n in enumerate(list(g.node)):
        for s, x in enumerate(n.input):
            if x not in dtype:
                continue
            want = wanted(i, n, s)
            if dtype[x] == want:
                continue
            key = (x, want)
            if key not in casts:
                casts[key] = f"{x}__to_{suffix[want]}"
                new_nodes.append(
                    helper.make_node("Cast", [x], [casts[key]], to=want, name=f"{x}_cast_{suffix[want]}")
                )
            n.input[s] = casts[key]
        new_nodes.append(n)
    del g.node[:]
    g.node.extend(new_nodes + tail)

    # Re-derive intermediate types from the edited graph.
    del g.value_info[:]
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    _topological_check(model.graph)
    onnx.checker.check_model(model)
    return model


def _topological_check(graph: onnx.GraphProto) -> None:
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    for n in graph.node:
        missing = [x for x in n.input if x not in known]
        if missing:
            raise RuntimeError(f"fp16 conversion left node {n.name or n.op_type} before its inputs {missing}")
        known.update(n.output)


def export_fp16(onnx_in: str | Path, onnx_out: str | Path, *, keep_fp32_head: bool = True) -> Path:
    """Write the FP16 (strongly typed, FP32 I/O) variant of an exported FP32 model."""
    proto = onnx.load(str(onnx_in))
    model = convert_fp16(proto, keep_fp32_head=keep_fp32_head)
    set_metadata(
        model,
        {
            M.PRECISION: M.FP16,
            M.FP16_FP32_HEAD: str(keep_fp32_head).lower(),
            M.SOURCE_SHA256: file_sha256(onnx_in),
        },
    )
    out = Path(onnx_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


# --------------------------------------------------------------------------- validation


def _session(path: str | Path) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _validation_cases(
    seed: int = 0, plates: int = 2, plate_size: int = 128
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Random inputs of two odd-but-aligned sizes and real plates with their screen guides."""
    rng = np.random.default_rng(seed)
    cases = [
        ("random 1x64x96", rng.random((1, 3, 64, 96), np.float32), rng.random((1, 3, 64, 96), np.float32)),
        ("random 2x40x56", rng.random((2, 3, 40, 56), np.float32), rng.random((2, 3, 40, 56), np.float32)),
    ]
    if plates > 0:
        from gsrender.engine.keyer import prepare_frame
        from gsrender.training.datasets import make_validation_plates

        for i, p in enumerate(make_validation_plates(plates, size=plate_size)):
            f = prepare_frame(p.plate)
            cases.append((f"plate {i} {plate_size}px", f.plate_enc[None], f.screen_enc[None]))
    return cases


def validate_onnx(
    model: torch.nn.Module,
    onnx_path: str | Path,
    *,
    plates: int = 2,
    plate_size: int = 128,
    tolerance: float = TOLERANCE,
    reference_path: str | Path | None = None,
) -> dict[str, Any]:
    """Max abs difference of alpha and bg between ONNX Runtime (CPU) and a reference.

    The reference is the torch model in float32 or, with reference_path, another ONNX
    file (how the FP16 model is compared with the FP32 one). ``ok`` is False when either
    difference exceeds ``tolerance`` or is not finite.
    """
    sess = _session(onnx_path)
    ref = _session(reference_path) if reference_path is not None else None
    model = model.float().cpu().eval()
    result: dict[str, Any] = {"alpha_max_abs_diff": 0.0, "bg_max_abs_diff": 0.0, "cases": []}
    for name, plate, screen in _validation_cases(plates=plates, plate_size=plate_size):
        got_a, got_b = sess.run(list(OUTPUTS), {"plate": plate, "screen": screen})
        if ref is not None:
            want_a, want_b = ref.run(list(OUTPUTS), {"plate": plate, "screen": screen})
        else:
            with torch.no_grad():
                ta, tb = model(torch.from_numpy(plate), torch.from_numpy(screen))
            want_a, want_b = ta.numpy(), tb.numpy()
        if got_a.shape != want_a.shape or got_b.shape != want_b.shape:
            raise RuntimeError(
                f"{name}: output shapes {got_a.shape}/{got_b.shape} != {want_a.shape}/{want_b.shape}"
            )
        da = float(np.max(np.abs(got_a.astype(np.float64) - want_a)))
        db = float(np.max(np.abs(got_b.astype(np.float64) - want_b)))
        result["cases"].append({"case": name, "alpha": da, "bg": db})
        result["alpha_max_abs_diff"] = max(result["alpha_max_abs_diff"], da)
        result["bg_max_abs_diff"] = max(result["bg_max_abs_diff"], db)
    worst = max(result["alpha_max_abs_diff"], result["bg_max_abs_diff"])
    result["tolerance"] = tolerance
    result["ok"] = bool(math.isfinite(worst) and worst <= tolerance)
    return result


def fp16_structure(path: str | Path) -> dict[str, Any]:
    """What a strongly typed TensorRT build will see: I/O types and where precision changes."""
    m = onnx.load(str(path))
    init_types = defaultdict(int)
    for t in m.graph.initializer:
        init_types[TensorProto.DataType.Name(t.data_type)] += 1
    io = {
        v.name: TensorProto.DataType.Name(v.type.tensor_type.elem_type)
        for v in [*m.graph.input, *m.graph.output]
    }
    casts = [
        (n.input[0], TensorProto.DataType.Name(next(a.i for a in n.attribute if a.name == "to")))
        for n in m.graph.node
        if n.op_type == "Cast"
    ]
    return {"io": io, "initializers": dict(init_types), "casts": casts}
