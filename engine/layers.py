"""Which RGB layer of an image file is the plate to key.

Multi-part and layered EXRs hold several RGB layers (the beauty and AOVs such as albedo).
Keying an AOV gives alpha 0 everywhere and no other sign, so the plate is picked the way
a compositor names it (bare R,G,B or rgba.*, then beauty), --layer/--part pick another,
and equal candidates are refused with the list rather than guessed between.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError, listing
from .formats import InputAlpha

if TYPE_CHECKING:
    from .image_io import ImageInfo

INPUT_ALPHA_MODES = tuple(mode.value for mode in InputAlpha)
# Layer (or part) names that mean "the plate itself", best first.
_PLATE_NAMES = {"": 0, "rgba": 0, "rgb": 0, "beauty": 1}
_SUFFIXES = {"r": "R", "red": "R", "g": "G", "green": "G", "b": "B", "blue": "B", "a": "A", "alpha": "A"}


@dataclass(frozen=True)
class PlateSelection:
    """What the user said about which pixels of a file are the plate."""

    layer: str | None = None  # layer name (beauty, rgba...) or part name; None: pick the plate
    part: str | None = None  # part (subimage) index or name; None: any part
    input_alpha: InputAlpha = InputAlpha.IGNORE


@dataclass(frozen=True)
class PlateLayer:
    """One RGB layer of a file: where its channels are."""

    part: int
    part_name: str
    layer: str  # channel prefix ("" for bare R, G, B)
    rgb: tuple[int, int, int]  # channel indices in the part
    alpha: int | None  # the layer's alpha channel index, if any
    channel_names: tuple[str, ...]  # all channels of the part

    @property
    def name(self) -> str:
        """The name a user would type for --layer: the prefix, else the part's name."""
        return self.layer or self.part_name

    def describe(self) -> str:
        names = [self.channel_names[i] for i in self.rgb]
        part = f"part {self.part}" + (f" '{self.part_name}'" if self.part_name else "")
        alpha = f", alpha {self.channel_names[self.alpha]}" if self.alpha is not None else ""
        return f"{part}, layer '{self.layer or 'rgba'}', channels {','.join(names)}{alpha}"


def plate_layers(parts: tuple[tuple[str, tuple[str, ...]], ...]) -> list[PlateLayer]:
    """Every layer with R, G and B channels (any case, or red/green/blue), in file order."""
    found = []
    for k, (part_name, names) in enumerate(parts):
        layers: dict[str, dict[str, int]] = {}
        for i, name in enumerate(names):
            prefix, _, suffix = name.rpartition(".")
            channel = _SUFFIXES.get(suffix.lower())
            if channel:
                layers.setdefault(prefix, {}).setdefault(channel, i)
        for prefix, chans in layers.items():
            if all(c in chans for c in "RGB"):
                rgb = (chans["R"], chans["G"], chans["B"])
                found.append(PlateLayer(k, part_name, prefix, rgb, chans.get("A"), names))
    return found


def _listing(layers: list[PlateLayer]) -> str:
    return listing((layer.describe() for layer in layers), "; ")


def _part_matches(layer: PlateLayer, part: str) -> bool:
    return part == str(layer.part) or part.lower() == layer.part_name.lower()


def choose_plate(path: Path, info: ImageInfo, selection: PlateSelection | None = None) -> PlateLayer:
    """The layer to key: the one named by --layer/--part, else the plate by name (rgba, beauty).

    A file with several candidates of equal rank (two parts with bare RGB, or only AOVs) is
    refused with the list, because keying the wrong one gives alpha 0 and no other sign.
    """
    selection = selection or PlateSelection()
    parts = info.parts or ((info.attributes.get("name", "") or "", tuple(info.channel_names)),)
    layers = plate_layers(parts)  # type: ignore[arg-type]
    if selection.part is not None:
        part = str(selection.part).strip()
        if not any(part == str(k) or part.lower() == n.lower() for k, (n, _) in enumerate(parts)):
            known = listing(f"{k} '{n}'" if n else str(k) for k, (n, _) in enumerate(parts))
            raise InputError(path, f"no part '{part}' (parts: {known})")
        layers = [layer for layer in layers if _part_matches(layer, part)]
    if selection.layer is not None:
        want = selection.layer.strip().lower()
        named = [layer for layer in layers if layer.name.lower() == want or layer.layer.lower() == want]
        if not named and want in ("rgba", "rgb"):
            named = [layer for layer in layers if layer.layer == ""]
        if len(named) == 1:
            return named[0]
        if not named:
            raise InputError(path, f"no RGB layer '{selection.layer}' (layers: {_listing(layers) or 'none'})")
        raise InputError(
            path, f"layer '{selection.layer}' is in several parts ({_listing(named)}); add --part"
        )
    if len(layers) == 1:
        return layers[0]
    if not layers:
        if selection.part is None and len(parts) == 1 and len(parts[0][1]) >= 3:
            # Single part without R, G, B names (X, Y, Z...): its first three channels, as before.
            return PlateLayer(0, parts[0][0], "", (0, 1, 2), None, parts[0][1])
        raise InputError(path, "no RGB layer (channels R, G, B) to key")
    ranked = [
        (_PLATE_NAMES[layer.name.lower()], layer) for layer in layers if layer.name.lower() in _PLATE_NAMES
    ]
    if ranked:
        best = min(rank for rank, _ in ranked)
        top = [layer for rank, layer in ranked if rank == best]
        if len(top) == 1:
            return top[0]
        raise InputError(path, f"several plates ({_listing(top)}); choose one with --layer or --part")
    raise InputError(
        path, f"no rgba or beauty layer among {_listing(layers)}; choose one with --layer or --part"
    )
