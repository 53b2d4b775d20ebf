"""GsKeyNet2: a keyer that corrects the colour-difference key instead of inventing one.

Same inputs and outputs as GsKeyNet (plate and smooth screen guide in the network
encoding -> alpha and the local screen colour), so the engine runs it unchanged. What
changed, each because of a failure seen on real photographs:

- Screen-aligned basis. Where the screen guide is bluer than it is green, the green and
  blue channels are swapped on the way in (and the screen colour swapped back on the way
  out), so a blue screen looks to the network exactly like a green one. The shipped
  GsKeyNet keyed a blue screen fully opaque.
- Colour evidence as the starting point. The network computes, in linear light, the
  colour-difference key k = 1 - s(plate) / s(local screen), s(x) = x_screen - max(others)
  (the classic keyer's formula, full resolution, so it keeps every strand the plate
  shows) and predicts a correction of it. With a zero correction it is the classic key.
- It cannot paint over visible screen. The correction may lower alpha (shadows, noise,
  dark folds) but may raise it only as far as the gate lets it: the gate is 0 where the
  pixel's chromaticity equals the local screen's (screen seen between leaves, a shadow on
  the screen) and opens as the colour moves away from the screen. The shipped GsKeyNet
  filled gaps between branches with alpha near 1. Two gates (``gate``): "sum" compares
  rgb / (r + g + b) and is what GsKeyNet2 and GsKeyNet3 were trained with; "ratio" compares
  red / green and blue / green (screen-aligned) and is what the shipped model runs with.
  On real photographs the "sum" gate opened on shadowed, dark and slightly tinted screen
  (the network painted 0.05-0.2 there and over thin glass); the "ratio" gate stays shut.
- ``clip_black`` / ``clip_white``: the key the correction starts from can be the classic
  keyer's with its clean-up (raw key <= 0.05 -> 0, >= 0.95 -> 1), which removes the
  faint residue of screen grain and the last few percent of spill on solid costumes.
- With ``hold_subject`` it cannot punch holes into plain subject either: where the screen
  channel is clearly below another channel (the unclipped colour-difference key above
  1 + HOLD_WIDTH: skin, denim, most costumes; such a pixel holds little screen light) the
  correction may not lower alpha. A first training phase without it lowered alpha on blue jeans and a
  plaid shirt in real photographs.
- With ``detail_scale`` > 0 the corrected key's finest scale across an edge is the evidence's
  own (detail_transfer): the correction, predicted through pooling, sets how opaque an edge is
  and the per-pixel evidence where its strands lie. Off (0) in the weights' training config; the
  shipped model turns it on at export, as an option (it changes no weight).

The trunk is GsKeyNet's U-Net (three stride-2 levels, no normalisation, no global
pooling: tile-invariant), written directly in the cheaper arrangement GsKeyNetDeploy
derives (1x1 convolutions of [upsampled, skip] split so the low half runs before the
upsample), so training and inference run the same graph.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .box_filters import box_mean
from .detail_transfer import detail_reach, restore_detail
from .gskey import STRIDE, _conv, add_encoder, deploy_trunk
from .gskey import receptive_radius as _gskey_radius

STRENGTH_FLOOR = 0.01  # linear: the local screen's colour difference never divides below this
CHROMA_EPS = 0.005  # linear: keeps chromaticity of near-black pixels near 0 (not noise)
GATE_START = 0.03  # chromaticity distance (L1) below which alpha may not be raised ("sum" gate)
GATE_WIDTH = 0.09  # ... and over which the gate opens fully
RATIO_GATE_START = 0.1  # largest |other / screen channel| difference below which alpha may not be raised
RATIO_GATE_WIDTH = 0.15  # ... and over which the gate opens fully ("ratio" gate)
RATIO_FLOOR = 1e-3  # linear: the screen channel never divides below this (near-black pixels)
GATES = ("sum", "ratio")  # the gate kinds a CorrectingKeyer takes (model.kwargs.gate)
DETAILS = ("bilinear", "guided")  # model.kwargs.detail (GsKeyNet3's upsampling of its correction)
STRENGTHS = ("max", "weighted", "local")  # evidence forms (model.kwargs.strength), see colour_evidence
RB_WEIGHT = 0.5  # the "weighted" strength's weight of each other channel (IBK's default)
MAX_DETAIL_SCALE = 8  # model.kwargs.detail_scale's largest value (detail_transfer; 0 = off)
LOCAL_RADIUS = 8  # "local": the square (2 * radius + 1 pixels) the foreground's strength is taken over
LOCAL_OPAQUE = (0.8, 1.0)  # ... from the solid subject: "max" key ramping from the first to the second
LOCAL_FULL = 0.5  # ... trusted fully where at least this share of the square is solid subject
LOCAL_FG_CAP = 0.5  # ... and never more than this share of the local screen's strength
LOCAL_MIX = (0.2, 0.4)  # ... and only for a mix of screen and that subject: off their line, / |F - S|
LOCAL_HOLD = (-0.02, 0.02)  # ... held opaque as another channel's lead over the screen channel grows
LOCAL_RELEASE_SUBJECT = (0.5, 0.2)  # ... the hold let go as the subject's strength share falls so
LOCAL_RELEASE_MIX = (0.75, 0.55)  # ... and as the corrected key falls so (a clear mix)
LOCAL_CLEAR_KEY = 0.1  # ... and next to clear screen: "max" key below this, ramping from 0
LOCAL_RELEASE_CLEAR = 0.02  # ... fully let go where this share of the square is clear screen
LEAD_FLOOR = 1e-6  # linear: the brightest channel never divides below this (black pixels)
EDGE_RADIUS = 3  # clip_edges: the flatness square's radius (engine/edge_clip.py, Blender's default)
EDGE_TOLERANCE = 0.1  # ... and the key range below which a pixel is flat
EVIDENCE_CHANNELS = 8  # the trunk's input: plate (3), screen (3), colour-difference key, gate
HOLD_WIDTH = 0.1  # raw key above 1 over which lowering alpha is phased out (hold_subject)
CLEAR_FROM = 0.7  # raw key from which lowering is phased out where the gate is open (hold_clear)
CLEAR_WIDTH = 0.15  # ... fully blocked from CLEAR_FROM + CLEAR_WIDTH


SRGB_KNEE = 0.04045  # encoded value where the sRGB curve turns from linear to the power law


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """The engine's network encoding (sRGB curve of clipped linear) back to linear light.

    Written without a select: the power branch of the clip to [knee, 1] plus the linear branch
    of the clip to [0, knee], less their common value at the knee (the curve is continuous there).
    On ONNX Runtime's CPU kernels selects cost whole extra passes over full-resolution tensors,
    and its scalar Pow costs twice the vectorised Exp and Log.
    """
    base = torch.clamp(x, SRGB_KNEE, 1.0) * (1.0 / 1.055) + (0.055 / 1.055)  # >= 0.0905
    high = torch.exp(torch.log(base) * 2.4)  # x ** 2.4: half of ONNX Runtime's Pow cost, < 1e-6 off
    return high + (torch.clamp(x, 0.0, SRGB_KNEE) - SRGB_KNEE) * (1.0 / 12.92)


def screen_aligned(x: torch.Tensor, blue: torch.Tensor) -> torch.Tensor:
    """Swap green and blue where ``blue`` (N,1,H,W, 0/1 float) is set; its own inverse.

    Only the green and blue channels move: single-channel multiply-adds, exact for a 0/1 mask
    (x * 1 + y * 0 == x), so a blue screen keys bit for bit like the green screen it mirrors.
    """
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    green = 1.0 - blue
    return torch.cat([r, g * green + b * blue, b * green + g * blue], dim=1)


def _strength(x: torch.Tensor) -> torch.Tensor:
    """How much more screen channel than any other: green - max(red, blue) (green-aligned)."""
    return x[:, 1:2] - torch.maximum(x[:, 0:1], x[:, 2:3])


def raw_colour_difference(plate_lin: torch.Tensor, screen_lin: torch.Tensor) -> torch.Tensor:
    """1 - s(plate) / s(screen), s = green - max(red, blue), unclipped (green-aligned inputs)."""
    ref = torch.clamp(_strength(screen_lin), min=STRENGTH_FLOOR)
    return 1.0 - _strength(plate_lin) / ref


def colour_difference(plate_lin: torch.Tensor, screen_lin: torch.Tensor) -> torch.Tensor:
    """The colour-difference key in [0, 1]: 0 on the local screen, 1 without screen light."""
    return torch.clamp(raw_colour_difference(plate_lin, screen_lin), 0.0, 1.0)


def _chromaticity(x: torch.Tensor) -> torch.Tensor:
    """rgb / (r + g + b), near 0 for near-black pixels (inputs are non-negative linear light)."""
    return x * (1.0 / (x[:, 0:1] + x[:, 1:2] + x[:, 2:3] + CHROMA_EPS))


def screen_gate(plate_lin: torch.Tensor, screen_lin: torch.Tensor) -> torch.Tensor:
    """0 where the plate has the local screen's chromaticity, rising to 1 away from it ("sum" gate).

    Chromaticity (rgb / sum) ignores brightness, so a shadow or falloff on the screen
    stays "screen" and keeps the gate closed. Inputs come from srgb_to_linear (non-negative).
    Kept for the checkpoints trained with it; on real photographs it opens on shadowed and
    dark screen (CHROMA_EPS pulls dark pixels' chromaticity towards 0, and an L1 distance of
    a few hundredths is within a real screen's variation), which let the network paint there.
    """
    dist = (_chromaticity(plate_lin) - _chromaticity(screen_lin)).abs().sum(dim=1, keepdim=True)
    return torch.clamp((dist - GATE_START) * (1.0 / GATE_WIDTH), 0.0, 1.0)


Channels = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # r, g, b as N,1,H,W tensors


def channels(x: torch.Tensor) -> Channels:
    """An N,3,H,W tensor as its three single channels."""
    return x[:, 0:1], x[:, 1:2], x[:, 2:3]


def ratio_gate(plate_lin: Channels, screen_lin: Channels) -> torch.Tensor:
    """0 where the plate's other channels stand to its screen channel as the local screen's do ("ratio" gate).

    The distance is the larger of |r/g - r_s/g_s| and |b/g - b_s/g_s| (green-aligned linear
    channels): exactly 0 for any shadow, falloff or dimming of the screen, however dark, with no
    additive term that shifts dark pixels; shut below RATIO_GATE_START (screen grain, JPEG, light
    bounce), open from RATIO_GATE_START + RATIO_GATE_WIDTH. Any mix of a subject with the screen
    moves the ratios towards the subject's, so semi-transparent detail still opens it.
    """
    (pr, pg, pb), (sr, sg, sb) = plate_lin, screen_lin
    p_inv = 1.0 / torch.clamp(pg, min=RATIO_FLOOR)
    s_inv = 1.0 / torch.clamp(sg, min=RATIO_FLOOR)
    dist = torch.maximum((pr * p_inv - sr * s_inv).abs(), (pb * p_inv - sb * s_inv).abs())
    return torch.clamp((dist - RATIO_GATE_START) * (1.0 / RATIO_GATE_WIDTH), 0.0, 1.0)


class ColourEvidence(NamedTuple):
    """What the keyer knows per pixel before any convolution (green-aligned, see screen_aligned).

    The aligned plate and screen are kept as single channels (r, g, b): the trunk's input is one
    concatenation of them with the key and the gate, and nothing else needs them as 3-channel
    tensors (on ONNX Runtime's CPU kernels every full-resolution split or concatenation is a copy).
    """

    blue: torch.Tensor  # 1 where the guide is a blue screen (channels swapped), else 0
    plate: Channels  # aligned plate channels, network encoding
    screen: Channels  # aligned screen guide channels
    screen_input: torch.Tensor  # the screen guide as given (unaligned, 3 channels)
    raw: torch.Tensor  # unclipped key of the chosen strength form (the clip starts from it)
    key: torch.Tensor  # the colour-difference key in [0, 1] (clipped as colour_evidence was asked)
    gate: torch.Tensor  # how far alpha may be raised (0 on the local screen's colour)
    start: torch.Tensor  # the key the correction starts from: ``key``, or clipped only where flat
    subject: torch.Tensor  # the unclipped key the hold rules read (``raw``; the "max" key for "local")

    def features(self) -> torch.Tensor:
        """The trunk's input: plate, screen, key, gate (8 channels)."""
        return torch.cat([*self.plate, *self.screen, self.key, self.gate], dim=1)


def _aligned_channels(x: torch.Tensor, blue: torch.Tensor, green: torch.Tensor) -> Channels:
    """screen_aligned(x) as three single channels, without the concatenation."""
    r, g, b = channels(x)
    return r, g * green + b * blue, b * green + g * blue


def _strength_of(r: torch.Tensor, g: torch.Tensor, b: torch.Tensor, strength: str = "max") -> torch.Tensor:
    """green - max(red, blue) ("max", Keylight's form), or green - (red + blue) / 2 ("weighted",
    IBK's form with rb weight 0.5): a brown or blond strand (red above green) has a "max"
    strength below 0 and so more alpha than its coverage; its "weighted" strength is near 0."""
    if strength == "weighted":
        return g - (r + b) * RB_WEIGHT
    return g - torch.maximum(r, b)


def _off_the_line(plate: Channels, screen: Channels, subject: Channels) -> torch.Tensor:
    """Distance of each plate colour from the line through screen and subject colour, / |F - S|."""
    d = [f - s for f, s in zip(subject, screen, strict=True)]
    q = [p - s for p, s in zip(plate, screen, strict=True)]
    dd = torch.clamp(d[0] * d[0] + d[1] * d[1] + d[2] * d[2], min=1e-12)
    t = (q[0] * d[0] + q[1] * d[1] + q[2] * d[2]) / dd
    off = [qc - t * dc for qc, dc in zip(q, d, strict=True)]
    return torch.sqrt((off[0] * off[0] + off[1] * off[1] + off[2] * off[2]) / dd)


def local_key(plate_lin: Channels, screen_lin: Channels) -> tuple[torch.Tensor, torch.Tensor]:
    """The "local" key (unclipped) and the "max" key it starts from (green-aligned linear channels).

    The classic keyer's default form (engine/classic_keyer.py, engine/local_foreground.py), the
    same constants. The strength is the Keying node's, s = (g - v) * (1 - v) with v = (r + b) / 2
    (screen balance 0.5): a brown or blond strand has little of it, so it is not keyed as more than
    its coverage. The key is (s_screen - s) / (s_screen - s_fg), where s_fg is the mean strength of
    the solid subject (a ramp on the max key, LOCAL_OPAQUE) within LOCAL_RADIUS, at most
    LOCAL_FG_CAP * s_screen, trusted where the square holds solid subject and the pixel's colour lies
    near the line between screen and that subject (LOCAL_MIX; a black belt beside a red shirt is no
    such mix); elsewhere the plain 1 - s / s_screen. Where another channel leads the screen channel
    (cyan, yellow, skin) the key is held towards 1 (LOCAL_HOLD), except where the pixel is a clear
    mix (LOCAL_RELEASE_MIX) of clear screen nearby (LOCAL_RELEASE_CLEAR) and a subject below the cap
    (LOCAL_RELEASE_SUBJECT), which the correction keys exactly: a blue prop's defocused edge. No
    selects: every blend is a multiply-add (ONNX Runtime's CPU kernels run selects as extra passes).
    """
    (pr, pg, pb), (sr, sg, sb) = plate_lin, screen_lin
    s_max = torch.clamp(sg - torch.maximum(sr, sb), min=STRENGTH_FLOOR)
    k_max = 1.0 - (pg - torch.maximum(pr, pb)) / s_max

    def strength(r: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        v = (r + b) * RB_WEIGHT
        return (g - v) * (1.0 - torch.clamp(v, max=1.0))

    s_screen = torch.clamp(strength(sr, sg, sb), min=STRENGTH_FLOOR)
    s_plate = strength(pr, pg, pb)
    lo, hi = LOCAL_OPAQUE
    solid = _ramp(k_max, lo, hi)
    clear = _ramp(k_max, LOCAL_CLEAR_KEY, 0.0)
    stack = torch.cat([solid, solid * s_plate, solid * pr, solid * pg, solid * pb, clear], 1)
    means = box_mean(stack, LOCAL_RADIUS)
    share = means[:, 0:1]
    inv_share = 1.0 / torch.clamp(share, min=1e-6)
    s_fg_mean = means[:, 1:2] * inv_share
    s_fg = torch.minimum(s_fg_mean, LOCAL_FG_CAP * s_screen)
    subject = (means[:, 2:3] * inv_share, means[:, 3:4] * inv_share, means[:, 4:5] * inv_share)
    corrected = (s_screen - s_plate) / (s_screen - s_fg)
    plain = 1.0 - s_plate / s_screen
    mix_lo, mix_hi = LOCAL_MIX
    off = _off_the_line(plate_lin, screen_lin, subject)
    trust = _ramp(share, 0.0, LOCAL_FULL) * _ramp(off, mix_hi, mix_lo)
    raw = plain + trust * (corrected - plain)
    other = torch.maximum(pr, pb)
    lead = (other - pg) / torch.clamp(torch.maximum(other, pg), min=LEAD_FLOOR)
    hold_lo, hold_hi = LOCAL_HOLD
    release = (
        trust
        * _ramp(s_fg_mean / s_screen, *LOCAL_RELEASE_SUBJECT)
        * _ramp(corrected, *LOCAL_RELEASE_MIX)
        * _ramp(means[:, 5:6], 0.0, LOCAL_RELEASE_CLEAR)
    )
    hold = _ramp(lead, hold_lo, hold_hi) * (1.0 - release)
    return torch.maximum(raw, hold), k_max


def _ramp(x: torch.Tensor, start: float, full: float) -> torch.Tensor:
    """0 at start, 1 at full (either order), linear between."""
    return torch.clamp((x - start) * (1.0 / (full - start)), 0.0, 1.0)


def evidence_radius(rules: KeyRules | None) -> int:
    """How far the colour evidence reaches beyond its pixel: LOCAL_RADIUS for "local", else 0."""
    return LOCAL_RADIUS if rules is not None and rules.strength == "local" else 0


def rules_reach(rules: KeyRules | None) -> int:
    """What the key rules add to a network's receptive radius: the "local" evidence's square
    before the trunk and the detail transfer (detail_scale) after the corrected key."""
    return evidence_radius(rules) + (0 if rules is None else detail_reach(rules.detail_scale))


def flatness(key: torch.Tensor) -> torch.Tensor:
    """1 where the 3x3-averaged key's range over a (2 * EDGE_RADIUS + 1) square is at most
    EDGE_TOLERANCE, 0 from twice that (engine/edge_clip.py's rule; both poolings ignore what lies
    beyond the frame, as its filters do)."""
    k = 2 * EDGE_RADIUS + 1
    key = F.avg_pool2d(key, 3, stride=1, padding=1, count_include_pad=False)
    hi = F.max_pool2d(key, k, stride=1, padding=EDGE_RADIUS)
    lo = -F.max_pool2d(-key, k, stride=1, padding=EDGE_RADIUS)
    return torch.clamp((2.0 * EDGE_TOLERANCE - (hi - lo)) * (1.0 / EDGE_TOLERANCE), 0.0, 1.0)


def colour_evidence(
    plate: torch.Tensor,
    screen: torch.Tensor,
    gate: str = "sum",
    clip: tuple[float, float] = (0.0, 1.0),
    strength: str = "max",
    clip_edges: bool = False,
) -> ColourEvidence:
    """Align to the screen, decode to linear light and compute the key and the gate (see GATES).

    clip (black, white): the raw key at or below black is 0, at or above white 1, linear between:
    the classic keyer's screen and core clean-up (its defaults are 0.05 and 0.95). (0, 1) is the
    plain clamp. strength: "max" or "weighted" (see _strength_of) or "local" (see local_key; it
    reaches LOCAL_RADIUS pixels, see evidence_radius). clip_edges: the key the correction starts from is
    clipped only where the key is flat (faint strands and soft edges keep the plain key); the
    trunk still sees the clipped key. The arithmetic is screen_aligned, srgb_to_linear,
    raw_colour_difference and the gate functions above, per channel (tests check they agree).
    """
    blue = (screen[:, 2:3] > screen[:, 1:2]).to(screen.dtype)
    green = 1.0 - blue
    p = _aligned_channels(plate, blue, green)
    s = _aligned_channels(screen, blue, green)
    pl = tuple(srgb_to_linear(c) for c in p)
    sl = tuple(srgb_to_linear(c) for c in s)
    if strength == "local":
        raw, subject = local_key(pl, sl)
    else:
        ref = torch.clamp(_strength_of(*sl, strength), min=STRENGTH_FLOOR)
        raw = subject = 1.0 - _strength_of(*pl, strength) / ref
    if gate == "ratio":
        g = ratio_gate(pl, sl)
    else:
        g = screen_gate(torch.cat(pl, dim=1), torch.cat(sl, dim=1))
    black, white = clip
    clipped = raw if clip == (0.0, 1.0) else (raw - black) * (1.0 / (white - black))
    key = torch.clamp(clipped, 0.0, 1.0)
    start = key
    if clip_edges and clip != (0.0, 1.0):
        plain = torch.clamp(raw, 0.0, 1.0)
        start = plain + flatness(plain) * (key - plain)
    return ColourEvidence(blue, p, s, screen, raw, key, g, start, subject)


def corrected_key(
    ev: ColourEvidence,
    o: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
    bg_range: float,
    hold_subject: bool,
    hold_clear: bool = False,
    hold_detail: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The outputs from the trunk's 4 channels (alpha correction, bg correction), unaligned.

    o: the 4 channels, or the alpha correction and the 3 bg corrections apart (no concatenation).

    Raising alpha is scaled by the gate; lowering it is phased out over HOLD_WIDTH above a raw
    key of 1 with ``hold_subject``. With ``hold_clear`` it is also phased out where the key is near
    1 and the gate is open (a colour clearly not the screen's, e.g. a light shirt tinted by spill),
    while shadows on the screen (gate shut) may still be lowered. With ``hold_detail`` lowering is
    scaled by 1 - gate everywhere: the half-resolution correction may lower only pixels whose
    colour is the screen's (shadows, grain), never a strand or edge whose colour the full-resolution
    evidence already tells from the screen. The screen colour's correction
    is unaligned and added to the guide as given: the same as correcting the aligned guide and
    unaligning the sum (the swap is exact), one 3-channel split and concatenation fewer.
    """
    delta, bg_o = o if isinstance(o, tuple) else (o[:, :1], None)
    lower = F.relu(-delta)
    if hold_subject:
        lower = lower * torch.clamp((1.0 + HOLD_WIDTH - ev.subject) * (1.0 / HOLD_WIDTH), 0.0, 1.0)
    if hold_clear:
        near_opaque = torch.clamp((ev.subject - CLEAR_FROM) * (1.0 / CLEAR_WIDTH), 0.0, 1.0)
        lower = lower * (1.0 - ev.gate * near_opaque)
    if hold_detail:
        lower = lower * (1.0 - ev.gate)
    alpha = torch.clamp(ev.start + ev.gate * F.relu(delta) - lower, 0.0, 1.0)
    correction = screen_aligned(bg_range * torch.tanh(o[:, 1:] if bg_o is None else bg_o), ev.blue)
    return alpha, torch.clamp(ev.screen_input + correction, 0.0, 1.0)


@dataclass(frozen=True)
class KeyRules:
    """The model options that bound the correction and pick the key it starts from (model.kwargs).

    hold_subject / hold_clear / hold_detail: see corrected_key; gate: one of GATES; clip_black /
    clip_white / clip_edges / strength (one of STRENGTHS): see colour_evidence; detail: how the
    half-resolution correction reaches full resolution (GsKeyNet3, one of DETAILS; GsKeyNet2's head
    is full resolution and takes "bilinear" only); detail_scale: the evidence's detail across edges
    (detail_transfer.restore_detail; 0 = off). Options only: they change no weight, so a
    trained checkpoint can be exported under other rules (`gsrender export --set
    model.kwargs.gate=ratio`).
    """

    hold_subject: bool = False
    hold_clear: bool = False
    gate: str = "sum"
    clip_black: float = 0.0
    clip_white: float = 1.0
    strength: str = "max"
    clip_edges: bool = False
    hold_detail: bool = False
    detail: str = "bilinear"
    detail_scale: int = 0

    def __post_init__(self) -> None:
        for name, allowed in (("gate", GATES), ("strength", STRENGTHS), ("detail", DETAILS)):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"model.kwargs.{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        if not 0.0 <= self.clip_black < self.clip_white <= 1.0:
            raise ValueError(
                "model.kwargs.clip_black and clip_white need 0 <= black < white <= 1, "
                f"got {self.clip_black} and {self.clip_white}"
            )
        if (
            isinstance(self.detail_scale, bool)
            or not isinstance(self.detail_scale, int)
            or not (0 <= self.detail_scale <= MAX_DETAIL_SCALE)
        ):
            raise ValueError(
                f"model.kwargs.detail_scale must be a whole number of pixels, 0 (off) to {MAX_DETAIL_SCALE}, "
                f"got {self.detail_scale!r}"
            )

    @property
    def clip(self) -> tuple[float, float]:
        return (float(self.clip_black), float(self.clip_white))

    @classmethod
    def from_options(cls, hold_subject: bool, options: dict[str, Any]) -> KeyRules:
        """The rules from a network's keyword options; a name that is not a rule is one clear error."""
        unknown = sorted(set(options) - {f.name for f in fields(cls)})
        if unknown:
            known = ", ".join(f.name for f in fields(cls))
            raise ValueError(
                f"model.kwargs.{unknown[0]} is not an option of this network (options: c1, c2, c3, "
                f"head, bg_range, {known})"
            )
        return cls(hold_subject, **options)


class CorrectingKeyer(nn.Module):
    """What GsKeyNet2 and GsKeyNet3 share: GsKeyNet's encoder and decoder over the colour evidence,
    the correction head, and the rules that bound the correction (corrected_key).

    Layers are created in the order GsKeyNet2 always created them, so seeded initialisations
    stay the same; subclasses add their head's inputs between the decoder and add_head().
    """

    stride = STRIDE

    def __init__(
        self,
        c1: int,
        c2: int,
        c3: int,
        d1_out: int,
        bg_range: float,
        rules: KeyRules,
    ) -> None:
        super().__init__()
        self.rules = rules
        self.bg_range = bg_range
        add_encoder(self, EVIDENCE_CHANNELS, c1, c2, c3)
        self.d2a_low = nn.Conv2d(c3, c2, 1, bias=False)
        self.d2a_skip = _conv(c2, c2, k=1)
        self.d2b = _conv(c2, c2)
        self.d1a_low = nn.Conv2d(c2, c1, 1, bias=False)
        self.d1a_skip = _conv(c1, c1, k=1)
        self.d1b = _conv(c1, d1_out)

    def add_head(self, head: int) -> None:
        """Depthwise 3x3, 1x1 mix, 1x1 to (alpha correction, 3 screen-colour corrections)."""
        self.h_dw = nn.Conv2d(head, head, 3, padding=1, groups=head)
        self.h_mix = _conv(head, head, k=1)
        self.h_out = _conv(head, 4, k=1)
        with torch.no_grad():  # start as the colour-difference key: a tiny correction
            self.h_out.weight.mul_(0.01)
            self.h_out.bias.zero_()

    def forward(self, plate: torch.Tensor, screen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.key_from_evidence(self.evidence(plate, screen))

    def key_from_evidence(self, ev: ColourEvidence) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha, screen) from evidence already computed (the trainer's anchor reads its gate too)."""
        raise NotImplementedError

    def evidence(self, plate: torch.Tensor, screen: torch.Tensor) -> ColourEvidence:
        r = self.rules
        return colour_evidence(plate, screen, r.gate, r.clip, r.strength, r.clip_edges)

    def keyed(
        self, ev: ColourEvidence, o: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.rules
        alpha, screen = corrected_key(ev, o, self.bg_range, r.hold_subject, r.hold_clear, r.hold_detail)
        return restore_detail(alpha, ev.start, ev.gate, r.detail_scale), screen

    def predict_alpha(self, plate: torch.Tensor, screen: torch.Tensor) -> torch.Tensor:
        return self.forward(plate, screen)[0]


class GsKeyNet2(CorrectingKeyer):
    """Alpha = colour-difference key + gated correction; local screen colour as GsKeyNet."""

    def __init__(
        self,
        c1: int = 16,
        c2: int = 32,
        c3: int = 64,
        head: int = 16,
        bg_range: float = 0.5,
        hold_subject: bool = False,
        **rules: Any,
    ) -> None:
        """rules: the other KeyRules options (hold_clear, gate, clip_black, clip_white)."""
        super().__init__(c1, c2, c3, c1, bg_range, KeyRules.from_options(hold_subject, rules))
        if self.rules.detail != "bilinear":
            raise ValueError("model.kwargs.detail: GsKeyNet2's head is full resolution (bilinear only)")
        self.h_in_low = nn.Conv2d(c1, head, 1, bias=False)
        self.h_in_x = _conv(EVIDENCE_CHANNELS, head, k=1)
        self.add_head(head)

    def key_from_evidence(self, ev: ColourEvidence) -> tuple[torch.Tensor, torch.Tensor]:
        return self.keyed(ev, deploy_trunk(self, ev.features()))


def receptive_radius(model: GsKeyNet2 | None = None) -> int:
    """The trunk is GsKeyNet's over the colour evidence, plus what the key rules reach (rules_reach)."""
    return _gskey_radius() + rules_reach(None if model is None else model.rules)
