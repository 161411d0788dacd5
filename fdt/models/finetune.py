"""Transfer learning of a CNN detector on real-vs-fake images: ``fdt models finetune``.

The recipe of seed studies 001, 002 and 004, done so that its results can be
evaluated honestly:

- **Two stages** (seed 001): a new head (dropout + one linear unit) on the frozen
  pretrained backbone for ``epochs``; then, optionally, the last ``unfreeze``
  blocks of the backbone (:func:`fdt.models.detector.backbone_blocks`) trained
  too, at ``finetune_lr``, for ``finetune_epochs``. The backbone stays in eval
  mode throughout, so batch-norm statistics stay as pretrained (as Keras'
  transfer-learning guide, which seed 001 followed, keeps them).
- **Only the train share.** Images are assigned to train/val/test by
  :func:`fdt.grouping.assign_groups` with the seed and shares ``fdt tune`` and
  ``fdt report`` use; only train-share groups are read. Early stopping watches
  the loss on a grouped split *of the train share* (``val_share`` of its
  groups), never the val or test groups reports score. The groups and images
  used are written to ``<out>.training.json``; extractors that use the file carry
  a reference to it, and evaluation refuses to score those groups
  (:mod:`fdt.pipelines.leakage`).
- **Augmentation** (:mod:`fdt.models.augment`) in training only, seeded per image and epoch.
- **Early stopping** on validation loss with ``patience``; the file holds the
  weights of the best validation epoch.
- **Exact resume.** All randomness of an epoch (shuffling, dropout,
  augmentation) is drawn from generators seeded by ``(seed, epoch)``, and a
  checkpoint ``<out>.ckpt`` (:class:`fdt.checkpoints.Checkpoint`, kind
  ``finetune``) is written atomically after every epoch, so a run interrupted at
  any moment and started again ends with the same weights as an uninterrupted
  one (bit-identical on CPU). Only more epochs may differ from the checkpoint's
  settings: they continue it.
- **Curves** as CSV, PNG and TensorBoard events (:mod:`fdt.models.curves`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from fdt import __version__
from fdt.checkpoints import START_OVER, Checkpoint, CheckpointMismatchError, save_atomic
from fdt.devices import resolve_device
from fdt.data import DataError, ImageDecodeError, ImageRecord, apply_resolution, load_rgb, parse_resolution, sha256_file
from fdt.grouping import assign_groups, group_of, training_record, write_training_record
from fdt.models.augment import Augmentation, augment, parse_augmentations
from fdt.models.autoencoder import _deterministic_cudnn, _progress_bar
from fdt.models import curves
from fdt.models.detector import CLASSES, FORMAT, FORMAT_VERSION, Detector, DetectorError, backbone_blocks, build_detector
from fdt.models.inputs import INPUTS, NetworkInput

CHECKPOINT_KIND = "finetune"
logger = logging.getLogger(__name__)


class FinetuneCheckpointError(CheckpointMismatchError, DetectorError):
    """A checkpoint has more epochs of a stage than the settings ask for."""


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that decides the weights a fine-tuning run ends with (all but device, workers and progress).

    ``unfreeze``: how many of the backbone's last blocks stage 2 trains (-1: all).
    ``split``: ``{"seed": S, "fractions": [train, val, test]}``, or ``None`` to train on every image.
    """

    backbone: str
    weights: str = "imagenet"
    input: str = "pixels"
    input_size: int | None = None
    resolution: str = "native"
    epochs: int = 10
    finetune_epochs: int = 0
    unfreeze: int = 0
    lr: float = 1e-3
    finetune_lr: float = 1e-4
    batch_size: int = 32
    dropout: float = 0.2
    patience: int = 3
    val_share: float = 0.1
    augment: tuple[str, ...] = ()
    class_weight: str = "balanced"
    seed: int = 0
    split: dict[str, Any] | None = None

    def check(self) -> tuple[Augmentation, ...]:
        """Refuse impossible settings with one line; the parsed augmentations."""
        if self.input not in INPUTS:
            raise DetectorError(f"input must be one of {', '.join(INPUTS)}, not {self.input!r}")
        if self.input_size is not None and self.input_size < 32:
            raise DetectorError(f"input size must be at least 32 pixels, not {self.input_size}")
        if self.epochs < 1 or self.finetune_epochs < 0 or self.batch_size < 1 or self.patience < 0:
            raise DetectorError("epochs and batch size must be at least 1, fine-tune epochs and patience at least 0")
        if not (self.lr > 0 and self.finetune_lr > 0):
            raise DetectorError(f"learning rates must be positive, not {self.lr} and {self.finetune_lr}")
        if not 0 <= self.dropout < 1:
            raise DetectorError(f"dropout must be in [0, 1), not {self.dropout}")
        if not 0 < self.val_share < 1:
            raise DetectorError(f"the validation share of the train groups must be in (0, 1), not {self.val_share}")
        if self.unfreeze < -1:
            raise DetectorError(f"unfreeze takes a number of blocks, or -1 for all, not {self.unfreeze}")
        if self.class_weight not in ("balanced", "none"):
            raise DetectorError(f"class weight must be balanced or none, not {self.class_weight!r}")
        parse_resolution(self.resolution)
        return parse_augmentations(self.augment)


