"""Square box filters for the key rules: an in-frame mean and a 0/1 map's growth.

Both run as a row pass then a column pass (the same result as the square, 2k operations per
pixel instead of k^2). The mean counts only pixels inside the frame, so a tile that stops at the
frame's edge filters its edge pixels exactly as the whole frame does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over each (2 * radius + 1) square, counting only pixels inside the frame."""
    k = 2 * radius + 1
    x = F.avg_pool2d(x, (1, k), stride=1, padding=(0, radius), count_include_pad=False)
    return F.avg_pool2d(x, (k, 1), stride=1, padding=(radius, 0), count_include_pad=False)


def grow(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """A 0/1 map grown by radius pixels (each square's maximum)."""
    k = 2 * radius + 1
    mask = F.max_pool2d(mask, (1, k), stride=1, padding=(0, radius))
    return F.max_pool2d(mask, (k, 1), stride=1, padding=(radius, 0))
