"""A CNN detector: the network of a CNN extractor with a new real-vs-fake head, and its file.

``fdt models finetune`` (:mod:`fdt.models.finetune`) trains one; the CNN
extractors load its file with ``weights=PATH`` and give either the backbone's
penultimate features (``output=features``, for any scikit-learn head: seed 004's
CNN + SVM) or the head's logit (``output=logit``, the network's own score: seed
002's "direct approach").

The model file (``format: "fdt.finetuned"``, ``format_version: 1``) is a torch
file of tensors and plain data only, read with ``torch.load(weights_only=True)``
so opening it never runs code. It holds the detector's state dict and what is
needed to use it exactly as trained: backbone (the extractor's name, and the
timm model for ``timm``), input kind (pixels or spectrum),
input side, normalisation, the resolution step of training, the weights it
started from, and the fingerprint of its training record (``<file>.training.json``,
:mod:`fdt.grouping`), which evaluation reads to refuse scoring the groups it
trained on.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from fdt.data import sha256_file
from fdt.errors import FdtError
from fdt.models.inputs import NetworkInput
from fdt.torch_files import read_format_file

FORMAT = "fdt.finetuned"
FORMAT_VERSION = 1
CLASSES = ("real", "fake")
"""Label 0 and 1; the logit is that of ``fake``."""


class DetectorError(FdtError, ValueError):
    """A detector cannot be built, trained or loaded as asked; the message says why in one line."""


class DetectorFormatError(DetectorError):
    """A file is not an fdt fine-tuned detector of a version this fdt reads."""


class Detector(nn.Module):
    """Backbone features -> dropout -> one linear unit: the logit that an image is fake.

    The head replaces the backbone's ImageNet classifier, as in transfer learning
    (seed 001's Keras models: frozen base, dropout, a dense unit).
    """

    def __init__(self, body: nn.Module, num_features: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.body = body
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(num_features, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's penultimate features ``(n, num_features)``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, 1)``: positive means fake."""
        return self.head(self.dropout(self.body(x)))


def build_detector(body: nn.Module, num_features: int, seed: int, dropout: float = 0.2) -> Detector:
    """A detector on a frozen feature network ``body`` (an extractor's network), its new head seeded by ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return Detector(body, num_features, dropout)


def backbone_blocks(detector: Detector) -> list[list[nn.Parameter]]:
    """The backbone's parameters grouped in blocks, input side first: what ``--unfreeze K`` counts from the end.

    Blocks are the architecture's own stages: VGG16's five conv stages then fc6
    and fc7; MobileNetV2's 19 feature blocks; a timm network's groups from its
    ``group_matcher`` (Xception: entry convs, twelve blocks, exit convs; ResNet50:
    stem and four stages; DenseNet121: stem and four dense blocks); any other
    network's top-level modules that hold parameters.
    """
    net = detector.body
    if hasattr(net, "vgg"):
        stages: list[list[nn.Parameter]] = [[]]
        for layer in net.vgg.features:
            stages[-1] += list(layer.parameters())
            if isinstance(layer, nn.MaxPool2d):
                stages.append([])
        return [s for s in stages if s] + [list(net.vgg.classifier[0].parameters()), list(net.vgg.classifier[3].parameters())]
    inner = getattr(net, "net", net)
    if hasattr(inner, "group_matcher"):
        return _timm_blocks(inner)
    if hasattr(inner, "features") and isinstance(inner.features, nn.Sequential):
        return [params for block in inner.features if (params := list(block.parameters()))]
    return [params for child in inner.children() if (params := list(child.parameters()))]


def _timm_blocks(model: nn.Module) -> list[list[nn.Parameter]]:
    from timm.models import group_parameters

    named = dict(model.named_parameters())
    unused = {id(p) for p in model.get_classifier().parameters()}  # a classifier the new head replaces
    groups = group_parameters(model, model.group_matcher(coarse=True))
    blocks = ([named[name] for name in names if id(named[name]) not in unused] for _, names in sorted(groups.items()))
    return [block for block in blocks if block]


def network_input(state: dict[str, Any]) -> NetworkInput:
    """The input transform a detector file was trained with."""
    return NetworkInput(state["input"], state["input_size"], tuple(state["mean"]), tuple(state["std"]), state.get("interpolation", "bilinear"))


# --------------------------------------------------------------------------- files


def read_detector_file(path: str | os.PathLike) -> dict[str, Any]:
    """The checked contents of a detector file (metadata and ``state_dict``)."""
    retrain = f"train one with: fdt models finetune DATA --backbone NAME --real SOURCES --out {path}"
    return read_format_file(path, FORMAT, FORMAT_VERSION, "fine-tuned model", retrain, DetectorFormatError, mmap=True)


def is_detector_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an fdt fine-tuned detector file (any other file, or none, is not)."""
    try:
        read_detector_file(path)
    except DetectorFormatError:
        return False
    return True


def detector_identity(path: str | os.PathLike) -> str:
    """The weights identity of a detector file: ``finetuned:sha256:<16 hex>``, led by ``random:`` when it started from random weights.

    Reports flag identities that start with ``random``, so a network fine-tuned
    from random initial weights is never mistaken for one built on ImageNet.
    """
    start = str(read_detector_file(path)["start_weights"])
    identity = f"finetuned:sha256:{sha256_file(path)[:16]}"
    return f"random:{identity}" if start.startswith("random") else identity


def load_detector(path: str | os.PathLike, body: nn.Module, device: str | torch.device = "cpu") -> tuple[Detector, dict[str, Any]]:
    """The detector of a file on ``body`` (its backbone's architecture, as the extractor builds it), in eval mode, and the file's metadata."""
    state = read_detector_file(path)
    head = state["state_dict"].get("head.weight")
    if head is None or head.dim() != 2:
        raise DetectorFormatError(f"{path} is a damaged fdt fine-tuned model file (no head weights)")
    detector = Detector(body, int(head.shape[1]), float(state["dropout"]))
    try:
        detector.load_state_dict(state["state_dict"])
    except RuntimeError as error:
        raise DetectorFormatError(f"{path} does not fit a {state['backbone']} detector: {str(error).splitlines()[0]}") from None
    meta = {k: v for k, v in state.items() if k != "state_dict"}
    return detector.to(device).eval().requires_grad_(False), meta
