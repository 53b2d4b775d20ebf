"""GsKeyNet3: GsKeyNet2 with its correction predicted at half resolution, for CPU speed.

GsKeyNet2 spent about a third of a 1080p frame in its full-resolution head: a 16-channel
1x1 convolution of the inputs, the upsampled decoder features added to it, a depthwise 3x3, two
more 1x1 convolutions, all over 16 full-resolution channels, which put the default keyer at 2.5x
the classic keyer's time on the CPU (the budget is 2x). The detail of the key does not come from
that head: it comes from the colour-difference key, computed per pixel at full resolution, and
from the per-pixel gate and hold rules that bound the correction. So here the same head runs on
the half-resolution decoder output, and its four channels (alpha correction, screen colour
correction) are upsampled bilinearly before the full-resolution rules apply them:

    alpha = clamp(key + gate * relu(up(delta)) - hold * relu(-up(delta)))

Everything at full resolution is per pixel except the one 4-channel upsample. Same inputs,
outputs, encoding and screen alignment as GsKeyNet2; the encoder and decoder layers have the same
names and shapes, so a GsKeyNet2 checkpoint initialises all but the head's input layers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .gskey import _up
from .gskey2 import ColourEvidence, CorrectingKeyer, KeyRules, rules_reach

GUIDED_EPS = 1e-3  # the guided upsampling's regulariser (key variance units): flat key -> plain upsample


def _box3(x: torch.Tensor) -> torch.Tensor:
    """3x3 mean that ignores what lies beyond the frame (a tile stopping at the frame edge agrees)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def guided_up(delta: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """The half-resolution correction brought to full resolution along the full-resolution key.

    A fast guided filter: at half resolution the correction is fitted as a * key + b over 3x3
    windows (the key 2x2-averaged), a and b are averaged and upsampled bilinearly, and applied to
    the full-resolution key. Where the key is flat this is the correction's twice 3x3-averaged
    upsample; where the key resolves a strand or an edge the correction follows it instead of
    smearing across it.
    """
    g = F.avg_pool2d(guide, 2)
    mg, md = _box3(g), _box3(delta)
    a = (_box3(g * delta) - mg * md) / (_box3(g * g) - mg * mg + GUIDED_EPS)
    b = md - a * mg
    return _up(_box3(a)) * guide + _up(_box3(b))


class GsKeyNet3(CorrectingKeyer):
    """Alpha = colour-difference key + gated correction predicted at half resolution."""

    def __init__(
        self,
        c1: int = 16,
        c2: int = 32,
        c3: int = 64,
        head: int = 16,
        bg_range: float = 0.5,
        hold_subject: bool = True,
        **rules: Any,
    ) -> None:
        """rules: the other KeyRules options (hold_clear, gate, clip_black, clip_white)."""
        super().__init__(c1, c2, c3, head, bg_range, KeyRules.from_options(hold_subject, rules))
        self.add_head(head)

    def key_from_evidence(self, ev: ColourEvidence) -> tuple[torch.Tensor, torch.Tensor]:
        r = torch.relu
        e1 = r(self.e1b(r(self.e1a(ev.features()))))
        e2 = r(self.e2b(r(self.e2a(e1))))
        e3 = r(self.e3c(r(self.e3b(r(self.e3a(e2))))))
        d2 = r(self.d2b(r(self.d2a_skip(e2) + _up(self.d2a_low(e3)))))
        d1 = r(self.d1b(r(self.d1a_skip(e1) + _up(self.d1a_low(d2)))))
        return self.keyed(ev, self.full_resolution(ev, self.h_out(r(self.h_mix(r(self.h_dw(d1)))))))

    def full_resolution(
        self, ev: ColourEvidence, o: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The head's half-resolution output upsampled (model.kwargs.detail: bilinear or guided)."""
        if self.rules.detail == "guided":
            return guided_up(o[:, :1], ev.start), _up(o[:, 1:])
        return _up(o)


def receptive_radius(model: GsKeyNet3 | None = None) -> int:
    """GsKeyNet's walk up to d1b (61 + 8 + 4 + 4 + 2), then the half-resolution head.

    The depthwise 3x3 at half resolution reaches 2 full-resolution pixels and the final
    upsample one half-resolution pixel (2 full-resolution pixels). The guided upsampling's two
    3x3 means at half resolution add 4 full-resolution pixels; the clip_edges flatness square
    (engine/edge_clip.py's radius 3) lies on the per-pixel path, beside the trunk, and is shorter.
    The "local" evidence's square before the trunk and the detail transfer after it add what
    they reach (gskey2.rules_reach).
    """
    rules = None if model is None else model.rules
    guided = rules is not None and rules.detail == "guided"
    return 61 + 8 + 4 + 4 + 2 + 2 + 2 + (4 if guided else 0) + rules_reach(rules)
