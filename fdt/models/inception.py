"""Inception-v3 cut at pool3, the 2048-d feature space of the FID (Heusel et al. 2017).

torchvision's ``inception_v3`` with its ImageNet weights (``IMAGENET1K_V1``,
ported from TensorFlow) expects pixels scaled to [-1, 1]; torchvision adds a
``transform_input`` step to accept ImageNet-normalised input instead, which is
the same map, so fdt feeds [-1, 1] pixels with that step off.

Published FIDs use pytorch-fid's own port of TensorFlow's 2015 Inception
(``pt_inception-2015-12-05-6726825d.pth``): the same layers with 1008 classes,
average pools that leave padding out of the mean, and a max pool in the last
block. :func:`fid_inception_network` builds that variant from pytorch-fid's own
block classes, so its features are pytorch-fid's.
"""

from __future__ import annotations

import torch
from torch import nn

from fdt.models.backbones import Backbone
from fdt.models.weights import WeightsSource


def inception_v3_network() -> nn.Module:
    """torchvision's Inception-v3 with the auxiliary head its published weights hold.

    Random weights use PyTorch's default init, not torchvision's truncated normal (std 0.1), under which
    activations grow to ~1e7 through the 94 convolutions with untrained batch norms.
    """
    from torchvision.models import inception_v3

    return inception_v3(weights=None, aux_logits=True, transform_input=False, init_weights=False)


def fid_inception_network() -> nn.Module:
    """pytorch-fid's FID Inception (its ``fid_inception_v3`` without the download), for its weights file."""
    from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, num_classes=1008, aux_logits=False, transform_input=False, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


class InceptionPool3(nn.Module):
    """The 2048-d global average pool after ``Mixed_7c`` ("pool3"), before dropout and the classifier."""

    num_features = 2048

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        net.fc = nn.Identity()  # in eval mode the network then returns its flattened pool3
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


MINUS_ONE_TO_ONE = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
INCEPTION_V3 = Backbone(
    inception_v3_network, InceptionPool3,
    WeightsSource("inception_v3", url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"),
    2048, *MINUS_ONE_TO_ONE, 299,
)
FID_INCEPTION = Backbone(
    fid_inception_network, InceptionPool3,
    WeightsSource("inception_v3 (pytorch-fid)", url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"),
    2048, *MINUS_ONE_TO_ONE, 299,
)
"""torchvision's ``IMAGENET1K_V1`` network and pytorch-fid's FID Inception, both read from the torch hub cache."""
