"""Training curves of a fine-tuned detector: CSV and PNG always, TensorBoard event files when it is installed.

Seed study 001 followed its training in TensorBoard; fdt writes the same
scalars (``loss/train``, ``loss/val``, ``accuracy/train``, ``accuracy/val``,
one step per epoch) with ``torch.utils.tensorboard.SummaryWriter``, which needs
the ``tensorboard`` package. It is optional at run time: without it the curves
go to the CSV and PNG only, and the run says so in one line.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

from fdt.atomic import atomic_path, fsync_folder, write_text

COLUMNS = ("epoch", "stage", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr")
NO_TENSORBOARD = "tensorboard is not installed (pip install tensorboard): training curves went to CSV and PNG only"


def curve_paths(out: Path) -> tuple[Path, Path, Path]:
    """Where the curves of model file ``out`` go: ``<stem>.curves.csv``, ``<stem>.curves.png`` and the folder ``<stem>.tensorboard``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.curves.csv"), out.with_name(f"{out.stem}.curves.png"), out.with_name(f"{out.stem}.tensorboard")


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def write_curves(history: Sequence[dict[str, Any]], out: Path, title: str) -> list[Path]:
    """Write the per-epoch ``history`` as CSV, PNG and (when possible) TensorBoard events; return what was written.

    The event folder is rewritten whole from ``history`` (after a resume too), so
    it never holds the same epoch twice.
    """
    csv_path, png_path, events = curve_paths(out)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    write_text(csv_path, text.getvalue())
    _write_png(history, png_path, title)
    written = [csv_path, png_path]
    if tensorboard_available():
        _write_events(history, events)
        written.append(events)
    return written


def _write_png(history: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.4))
    FigureCanvasAgg(figure)
    epochs = [row["epoch"] for row in history]
    for index, (name, label) in enumerate((("loss", "loss (weighted BCE)"), ("accuracy", "accuracy"))):
        axes = figure.add_subplot(1, 2, index + 1)
        for part, style in (("train", "o-"), ("val", "s--")):
            axes.plot(epochs, [row[f"{part}_{name}"] for row in history], style, label=part)
        stage_two = [row["epoch"] for row in history if row["stage"] == 2]
        if stage_two:
            axes.axvline(stage_two[0] - 0.5, color="grey", lw=0.8, ls=":", label="unfrozen")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)


def _write_events(history: Sequence[dict[str, Any]], folder: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    staging = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    with SummaryWriter(log_dir=str(staging)) as writer:
        for row in history:
            for name in ("loss", "accuracy"):
                for part in ("train", "val"):
                    writer.add_scalar(f"{name}/{part}", row[f"{part}_{name}"], row["epoch"])
            writer.add_scalar("lr", row["lr"], row["epoch"])
    # swap the folder whole, so a reader sees the old curves or the new ones
    old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(staging, folder)
    fsync_folder(folder.parent)
    shutil.rmtree(old, ignore_errors=True)
