"""Frozen backbones that fdt extracts features from, each cut at the layer the literature uses.

A backbone is built with ``weights`` one of ``"imagenet"`` (the published
weights, through the library cache), ``"random"`` (seeded init, an explicit
choice) or a path to a state-dict file. :func:`build_backbone` returns the
network in eval mode together with its weights identity, which the store keeps
with every feature row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from fdt.data import sha256_file
from fdt.features_store.errors import ExtractorError
from fdt.models.weights import WeightsSource, load_state_dict, resolve_published


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


class TimmPooled(nn.Module):
    """A timm model's pooled pre-logits features (``forward_head(pre_logits=True)``)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.num_features = int(net.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(self.net.forward_features(x), pre_logits=True)


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone: its architecture, where its weights live, and its feature head."""

    name: str
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


def _legacy_xception() -> nn.Module:
    import timm

    return timm.create_model("legacy_xception", pretrained=False)


def _inception_v3() -> nn.Module:
    from fdt.models.inception import inception_v3_network

    return inception_v3_network()


def _fid_inception() -> nn.Module:
    from fdt.models.inception import fid_inception_network

    return fid_inception_network()


def _inception_pool3(net: nn.Module) -> nn.Module:
    from fdt.models.inception import InceptionPool3

    return InceptionPool3(net)


def _xception_source() -> WeightsSource:
    url = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-cadene/xception-43020ad28.pth"
    return WeightsSource("xception", url=url)


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
BACKBONES: dict[str, BackboneSpec] = {
    "vgg16": BackboneSpec(
        "vgg16", _vgg16, VGG16FC7, WeightsSource("vgg16", url="https://download.pytorch.org/models/vgg16-397923af.pth"),
        4096, IMAGENET_MEAN, IMAGENET_STD, 224,
    ),
    "mobilenet_v2": BackboneSpec(
        "mobilenet_v2", _mobilenet_v2, MobileNetV2Pooled,
        WeightsSource("mobilenet_v2", url="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"),
        1280, IMAGENET_MEAN, IMAGENET_STD, 224,
    ),
    "xception": BackboneSpec(
        "xception", _legacy_xception, TimmPooled, _xception_source(), 2048, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 299,
    ),
    "inception_v3": BackboneSpec(
        "inception_v3", _inception_v3, _inception_pool3,
        WeightsSource("inception_v3", url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"),
        2048, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 299,
    ),
    "inception_v3_fid": BackboneSpec(
        "inception_v3_fid", _fid_inception, _inception_pool3,
        WeightsSource("inception_v3_fid", url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"),
        2048, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 299,
    ),
}


def weights_identity(name: str, weights: str, seed: int) -> tuple[str, Path | None]:
    """``(identity, file)`` for a weights choice; resolving ``imagenet`` may download or raise."""
    if weights == "random":
        return f"random:seed={seed}", None
    if weights == "imagenet":
        path = resolve_published(BACKBONES[name].published)
        return f"imagenet:sha256:{sha256_file(path)[:16]}", path
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ExtractorError(f"weights must be 'imagenet', 'random' or an existing file, not {weights!r}")
    return f"file:sha256:{sha256_file(path)[:16]}", path


def build_backbone(name: str, weights: str, seed: int, weights_file: Path | None) -> nn.Module:
    """The feature network in eval mode; seeded init is isolated from the global RNG."""
    spec = BACKBONES[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = spec.make()
    if weights != "random":
        assert weights_file is not None
        state = load_state_dict(weights_file)
        try:
            net.load_state_dict(state)
        except RuntimeError as error:
            raise ExtractorError(f"{weights_file} does not fit {name}: {str(error).splitlines()[0]}") from None
    return spec.head(net).eval().requires_grad_(False)
