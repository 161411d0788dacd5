"""Any timm network's pooled embedding, configured by timm itself; and the timm networks fdt names.

``timm`` with ``model=NAME`` is ``timm.create_model(NAME, num_classes=0)``: the
network without its classifier, whose output is the pooled pre-logits embedding
(``num_features`` wide). Input size, resize filter, mean and std come from the
model's pretrained config in timm, so no network's numbers are copied into fdt.
The image is resized whole to the input size (fdt never centre-crops, unlike
timm's evaluation transform: a crop drops the borders where inpainting and GAN
artefacts sit). ``model`` may carry a pretrained tag (``resnet50.a1_in1k``);
without one, timm's default tag for the architecture is used.

Weights: ``published`` (or ``imagenet``) reads the file the pretrained config
points at from the library cache (the Hugging Face cache for ``hf_hub_id``
configs, the torch cache for URL ones; see :func:`fdt.models.weights.resolve_published`)
and loads it the way timm does (its checkpoint filter, classifier dropped);
``random`` is a seeded init; a path loads a local state dict through the same
loader (a classifier in it, of any width, is dropped).

Named timm networks are one line each at the bottom of this module.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, ClassVar, Iterator

import torch

from fdt.errors import one_line
from fdt.features_store.errors import ExtractorError
from fdt.features_store.extractors.cnn import RESAMPLING, CNNExtractor, Preprocessing
from fdt.features_store.registry import register_extractor
from fdt.models.weights import WeightsSource, load_state_dict


class TimmExtractor(CNNExtractor):
    """The pooled embedding of any timm network (``timm.create_model(model, num_classes=0)``).

    Parameters
    ----------
    model : str
        A timm model name, optionally with a pretrained tag (``resnet50.a1_in1k``).
    weights : {"published", "imagenet", "random"} or path
        ``published`` (``imagenet`` is the same) reads the model's published weights
        from the timm / Hugging Face cache; ``random`` is a seeded init, stated in every
        output; a path loads a local state-dict file.
    seed, input_size, precision, channels_last, output, input, device
        As for ``vgg16``; ``input_size=None`` means the pretrained config's.
    """

    published_words = ("published", "imagenet")
    default_model: ClassVar[str] = "resnet50"

    def __init__(
        self, model: str | None = None, weights: str = "published", seed: int = 0, input_size: int | str | None = None,
        precision: str = "fp32", channels_last: bool = False, output: str = "features", input: str | None = None, device: str = "cpu",
    ) -> None:
        self.model = model
        super().__init__(
            weights=weights, seed=seed, input_size=input_size, precision=precision, channels_last=channels_last, output=output, input=input, device=device,
        )

    def _model(self) -> str:
        """The timm name: the parameter, or the registered configuration's (``model=None``)."""
        model = self.default_model if self.model is None else self.model
        if not isinstance(model, str) or not model.strip():
            raise ExtractorError(f"{self.name} model must be a timm model name, not {model!r}")
        return model.strip()

    def _pretrained_config(self) -> Any:
        if "_config" not in self.__dict__:
            import timm
            from timm.models import get_pretrained_cfg

            model = self._model()
            if not timm.is_model(model):
                raise ExtractorError(f"{model!r} is not a timm model (timm {timm.__version__}); timm.list_models() lists them")
            config = get_pretrained_cfg(model)
            if config is None:
                raise ExtractorError(f"timm has no pretrained config for {model!r} (timm {timm.__version__})")
            self._config = config
        return self._config

    def published_weights(self) -> WeightsSource:
        config = self._pretrained_config()
        if config.hf_hub_id:
            return WeightsSource(self._model(), hf_repo=config.hf_hub_id, hf_filename=config.hf_hub_filename or "model.safetensors")
        if config.url:
            return WeightsSource(self._model(), url=config.url)
        raise ExtractorError(f"timm publishes no weights file for {self._model()!r}; choose weights=random or weights=PATH")

    def preprocessing(self) -> Preprocessing:
        config = self._pretrained_config()
        interpolation = config.interpolation or "bilinear"
        if interpolation not in RESAMPLING or len(config.mean) != 3:
            raise ExtractorError(f"timm's {self._model()} expects {interpolation} resizing of {len(config.mean)} channels; fdt feeds RGB resized by {', '.join(RESAMPLING)}")
        return Preprocessing(int(config.input_size[-1]), tuple(config.mean), tuple(config.std), interpolation)

    def key_params(self) -> dict[str, Any]:
        config = self.preprocessing()
        return {
            "model": self._model(), "interpolation": config.interpolation, "mean": list(config.mean), "std": list(config.std),
            **super().key_params(),
        }

    @property
    def num_features(self) -> int:
        if "_num_features" not in self.__dict__:
            import timm

            self._pretrained_config()  # an unknown name is refused before timm is asked to build it
            with torch.device("meta"):  # the architecture without allocating or initialising its weights
                self._num_features = int(timm.create_model(self._model(), num_classes=0).num_features)
        return self._width(self._num_features)

    def make_network(self, weights_file: Path | None) -> torch.nn.Module:
        import timm

        if weights_file is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                net = timm.create_model(self._model(), pretrained=False, num_classes=0)
        else:
            if self.weights not in self.published_words:
                load_state_dict(weights_file)  # a file of the user's is read by fdt first: a file that is no state dict is one line
            try:
                # timm's own loader: its checkpoint filter, and the classifier dropped (num_classes=0)
                with _missing_keys() as missing:
                    net = timm.create_model(self._model(), pretrained=True, pretrained_cfg_overlay={"file": str(weights_file)}, num_classes=0)
            except RuntimeError as error:
                raise ExtractorError(f"{weights_file} does not fit timm's {self._model()}: {one_line(error)}") from None
            if missing:
                # dropping the classifier makes timm load non-strictly: a file of another network would leave random weights
                raise ExtractorError(
                    f"{weights_file} does not fit timm's {self._model()}: it lacks {len(missing)} of the network's weights "
                    f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
                )
        return self._sized(net.eval().requires_grad_(False))

    def _sized(self, net: torch.nn.Module) -> torch.nn.Module:
        """``net`` made to take ``input_size`` when that is not the pretrained config's (a ViT's position embedding is resampled).

        Convolutional networks take any size as they are; networks built for one
        size (ViT, Swin, EVA: a patch embedding that checks the size) are resized
        by timm's ``set_input_size``, and a size they cannot take is refused here
        in one line rather than inside the first batch.
        """
        size, native = self._input_size(), self.preprocessing().input_size
        fixed = any(getattr(module, "strict_img_size", False) and getattr(module, "img_size", None) for module in net.modules())
        if size == "native":
            if fixed:
                raise ExtractorError(f"timm's {self._model()} takes images of one size ({native} px): give input_size=N, not native")
            return net
        if size == native:
            return net
        try:
            if hasattr(net, "set_input_size"):
                net.set_input_size(img_size=(size, size))
            with torch.inference_mode():
                net(torch.zeros(1, 3, size, size, device=next(net.parameters()).device))
        except (RuntimeError, AssertionError, ValueError) as error:  # the probe: what timm says of this size
            raise ExtractorError(f"timm's {self._model()} cannot take input_size={size} ({one_line(error)}); its pretrained size is {native}") from None
        return net

    def weights_note(self) -> str:
        identity = self.weights_identity()
        if identity.startswith("random"):
            return f"{self.name}: RANDOM weights ({identity}); these are not {self._model()}'s published features"
        return ""

    def info(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {**super().info(), "timm_version": version("timm"), "model": self._model()}


register_extractor("timm")(TimmExtractor)


@contextlib.contextmanager
def _missing_keys() -> Iterator[list[str]]:
    """The names of network weights timm reported missing from a loaded file (its "Missing keys (...)" record), while the block runs.

    timm logs them at INFO level and loads on; fdt must not extract with weights
    the file did not hold, so the record is collected here and raised by the caller.
    """
    found: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith("Missing keys ("):
                found.extend(message[len("Missing keys (") :].partition(")")[0].split(", "))

    logger = logging.getLogger("timm.models._builder")
    handler, level = Collect(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield found
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def timm_configuration(class_name: str, model: str, doc: str) -> type[TimmExtractor]:
    """A :class:`TimmExtractor` subclass whose ``model`` defaults to ``model`` (named ``class_name`` here, so it pickles)."""
    return type(class_name, (TimmExtractor,), {"default_model": model, "__doc__": doc, "__module__": __name__})


XceptionExtractor = register_extractor("xception")(timm_configuration("XceptionExtractor", "legacy_xception", "Xception (Chollet 2017), timm's legacy_xception"))
ResNet50Extractor = register_extractor("resnet50")(timm_configuration("ResNet50Extractor", "resnet50.tv_in1k", "ResNet50 with torchvision's ImageNet weights (seed 004)"))
DenseNet121Extractor = register_extractor("densenet121")(
    timm_configuration("DenseNet121Extractor", "densenet121.tv_in1k", "DenseNet121 with torchvision's ImageNet weights (seed 002's network for spectra)")
)
