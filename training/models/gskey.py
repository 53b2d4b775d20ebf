"""GsKeyNet: the shipped keyer. Small, fully convolutional, tile-invariant.

Inputs (network encoding, see gsrender.engine.encoding): the plate and the per-frame
smooth screen estimate, both (N, 3, H, W) with H and W multiples of STRIDE.
Outputs: alpha (N, 1, H, W) in [0, 1] and the local clean-screen colour behind the
subject, bg (N, 3, H, W), encoded, as a bounded correction of the screen guide.

Why these outputs: with alpha and the local screen colour B the premultiplied
foreground is exact and needs no division: aF = I - (1 - alpha) B, computed in linear
light by the engine from the untouched plate, so HDR values survive and the network
never has to reproduce colour detail.

Why this shape: a U-Net with three stride-2 levels does the context work at 1/2..1/8
resolution; the full-resolution head only mixes upsampled context with the raw
inputs (1x1, depthwise 3x3, 1x1), which keeps hair detail at ~5 GMAC per megapixel.
No normalisation layers and no global pooling: the output at a pixel depends only on
a bounded window of input (RECEPTIVE_RADIUS), so tiles with a halo assemble exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STRIDE = 8


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=dilation * (k // 2), dilation=dilation)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class GsKeyNet(nn.Module):
    """Alpha + local screen colour from plate + screen guide."""

    stride = STRIDE

    def __init__(
        self, c1: int = 16, c2: int = 32, c3: int = 64, head: int = 16, bg_range: float = 0.5
    ) -> None:
        super().__init__()
        self.bg_range = bg_range
        self.e1a = _conv(9, c1, stride=2)
        self.e1b = _conv(c1, c1)
        self.e2a = _conv(c1, c2, stride=2)
        self.e2b = _conv(c2, c2)
        self.e3a = _conv(c2, c3, stride=2)
        self.e3b = _conv(c3, c3, dilation=2)
        self.e3c = _conv(c3, c3, dilation=4)
        self.d2a = _conv(c3 + c2, c2, k=1)
        self.d2b = _conv(c2, c2)
        self.d1a = _conv(c2 + c1, c1, k=1)
        self.d1b = _conv(c1, c1)
        self.h_in = _conv(c1 + 9, head, k=1)
        self.h_dw = nn.Conv2d(head, head, 3, padding=1, groups=head)
        self.h_mix = _conv(head, head, k=1)
        self.h_out = _conv(head, 4, k=1)

    def forward(self, plate: torch.Tensor, screen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([plate, screen, plate - screen], dim=1)
        r = torch.relu
        e1 = r(self.e1b(r(self.e1a(x))))
        e2 = r(self.e2b(r(self.e2a(e1))))
        e3 = r(self.e3c(r(self.e3b(r(self.e3a(e2))))))
        d2 = r(self.d2b(r(self.d2a(torch.cat([_up(e3), e2], dim=1)))))
        d1 = r(self.d1b(r(self.d1a(torch.cat([_up(d2), e1], dim=1)))))
        h = r(self.h_in(torch.cat([_up(d1), x], dim=1)))
        h = r(self.h_mix(r(self.h_dw(h))))
        o = self.h_out(h)
        alpha = torch.clamp(o[:, :1] + 0.5, 0.0, 1.0)
        bg = torch.clamp(screen + self.bg_range * torch.tanh(o[:, 1:]), 0.0, 1.0)
        return alpha, bg

    def predict_alpha(self, plate: torch.Tensor, screen: torch.Tensor) -> torch.Tensor:
        return self.forward(plate, screen)[0]


def receptive_radius(model: GsKeyNet | None = None) -> int:
    """Input pixels on each side that can influence one output pixel (upper bound).

    Walks the layers in order, accumulating (kernel_extent - 1) / 2 * stride_so_far,
    plus one low-resolution pixel per bilinear upsample.
    """
    r = 0.0
    # encoder: (kernel radius in its own pixels incl. dilation, stride of its input grid)
    for k_rad, s in [(1, 1), (1, 2), (1, 2), (1, 4), (1, 4), (2, 8), (4, 8)]:
        r += k_rad * s
    r += 1 * 8  # upsample 1/8 -> 1/4
    r += 1 * 4  # d2b
    r += 1 * 4  # upsample 1/4 -> 1/2
    r += 1 * 2  # d1b
    r += 1 * 2  # upsample 1/2 -> 1
    r += 1  # depthwise 3x3
    return int(r)
