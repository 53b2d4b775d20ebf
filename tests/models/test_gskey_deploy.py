"""GsKeyNetDeploy computes the same function as the GsKeyNet it was built from."""

from __future__ import annotations

import pytest
import torch

from gsrender.models.networks.gskey import GsKeyNet, GsKeyNetDeploy


def _random(seed: int) -> GsKeyNet:
    torch.manual_seed(seed)
    return GsKeyNet().eval()


# The shipped model is GsKeyNet2, which trains in its inference arrangement already.
@pytest.mark.parametrize("make", [lambda: _random(1), lambda: _random(2)], ids=["random1", "random2"])
@pytest.mark.parametrize("shape", [(1, 64, 64), (2, 40, 56), (1, 136, 248)])
def test_deploy_matches_training_form(make, shape):
    net = make()
    deploy = GsKeyNetDeploy(net).eval()
    n, h, w = shape
    g = torch.Generator().manual_seed(h * w)
    plate, screen = torch.rand(n, 3, h, w, generator=g), torch.rand(n, 3, h, w, generator=g)
    with torch.no_grad():
        a0, b0 = net(plate, screen)
        a1, b1 = deploy(plate, screen)
    assert (a0 - a1).abs().max() < 1e-5
    assert (b0 - b1).abs().max() < 1e-5
    assert a0.std() > 1e-4  # a real, non-constant matte, so the comparison means something


def test_deploy_is_cheaper_at_full_resolution():
    """The wide full-resolution 1x1 convolution is gone: it now reads 6 channels, not 25."""
    net = _random(0)
    deploy = GsKeyNetDeploy(net)
    assert net.h_in.in_channels == 16 + 9
    assert deploy.h_in_x.in_channels == 6 and deploy.e1a.in_channels == 6
