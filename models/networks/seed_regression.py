"""The seed experiment's first network, kept as a reproducible baseline.

5x5 conv 32 ReLU -> max over channel pairs (32 -> 16) -> 1x1 conv 32 ReLU ->
3x3 conv 16 ReLU -> 1x1 conv 1 sigmoid, trained by per-pixel regression on RGB only.
"""

from __future__ import annotations

import torch
from torch import nn


class SeedRegression(nn.Module):
    """Per-pixel alpha regression from the encoded RGB plate (no guides)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 1)
        self.conv3 = nn.Conv2d(32, 16, 3, padding=1)
        self.conv4 = nn.Conv2d(16, 1, 1)

    def forward(self, plate: torch.Tensor, screen: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.relu(self.conv1(plate))
        n, c, h, w = x.shape
        x = x.view(n, c // 2, 2, h, w).amax(dim=2)  # max-pool over channels, stride 2
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        return torch.sigmoid(self.conv4(x))

    def predict_alpha(self, plate: torch.Tensor, screen: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward(plate, screen)
