"""Inception-v3 cut at pool3, the 2048-d feature space of the FID (Heusel et al. 2017).

torchvision's ``inception_v3`` with its ImageNet weights (``IMAGENET1K_V1``,
ported from TensorFlow) expects pixels scaled to [-1, 1]; torchvision adds a
``transform_input`` step to accept ImageNet-normalised input instead, which is
the same map, so fdt feeds [-1, 1] pixels with that step off. The FID's
published numbers use pytorch-fid's own TF port (``pt_inception-2015-12-05``),
whose pooling in three block types differs: these features give FIDs of the
same definition but not the same values.
"""

from __future__ import annotations

import torch
from torch import nn


def inception_v3_network() -> nn.Module:
    """torchvision's Inception-v3 with the auxiliary head its published weights hold.

    Random weights use PyTorch's default init, not torchvision's truncated normal (std 0.1), under which
    activations grow to ~1e7 through the 94 convolutions with untrained batch norms.
    """
    from torchvision.models import inception_v3

    return inception_v3(weights=None, aux_logits=True, transform_input=False, init_weights=False)


class InceptionPool3(nn.Module):
    """The 2048-d global average pool after ``Mixed_7c`` ("pool3"), before dropout and the classifier."""

    num_features = 2048

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        net.fc = nn.Identity()  # in eval mode the network then returns its flattened pool3
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
