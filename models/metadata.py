"""The gsrender metadata of an exported model file: its key names, its parser, the halo rule.

`gsrender export` writes these keys into the ONNX file's metadata_props and every backend
reads them back, so the engine never has to guess how to tile for a model. One home for the
names and the parsing keeps the writer and the readers in step. No torch or onnx here: the
engine reads metadata at render time without either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# What the engine needs to run the model.
MODEL = "gsrender.model"  # network name (config name, e.g. "gskey2")
STRIDE = "gsrender.stride"  # input sizes must be multiples of this
HALO = "gsrender.halo"  # context pixels per tile side (a multiple of the stride)
CLEAN_PLATE_GUIDE = "gsrender.clean_plate_guide"  # "1": a clean plate may be the screen guide
PRECISION = "gsrender.precision"  # "fp32" or "fp16" (FP16 trunk, FP32 I/O and head)

# What the file records about its making (read by people and tools, not by the engine).
RECEPTIVE_RADIUS = "gsrender.receptive_radius"
ENCODING = "gsrender.encoding"
INPUTS = "gsrender.inputs"
OUTPUTS = "gsrender.outputs"
GRAPH = "gsrender.graph"
CONFIG_SHA256 = "gsrender.config_sha256"
STEP = "gsrender.step"
EXPORT_OVERRIDES = "gsrender.export_overrides"
TRAIN_COMMAND = "gsrender.train_command"
FP16_FP32_HEAD = "gsrender.fp16_fp32_head"
SOURCE_SHA256 = "gsrender.source_sha256"

FP32 = "fp32"
FP16 = "fp16"

# The order `gsrender export` writes its keys in: same model, same file bytes (and so the same
# hash, which the FP16 file records as gsrender.source_sha256 and engine caches key on).
WRITE_ORDER = (
    MODEL,
    STRIDE,
    HALO,
    RECEPTIVE_RADIUS,
    ENCODING,
    INPUTS,
    OUTPUTS,
    PRECISION,
    GRAPH,
    CLEAN_PLATE_GUIDE,
    CONFIG_SHA256,
    STEP,
    EXPORT_OVERRIDES,
    TRAIN_COMMAND,
)


class MetadataError(ValueError):
    """The file lacks the metadata the engine needs (stride and halo), or they are not integers."""


@dataclass(frozen=True)
class ModelMetadata:
    """The facts about a model file the engine acts on."""

    name: str
    stride: int
    halo: int
    clean_plate_guide: bool = False
    precision: str = FP32

    def to_metadata(self) -> dict[str, str]:
        """These facts as metadata_props entries, in the form parse_metadata reads back."""
        return {
            MODEL: self.name,
            STRIDE: str(self.stride),
            HALO: str(self.halo),
            PRECISION: self.precision,
            CLEAN_PLATE_GUIDE: "1" if self.clean_plate_guide else "0",
        }


def export_entries(facts: ModelMetadata, recorded: Mapping[str, str]) -> dict[str, str]:
    """What an export writes: the engine's facts plus what it records, in WRITE_ORDER.

    Keys outside WRITE_ORDER follow in the order given; ``recorded`` may not restate a fact.
    """
    entries = facts.to_metadata()
    clash = sorted(entries.keys() & recorded.keys())
    if clash:
        raise ValueError(f"metadata {', '.join(clash)} come from the model's facts, not as extra entries")
    entries.update(recorded)
    rank = {k: i for i, k in enumerate(WRITE_ORDER)}
    return dict(sorted(entries.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def parse_metadata(meta: Mapping[str, str], default_name: str) -> ModelMetadata:
    """The typed record of a model file's metadata_props; MetadataError when stride/halo are unusable.

    ``default_name`` names a model whose file carries no name (the file's stem, say). A missing
    clean-plate flag means no (the network keeps its own screen estimate); a missing precision
    means FP32. Ranges (stride > 0, halo a multiple of it) are the engine's model check, not this.
    """
    try:
        stride = int(meta[STRIDE])
        halo = int(meta[HALO])
    except (KeyError, ValueError):
        raise MetadataError(f"metadata {STRIDE}/{HALO} missing or not integers") from None
    return ModelMetadata(
        name=meta.get(MODEL, default_name),
        stride=stride,
        halo=halo,
        clean_plate_guide=meta.get(CLEAN_PLATE_GUIDE, "0").strip() == "1",
        precision=meta.get(PRECISION, FP32),
    )


def halo_for(radius: int, stride: int) -> int:
    """The receptive radius rounded up to a whole number of strides (tiles start on the stride grid)."""
    return -(-radius // stride) * stride


__all__ = [
    "CLEAN_PLATE_GUIDE",
    "CONFIG_SHA256",
    "ENCODING",
    "EXPORT_OVERRIDES",
    "FP16",
    "FP16_FP32_HEAD",
    "FP32",
    "GRAPH",
    "HALO",
    "INPUTS",
    "MODEL",
    "OUTPUTS",
    "PRECISION",
    "RECEPTIVE_RADIUS",
    "SOURCE_SHA256",
    "STEP",
    "STRIDE",
    "TRAIN_COMMAND",
    "WRITE_ORDER",
    "MetadataError",
    "ModelMetadata",
    "export_entries",
    "halo_for",
    "parse_metadata",
]
