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


def add_encoder(net: nn.Module, cin: int, c1: int, c2: int, c3: int) -> None:
    """The three stride-2 levels (e1a..e3c) both keyers share; the last two dilated for context.

    Created in this order so a seeded initialisation draws the same weights as before.
    """
    net.e1a = _conv(cin, c1, stride=2)
    net.e1b = _conv(c1, c1)
    net.e2a = _conv(c1, c2, stride=2)
    net.e2b = _conv(c2, c2)
    net.e3a = _conv(c2, c3, stride=2)
    net.e3b = _conv(c3, c3, dilation=2)
    net.e3c = _conv(c3, c3, dilation=4)


class GsKeyNet(nn.Module):
    """Alpha + local screen colour from plate + screen guide."""

    stride = STRIDE

    def __init__(
        self, c1: int = 16, c2: int = 32, c3: int = 64, head: int = 16, bg_range: float = 0.5
    ) -> None:
        super().__init__()
        self.bg_range = bg_range
        add_encoder(self, 9, c1, c2, c3)
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


class GsKeyNetDeploy(nn.Module):
    """The function of a trained GsKeyNet, rearranged so inference does less work.

    Two exact identities (exact up to float rounding), applied at export time:
    - the input concatenation [plate, screen, plate - screen] feeds only linear layers, so
      it folds into their weights: they read [plate, screen] (6 channels, no Sub);
    - a 1x1 convolution of [upsample(low), skip] equals upsample(W_low * low) + W_skip * skip,
      because bilinear upsampling is linear per channel and the bias goes on the skip path.
      The low-resolution half then runs at a quarter (or sixteenth) of the pixels and the
      wide full-resolution concatenations disappear.
    Weights are copied, so training keeps the plain, readable GsKeyNet.
    """

    stride = STRIDE

    def __init__(self, net: GsKeyNet) -> None:
        super().__init__()
        self.bg_range = net.bg_range
        c1 = net.e1b.out_channels
        c2 = net.e2b.out_channels
        self.e1a = _fold_input_triplet(net.e1a)
        self.e1b, self.e2a, self.e2b = net.e1b, net.e2a, net.e2b
        self.e3a, self.e3b, self.e3c = net.e3a, net.e3b, net.e3c
        self.d2a_low, self.d2a_skip = _split_concat_conv(net.d2a, net.d2a.in_channels - c2)
        self.d2b = net.d2b
        self.d1a_low, self.d1a_skip = _split_concat_conv(net.d1a, net.d1a.in_channels - c1)
        self.d1b = net.d1b
        h_low, h_in = _split_concat_conv(net.h_in, net.h_in.in_channels - 9)
        self.h_in_low = h_low
        self.h_in_x = _fold_input_triplet(h_in)
        self.h_dw, self.h_mix, self.h_out = net.h_dw, net.h_mix, net.h_out

    def forward(self, plate: torch.Tensor, screen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        o = deploy_trunk(self, torch.cat([plate, screen], dim=1))
        alpha = torch.clamp(o[:, :1] + 0.5, 0.0, 1.0)
        bg = torch.clamp(screen + self.bg_range * torch.tanh(o[:, 1:]), 0.0, 1.0)
        return alpha, bg


def deploy_trunk(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The U-Net in its inference arrangement, input features -> the last convolution's output.

    Shared by GsKeyNetDeploy and GsKeyNet2 (which trains in this arrangement): both name their
    layers alike (e1a..e3c, d2a_low/_skip, d2b, d1a_low/_skip, d1b, h_in_low/_x, h_dw, h_mix, h_out).
    """
    r = torch.relu
    e1 = r(net.e1b(r(net.e1a(x))))
    e2 = r(net.e2b(r(net.e2a(e1))))
    e3 = r(net.e3c(r(net.e3b(r(net.e3a(e2))))))
    d2 = r(net.d2b(r(net.d2a_skip(e2) + _up(net.d2a_low(e3)))))
    d1 = r(net.d1b(r(net.d1a_skip(e1) + _up(net.d1a_low(d2)))))
    h = r(net.h_in_x(x) + _up(net.h_in_low(d1)))
    h = r(net.h_mix(r(net.h_dw(h))))
    return net.h_out(h)


def _fold_input_triplet(conv: nn.Conv2d) -> nn.Conv2d:
    """A conv over [plate, screen, plate - screen] as the same conv over [plate, screen]."""
    w = conv.weight.detach()
    wp, ws, wd = w[:, 0:3], w[:, 3:6], w[:, 6:9]
    folded = nn.Conv2d(
        6, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
        dilation=conv.dilation, bias=conv.bias is not None,
    )  # fmt: skip
    with torch.no_grad():
        folded.weight.copy_(torch.cat([wp + wd, ws - wd], dim=1))
        if conv.bias is not None:
            folded.bias.copy_(conv.bias)
    return folded


def _split_concat_conv(conv: nn.Conv2d, low_channels: int) -> tuple[nn.Conv2d, nn.Conv2d]:
    """A 1x1 conv over [low, skip] as (low conv without bias, skip conv with the bias)."""
    assert conv.kernel_size == (1, 1), "only 1x1 convolutions commute with upsampling"
    w = conv.weight.detach()
    low = nn.Conv2d(low_channels, conv.out_channels, 1, bias=False)
    skip = nn.Conv2d(conv.in_channels - low_channels, conv.out_channels, 1, bias=conv.bias is not None)
    with torch.no_grad():
        low.weight.copy_(w[:, :low_channels])
        skip.weight.copy_(w[:, low_channels:])
        if conv.bias is not None:
            skip.bias.copy_(conv.bias)
    return low, skip