@dataclass
class _Rows:
    """The images one part of the run reads."""

    paths: list[str]
    sha256: list[str]
    labels: np.ndarray
    groups: list[str]
    sources: list[str]

    def subset(self, mask: np.ndarray) -> "_Rows":
        keep = np.flatnonzero(mask)
        return _Rows([self.paths[i] for i in keep], [self.sha256[i] for i in keep], self.labels[keep], [self.groups[i] for i in keep], [self.sources[i] for i in keep])


class _Images(torch.utils.data.Dataset):
    """Decoded, resolution-stepped, (in training) augmented network inputs with their labels."""

    def __init__(self, rows: _Rows, resolution: str, transform: NetworkInput, steps: Sequence[Augmentation], seed: int) -> None:
        self.rows, self.resolution, self.transform, self.steps, self.seed = rows, resolution, transform, tuple(steps), seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.rows.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sha = self.rows.sha256[index]
        image = apply_resolution(load_rgb(self.rows.paths[index]), self.resolution, sha)
        image = augment(image, self.steps, self.seed, self.epoch, sha)
        return torch.from_numpy(self.transform(image)), torch.tensor(float(self.rows.labels[index]))


def finetune(
    records: Sequence[ImageRecord],
    out: str | os.PathLike,
    config: FinetuneConfig,
    device: str = "cpu",
    workers: int = 0,
    resume: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune a detector on labelled ``records`` and write its model file ``out``; the file's ``training`` summary.

    Also writes ``<out>.training.json`` (the groups and images of the train share
    it read), ``<out>.ckpt`` (kept, so a later run with more epochs continues; pass
    ``resume=False`` to start over) and the curves ``<stem>.curves.csv`` / ``.png`` /
    ``<stem>.tensorboard/``.
    """
    out = Path(out)
    steps = config.check()
    target = torch.device(resolve_device(device))
    extractor = backbone_extractor(config.backbone, config.weights, config.seed)
    preprocessing = extractor.preprocessing()
    transform = NetworkInput(
        config.input, config.input_size or preprocessing.input_size, tuple(preprocessing.mean), tuple(preprocessing.std), preprocessing.interpolation
    )
    start_identity, start_file = extractor.resolve_weights()

    rows, skipped = _readable_rows(records, config.resolution, progress)
    train, val, used = _split_rows(rows, config)
    data_sha256 = _data_fingerprint(train, val)
    run = {**_config_dict(config), "data_sha256": data_sha256, "start_weights": start_identity}

    detector = build_detector(extractor.make_network(start_file), extractor.num_features, config.seed, config.dropout).to(target)
    weights = _class_weights(train.labels, config.class_weight)
    loaders = {
        "train": _Images(train, config.resolution, transform, steps, config.seed),
        "val": _Images(val, config.resolution, transform, (), config.seed),
    }
    state = _fresh_state(detector)
    # settings that may grow (more epochs continue a run) are checked by stage below, not by the checkpoint
    fixed = {k: v for k, v in run.items() if k not in (*_EXTENDABLE, "data_sha256")}
    total = config.epochs + config.finetune_epochs
    checkpoint = Checkpoint(
        out.with_name(out.name + ".ckpt"), CHECKPOINT_KIND, fixed, data_sha256, modules={"detector": detector, "training": _TrainingState(state)}
    )
    if resume and checkpoint.path.exists():
        checkpoint.restore(total, target)
        _check_continuable(checkpoint.path, state, config)
    out.parent.mkdir(parents=True, exist_ok=True)

    if not curves.tensorboard_available():
        logger.warning(curves.NO_TENSORBOARD)
    batches = -(-len(train.paths) // config.batch_size)
    bar = _progress_bar(total=total * batches, initial=len(state["history"]) * batches, disable=not progress, unit="batch")
    with bar, _deterministic_cudnn():
        _train_stages(detector, loaders, weights, config, state, lambda: checkpoint.save(len(state["history"]), state["history"]), workers, target, bar)
    detector.load_state_dict(state["best"])
    record = training_record(used.groups, used.sha256, run["split"], data_sha256)
    write_training_record(out, record)
    summary = {
        **run,
        "history": state["history"],
        "best_epoch": state["best_epoch"],
        "best_val_loss": state["best_val"],
        "stopped_early": list(state["stopped"]),
        "num_train": len(train.paths),
        "num_val": len(val.paths),
        "skipped_images": skipped,
    }
    _write_detector_file(detector, extractor, config, transform, start_identity, summary, record["trained_sha256"], out)
    written = curves.write_curves(state["history"], out, f"{out.name}: {config.backbone} on {config.input}" + (" (RANDOM initial weights)" if start_identity.startswith("random") else ""))
    summary["curves"] = [str(p) for p in written]
    return summary


def _train_stages(
    detector: Detector, loaders: dict[str, "_Images"], weights: torch.Tensor, config: FinetuneConfig, state: dict[str, Any],
    save: Any, workers: int, target: torch.device, bar: Any,
) -> None:
    """Run what is left of stage 1 (head only) and stage 2 (last blocks too), updating ``state`` and calling ``save`` after every epoch.

    Early stopping counts epochs without a lower validation loss than the best so
    far; stage 2 starts from the best weights of stage 1, with a new optimiser.
    """
    total = config.epochs + config.finetune_epochs
    for stage, epochs, lr in ((1, config.epochs, config.lr), (2, config.finetune_epochs, config.finetune_lr)):
        done = sum(row["stage"] == stage for row in state["history"])
        if done >= epochs or state["stopped"][stage - 1]:
            continue
        if stage == 2 and state["stage"] == 1:  # stage 2 starts from stage 1's best weights
            detector.load_state_dict(state["best"])
            state["stage"], state["optimizer"], state["bad_epochs"] = 2, None, 0
        optimizer = torch.optim.Adam(_trainable(detector, config, stage), lr=lr)
        if state["optimizer"] is not None:
            optimizer.load_state_dict(state["optimizer"])
        for _ in range(done, epochs):
            epoch = len(state["history"]) + 1
            bar.set_description(f"stage {stage} epoch {epoch}/{total}")
            train_loss, train_accuracy = _train_epoch(detector, loaders["train"], optimizer, weights, config, epoch, workers, target, bar)
            val_loss, val_accuracy = _evaluate(detector, loaders["val"], weights, config.batch_size, workers, target)
            state["history"].append(
                {"epoch": epoch, "stage": stage, "train_loss": train_loss, "val_loss": val_loss,
                 "train_accuracy": train_accuracy, "val_accuracy": val_accuracy, "lr": lr}
            )
            if val_loss < state["best_val"]:
                state["best_val"], state["best_epoch"], state["bad_epochs"] = val_loss, epoch, 0
                state["best"] = _cpu_copy(detector.state_dict())
            else:
                state["bad_epochs"] += 1
            state["optimizer"] = optimizer.state_dict()
            if config.patience and state["bad_epochs"] >= config.patience:
                state["stopped"][stage - 1] = True
            save()
            if state["stopped"][stage - 1]:
                break


# --------------------------------------------------------------------------- data


def backbone_extractor(backbone: str, weights: str, seed: int) -> Any:
    """The CNN extractor whose network a detector is built on: a registered CNN extractor, or any timm model by name.

    The extractor decides the architecture, the published weights and their
    preprocessing, so a fine-tuned file is read back by the same extractor.
    """
    from fdt.features_store.extractors.cnn import CNNExtractor
    from fdt.features_store.registry import create_extractor, extractor_class, list_extractors

    if backbone in list_extractors() and issubclass(extractor_class(backbone), CNNExtractor):
        return create_extractor(backbone, weights=weights, seed=seed)
    import timm

    if timm.is_model(backbone):
        return create_extractor("timm", model=backbone, weights=weights, seed=seed)
    raise DetectorError(
        f"unknown backbone {backbone!r}; choose a CNN extractor (mobilenet_v2, xception, vgg16, resnet50, densenet121) or a timm model name"
    )


def _readable_rows(records: Sequence[ImageRecord], resolution: str, progress: bool) -> tuple[_Rows, int]:
    """Every record that decodes and takes the resolution step, with its hash and group; how many were skipped.

    Every image is checked, not only the train share: the group assignment must
    see the groups tuning will see, which are those whose images have features
    (an image that fails here fails extraction too).
    """
    kept: list[tuple[ImageRecord, str]] = []
    failures: list[str] = []
    for record in _progress_bar(records, desc="checking images", unit="img", disable=not progress):
        try:
            sha = sha256_file(record.path)
            apply_resolution(load_rgb(record.path), resolution, sha)
        except ImageDecodeError as error:
            failures.append(f"{record.path}: {error}")
            continue
        kept.append((record, sha))
    if failures:
        logger.warning("skipped %d unreadable image(s), first: %s", len(failures), failures[0])
    if not kept:
        raise DataError(f"none of the {len(records)} images could be used" + (f"; first: {failures[0]}" if failures else ""))
    rows = _Rows(
        [r.path for r, _ in kept], [s for _, s in kept], np.array([r.label for r, _ in kept], np.int64),
        [group_of(r.group, s) for r, s in kept], [r.source for r, _ in kept],
    )
    return rows, len(failures)


def _split_rows(rows: _Rows, config: FinetuneConfig) -> tuple[_Rows, _Rows, _Rows]:
    """``(train, val, used)``: the train share split by groups into the rows trained on and those early stopping watches; ``used`` is both."""
    if config.split is None:
        used = rows
    else:
        assignment = assign_groups(rows.groups, rows.sources, config.split["fractions"], int(config.split["seed"]), rows.labels)
        used = rows.subset(np.array([assignment[g] == "train" for g in rows.groups], bool))
    # early stopping's groups: a grouped, source-stratified share of the train groups, by the run's own seed
    inner = assign_groups(used.groups, used.sources, (1 - config.val_share, config.val_share, 0.0), config.seed, used.labels)
    is_val = np.array([inner[g] == "val" for g in used.groups], bool)
    train, val = used.subset(~is_val), used.subset(is_val)
    for part, what in ((train, "training part"), (val, "early-stopping part")):
        present = set(part.labels.tolist())
        if present != {0, 1}:
            where = "the train share" if config.split is not None else "the images"
            raise DataError(
                f"the {what} of {where} ({len(part.paths)} images) has {'no' if not present else 'only ' + CLASSES[present.pop()]} images; "
                "it needs real and fake images: add images from more groups, or change --val-share / --split"
            )
    return train, val, used


def _data_fingerprint(train: _Rows, val: _Rows) -> str:
    lines = sorted(f"{part}\t{sha}\t{label}" for part, rows in (("train", train), ("val", val)) for sha, label in zip(rows.sha256, rows.labels.tolist()))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _class_weights(labels: np.ndarray, how: str) -> torch.Tensor:
    """Per-class loss weights: ``n / (2 n_c)`` when balanced, so a 10:1 set does not teach "always real"."""
    if how == "none":
        return torch.ones(2)
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    return torch.tensor(len(labels) / (2.0 * counts), dtype=torch.float32)


# --------------------------------------------------------------------------- training


def _trainable(detector: Detector, config: FinetuneConfig, stage: int) -> list[nn.Parameter]:
    """Freeze everything but the head (stage 1), or the head and the last ``unfreeze`` backbone blocks (stage 2)."""
    detector.requires_grad_(False)
    chosen = list(detector.head.parameters())
    if stage == 2 and config.unfreeze:
        blocks = backbone_blocks(detector)
        for block in blocks if config.unfreeze == -1 else blocks[-config.unfreeze :]:
            chosen += block
    for parameter in chosen:
        parameter.requires_grad_(True)
    return chosen


def _epoch_seed(seed: int, epoch: int) -> int:
    return int.from_bytes(hashlib.sha256(f"fdt-finetune|{seed}|{epoch}".encode()).digest()[:7], "little")


def _loader(images: _Images, order: Sequence[int] | None, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(images, batch_size=batch_size, sampler=order, num_workers=workers)


def _train_epoch(
    detector: Detector, images: _Images, optimizer: torch.optim.Optimizer, weights: torch.Tensor, config: FinetuneConfig,
    epoch: int, workers: int, device: torch.device, bar: Any,
) -> tuple[float, float]:
    images.epoch = epoch
    weights = weights.to(device)
    total_loss = correct = 0.0
    with _seeded(_epoch_seed(config.seed, epoch), device):
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(_epoch_seed(config.seed, epoch))).tolist()
        detector.train()
        detector.body.eval()  # frozen statistics (and no backbone dropout), as Keras' training=False
        for x, y in _loader(images, order, config.batch_size, workers):
            x, y = x.to(device), y.to(device)
            logits = detector(x).squeeze(1)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, y, weight=weights[y.long()], reduction="sum") / len(y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(y)
            correct += ((logits.detach() > 0).float() == y).sum().item()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
    detector.eval()
    return total_loss / len(images), correct / len(images)


def _evaluate(detector: Detector, images: _Images, weights: torch.Tensor, batch_size: int, workers: int, device: torch.device) -> tuple[float, float]:
    """Weighted BCE and accuracy on ``images``, in eval mode, without augmentation."""
    detector.eval()
    weights = weights.to(device)
    total_loss = correct = 0.0
    with torch.inference_mode():
        for x, y in _loader(images, None, batch_size, workers):
            x, y = x.to(device), y.to(device)
            logits = detector(x).squeeze(1)
            total_loss += nn.functional.binary_cross_entropy_with_logits(logits, y, weight=weights[y.long()], reduction="sum").item()
            correct += ((logits > 0).float() == y).sum().item()
    return total_loss / len(images), correct / len(images)


class _seeded:
    """Seed torch's global generators for one epoch (dropout, DataLoader worker seeds) and restore them after."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.seed, self.devices = seed, [device] if device.type == "cuda" else []

    def __enter__(self) -> None:
        self._fork = torch.random.fork_rng(devices=self.devices)
        self._fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: Any) -> None:
        self._fork.__exit__(*exc)


