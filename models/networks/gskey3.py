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

from .gskey import _up
from .gskey2 import CorrectingKeyer, KeyRules


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

    def forward(self, plate: torch.Tensor, screen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ev = self.evidence(plate, screen)
        r = torch.relu
        e1 = r(self.e1b(r(self.e1a(ev.features()))))
        e2 = r(self.e2b(r(self.e2a(e1))))
        e3 = r(self.e3c(r(self.e3b(r(self.e3a(e2))))))
        d2 = r(self.d2b(r(self.d2a_skip(e2) + _up(self.d2a_low(e3)))))
        d1 = r(self.d1b(r(self.d1a_skip(e1) + _up(self.d1a_low(d2)))))
        return self.keyed(ev, _up(self.h_out(r(self.h_mix(r(self.h_dw(d1)))))))


def receptive_radius(model: GsKeyNet3 | None = None) -> int:
    """GsKeyNet's walk up to d1b (61 + 8 + 4 + 4 + 2), then the half-resolution head.

    The depthwise 3x3 at half resolution reaches 2 full-resolution pixels and the final
    upsample one half-resolution pixel (2 full-resolution pixels).
    """
    return 61 + 8 + 4 + 4 + 2 + 2 + 2
