"""The one checkpoint helper every training loop uses: exact resume, refusals in one line, snapshots."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from fdt.checkpoints import Checkpoint, CheckpointMismatchError, read_checkpoint, training_data_sha256

DATA = training_data_sha256(["a" * 64, "b" * 64])


def _run(path: Path, epochs: int, stop_after: int | None = None, config: dict | None = None, data: str = DATA) -> torch.nn.Module:
    """A tiny seeded training loop drawing from its own generator and the global RNGs, checkpointed every epoch."""
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    rng = torch.Generator().manual_seed(1)
    checkpoint = Checkpoint(path, "toy", config or {"lr": 0.1}, data, {"model": model, "optimizer": optimizer}, {"rng": rng})
    start, history = checkpoint.restore(epochs)
    for epoch in range(start + 1, epochs + 1):
        x = torch.randn(8, 3, generator=rng) + torch.randn(8, 3) + float(np.random.rand()) + random.random()
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
        checkpoint.save(epoch, history)
        if epoch == stop_after:
            break
    return model


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path: Path) -> None:
    straight = _run(tmp_path / "a.pt", 4)
    _run(tmp_path / "b.pt", 4, stop_after=2)
    resumed = _run(tmp_path / "b.pt", 4)
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))
    assert read_checkpoint(tmp_path / "a.pt")["history"] == read_checkpoint(tmp_path / "b.pt")["history"]


def test_other_settings_other_images_more_epochs_and_another_kind_are_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    _run(path, 2)
    cases = [
        (lambda: _run(path, 3, config={"lr": 0.2}), r"other settings \(lr 0.1 -> 0.2\); to start over, pass --no-resume"),
        (lambda: _run(path, 3, data=training_data_sha256(["c" * 64])), r"trained on other images \(their content hashes differ\)"),
        (lambda: _run(path, 1), r"has 2 epochs, more than the 1 asked"),
        (lambda: read_checkpoint(path, "dcgan"), r"is a toy checkpoint, not a dcgan one"),
    ]
    for action, message in cases:
        with pytest.raises(CheckpointMismatchError, match=message) as caught:
            action()
        assert "\n" not in str(caught.value)


def test_training_data_identity_is_the_content_in_training_order() -> None:
    assert training_data_sha256(["a", "b"]) == training_data_sha256(iter(["a", "b"]))
    assert training_data_sha256(["a", "b"]) != training_data_sha256(["b", "a"])


def test_a_snapshot_holds_only_what_sampling_needs_and_cannot_be_resumed(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    checkpoint = Checkpoint(tmp_path / "full.pt", "toy", {}, DATA, {"model": model, "optimizer": torch.optim.SGD(model.parameters(), lr=1)})
    checkpoint.snapshot(tmp_path / "epochs" / "epoch_001.pt", 1, ["model"])
    state = read_checkpoint(tmp_path / "epochs" / "epoch_001.pt", "toy")
    assert set(state["state"]) == {"model"} and state["epoch"] == 1 and "rng" not in state
    resumer = Checkpoint(tmp_path / "epochs" / "epoch_001.pt", "toy", {}, DATA, {"model": model})
    with pytest.raises(CheckpointMismatchError, match="per-epoch snapshot"):
        resumer.restore(2)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.pt").write_bytes(b"not torch at all")
    torch.save({"format": "something.else"}, tmp_path / "y.pt")
    with pytest.raises(CheckpointMismatchError, match="is not an fdt checkpoint"):
        read_checkpoint(tmp_path / "x.pt")
    with pytest.raises(CheckpointMismatchError, match="is not an fdt checkpoint this fdt reads"):
        read_checkpoint(tmp_path / "y.pt")
