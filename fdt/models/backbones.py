"""torchvision backbones that fdt extracts features from, each cut at the layer the literature uses.

A :class:`Backbone` says how to build the network, where its published weights
live and how its inputs are normalised; the extractor that uses it
(:mod:`fdt.features_store.extractors.cnn`) owns its name. Networks from timm need
no entry here: their configuration comes from timm itself
(:mod:`fdt.features_store.extractors.timm_models`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from fdt.errors import one_line
from fdt.features_store.errors import ExtractorError
from fdt.models.weights import WeightsSource, load_state_dict


class VGG16FC7(nn.Module):
    """VGG16 up to fc7: the second 4096-d fully connected layer after its ReLU (dropout off in eval)."""

    num_features = 4096

    def __init__(self, vgg: nn.Module) -> None:
        super().__init__()
        self.vgg = vgg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.vgg.avgpool(self.vgg.features(x))
        return self.vgg.classifier[:5](torch.flatten(x, 1))


class MobileNetV2Pooled(nn.Module):
    """MobileNetV2's 1280-d globally average-pooled embedding, before the classifier's dropout."""

    num_features = 1280

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.net.features(x), 1), 1)


@dataclass(frozen=True)
class Backbone:
    """How to build one backbone: its architecture, its feature head, where its weights live, what it expects."""

    make: Callable[[], nn.Module]
    head: Callable[[nn.Module], nn.Module]
    published: WeightsSource
    num_features: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int


def _vgg16() -> nn.Module:
    from torchvision.models import vgg16

    return vgg16(weights=None)


def _mobilenet_v2() -> nn.Module:
    from torchvision.models import mobilenet_v2

    return mobilenet_v2(weights=None)


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
VGG16 = Backbone(
    _vgg16, VGG16FC7, WeightsSource("vgg16", url="https://download.pytorch.org/models/vgg16-397923af.pth"), 4096, IMAGENET_MEAN, IMAGENET_STD, 224
)
MOBILENET_V2 = Backbone(
    _mobilenet_v2, MobileNetV2Pooled, WeightsSource("mobilenet_v2", url="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"),
    1280, IMAGENET_MEAN, IMAGENET_STD, 224,
)


def build_backbone(backbone: Backbone, seed: int, weights_file: Path | None) -> nn.Module:
    """The feature network in eval mode: ``weights_file`` loaded, or a seeded init (isolated from the global RNG) if ``None``.

    Weights from a file replace every value the initialisers would draw, so the
    network is then made without drawing them (:func:`_uninitialised`): VGG16's
    random init cost 1-1.5 s of a 1.5-1.9 s load of its published weights.
    """
    if weights_file is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = backbone.make()
    else:
        state = load_state_dict(weights_file)
        net = _uninitialised(backbone.make)
        try:
            net.load_state_dict(state)  # strict: every value is copied from the file, cast to the network's dtypes
        except RuntimeError as error:
            raise ExtractorError(f"{weights_file} does not fit {backbone.published.name}: {one_line(error)}") from None
    return backbone.head(net).eval().requires_grad_(False)


def _uninitialised(make: Callable[[], nn.Module]) -> nn.Module:
    """The network ``make`` builds, with memory for its weights but no values drawn, for a strict state-dict load to fill.

    It is built on the meta device (shapes only: the initialisers do nothing) and
    given empty CPU memory. A buffer that is not saved in state dicts would keep
    that memory's garbage: a network with one is built and initialised as usual.
    """
    with torch.device("meta"):
        net = make()
    saved = set(net.state_dict())
    named = [name for name, _ in net.named_parameters()] + [name for name, _ in net.named_buffers()]
    if any(name not in saved for name in named):
        with torch.random.fork_rng(devices=[]):  # its draws are overwritten: they leave the global RNG as it was
            return make()
    return net.to_empty(device="cpu")
