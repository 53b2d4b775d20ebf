"""The seed experiment's second network: two streams, 256-way alpha classification.

Stream 1 (context): 7x7 conv 64, max-pool 3/2, LRN 5, 1x1 conv 128, 3x3 conv stride 2
128, LRN 5, max-pool 3/2, resize to the input size, 5x5 conv 64. Stream 2 (detail):
1x1 conv 128. Concatenate, 1x1 conv to 256 logits. The seed put a ReLU on the logits,
which stops negative logits from learning; that is fixed here (plain logits).
Alpha is read out as the softmax expectation over the 256 levels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 256


class SeedClassifier(nn.Module):
    """Returns per-pixel logits over 256 alpha levels, shape (N, 256, H, W)."""

    def __init__(self) -> None:
        super().__init__()
        self.s1_conv1 = nn.Conv2d(3, 64, 7, padding=3)
        self.s1_pool1 = nn.MaxPool2d(3, 2, padding=1)
        self.s1_lrn1 = nn.LocalResponseNorm(5)
        self.s1_conv2 = nn.Conv2d(64, 128, 1)
        self.s1_conv3 = nn.Conv2d(128, 128, 3, stride=2, padding=1)
        self.s1_lrn2 = nn.LocalResponseNorm(5)
        self.s1_pool2 = nn.MaxPool2d(3, 2, padding=1)
        self.s1_conv4 = nn.Conv2d(128, 64, 5, padding=2)
        self.s2_conv = nn.Conv2d(3, 128, 1)
        self.head = nn.Conv2d(64 + 128, LEVELS, 1)

    def forward(self, plate: torch.Tensor, screen: torch.Tensor | None = None) -> torch.Tensor:
        h, w = plate.shape[-2:]
        a = torch.relu(self.s1_conv1(plate))
        a = self.s1_lrn1(self.s1_pool1(a))
        a = torch.relu(self.s1_conv2(a))
        a = torch.relu(self.s1_conv3(a))
        a = self.s1_pool2(self.s1_lrn2(a))
        a = F.interpolate(a, size=(h, w), mode="bilinear", align_corners=False)
        a = torch.relu(self.s1_conv4(a))
        b = torch.relu(self.s2_conv(plate))
        return self.head(torch.cat([a, b], dim=1))

    def predict_alpha(self, plate: torch.Tensor, screen: torch.Tensor | None = None) -> torch.Tensor:
        probs = torch.softmax(self.forward(plate, screen), dim=1)
        levels = torch.linspace(0.0, 1.0, LEVELS, device=plate.device, dtype=probs.dtype)
        return (probs * levels.view(1, -1, 1, 1)).sum(dim=1, keepdim=True)