# --------------------------------------------------------------------------- checkpoint and files


def _config_dict(config: FinetuneConfig) -> dict[str, Any]:
    data = {k: getattr(config, k) for k in FinetuneConfig.__dataclass_fields__}
    data["augment"] = list(config.augment)
    data["split"] = None if config.split is None else {"seed": int(config.split["seed"]), "fractions": [float(f) for f in config.split["fractions"]]}
    return data


def _fresh_state(detector: Detector) -> dict[str, Any]:
    return {
        "history": [], "stage": 1, "stopped": [False, False], "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0,
        "best": _cpu_copy(detector.state_dict()), "optimizer": None,
    }


def _cpu_copy(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state_dict.items()}


# The settings a checkpoint may continue under although they differ: more epochs continue training.
_EXTENDABLE = ("epochs", "finetune_epochs")


class _TrainingState:
    """The loop's own state (history, stage, best weights, optimiser moments, early stopping) as a :class:`Checkpoint` module."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    def state_dict(self) -> dict[str, Any]:
        return self.state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state.clear()
        self.state.update(state)


def _check_continuable(path: Path, state: dict[str, Any], config: FinetuneConfig) -> None:
    """Refuse a restored state with more epochs of a stage than asked, or stage 2 epochs after an unfinished stage 1."""
    done = [sum(row["stage"] == s for row in state["history"]) for s in (1, 2)]
    if done[0] > config.epochs or done[1] > config.finetune_epochs or (done[1] and done[0] != config.epochs and not state["stopped"][0]):
        raise FinetuneCheckpointError(
            f"checkpoint {path} has {done[0]} + {done[1]} epochs, which {config.epochs} + {config.finetune_epochs} cannot continue; "
            f"raise the epochs and fine-tuning epochs to match, or {START_OVER}"
        )


def _write_detector_file(
    detector: Detector, extractor: Any, config: FinetuneConfig, transform: NetworkInput, start: str, training: dict[str, Any],
    trained_sha256: str, out: Path,
) -> None:
    """The model file (format ``fdt.finetuned`` version 1; see :mod:`fdt.models.detector`), written atomically."""
    save_atomic(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "backbone": extractor.name,
            "model": extractor._model() if hasattr(extractor, "_model") else None,
            "input": transform.kind,
            "input_size": transform.size,
            "mean": list(transform.mean),
            "std": list(transform.std),
            "interpolation": transform.interpolation,
            "resolution": config.resolution,
            "dropout": config.dropout,
            "classes": list(CLASSES),
            "start_weights": start,
            "trained_sha256": trained_sha256,
            "training": training,
            "state_dict": _cpu_copy(detector.state_dict()),
            "fdt_version": __version__,
            "torch_version": str(torch.__version__),
        },
        out,
    )


def iter_history(summary: dict[str, Any]) -> Iterator[str]:
    """One line per epoch of a training summary, for people reading a terminal."""
    for row in summary["history"]:
        yield (
            f"epoch {row['epoch']:>3} (stage {row['stage']}): loss {row['train_loss']:.4f} / val {row['val_loss']:.4f}, "
            f"accuracy {row['train_accuracy']:.3f} / val {row['val_accuracy']:.3f}"
        )

