"""Generalisation matrices on a small synthetic store: shape, held-out diagonal, means, files."""

import json

import numpy as np
import pytest

from fdt.pipelines.errors import SplitError, UnknownMetricError
from fdt.pipelines.matrix import generalisation_matrices, write_report
from fdt.pipelines.metrics import compute_metrics
from fdt.pipelines.specs import get_spec
from fdt.pipelines.intervals import choose_thresholds
from fdt.pipelines.splits import assign_groups, holdout_masks
from fdt.pipelines.tuning import make_tuner

FAKES = ["inpaint", "sd21", "dcgan"]


def test_matrix_shapes(matrix_report):
    report = matrix_report
    per_res = [m for m in report.matrices if m.title.startswith("generalisation")]
    assert [m.values.shape for m in per_res] == [(3, 3), (3, 3)]
    cross = report.matrices[-1]
    assert cross.title.startswith("cross-resolution") and cross.values.shape == (2, 2)
    assert cross.rows == ["train native", "train 64"] and cross.columns == ["test native", "test 64"]


def test_diagonal_is_scored_on_held_out_groups_of_the_training_source(matrix_report):
    report = matrix_report
    data = report.data["native"]
    masks = holdout_masks(data.groups, assign_groups(np.concatenate([fs.groups for fs in report.data.values()]), np.concatenate([fs.sources for fs in report.data.values()]), (0.8, 0.1, 0.1), 0, np.concatenate([fs.y for fs in report.data.values()])))
    matrix = report.matrices[0]
    train = masks["train"] & np.isin(data.sources, ["coco", "inpaint"])
    test = masks["test"] & np.isin(data.sources, ["coco", "inpaint"])
    assert not set(data.groups[train]) & set(data.groups[test])
    model = make_tuner(get_spec("logreg"), 0, n_trials=0, cv=3).fit(data.X[train], data.y[train], data.groups[train])
    val = masks["val"] & np.isin(data.sources, ["coco", "inpaint"])
    # thresholds of the operating-point metrics come from the validation rows, never the scored ones
    chosen = choose_thresholds(data.y[val], model.predict_proba(data.X[val])[:, 1])
    expected = compute_metrics(data.y[test], model.predict_proba(data.X[test])[:, 1], thresholds=chosen)
    in_sample = compute_metrics(data.y[test], model.predict_proba(data.X[test])[:, 1])
    assert matrix.cells[0][0] == pytest.approx(expected, nan_ok=True)
    assert matrix.cells[0][0]["best_threshold_accuracy"] != in_sample["best_threshold_accuracy"]
    low, high = matrix.interval(0, 0)
    assert low <= matrix.values[0, 0] <= high
    assert matrix.counts[0][0] == int(test.sum())


def test_row_and_column_means(matrix_report):
    matrix = matrix_report.matrices[0]
    np.testing.assert_allclose(matrix.row_means, matrix.values.mean(axis=1))
    np.testing.assert_allclose(matrix.column_means, matrix.values.mean(axis=0))
    # dcgan's fakes are twice as far from the reals as inpaint's: the model trained on inpaint catches them
    assert matrix.values[0, 2] > 0.9


def test_written_report(matrix_report, tmp_path):
    written = {path.name for path in write_report(matrix_report, tmp_path)}
    assert {"generalisation-at-native.csv", "generalisation-at-native.md", "generalisation-at-native-heatmap.png",
            "generalisation-at-native-roc.png", "pca-at-64.png", "cross-resolution-real-vs-all-fakes.json", "report.md"} <= written
    csv = (tmp_path / "generalisation-at-native.csv").read_text().splitlines()
    assert len(csv) == 1 + 3 + 1 and csv[0].endswith(",mean")
    assert "weights: **none**" in (tmp_path / "report.md").read_text()
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["weights"] == {"native": "none", "64": "none"}
    assert len(saved["matrices"][0]["cells"][0][0]["metrics"]) == 16


def test_unknown_metric_and_too_few_groups_are_refused(featuresets):
    with pytest.raises(UnknownMetricError, match="unknown metric"):
        generalisation_matrices(featuresets, ["coco"], FAKES, get_spec("logreg"), metric="auroc")
    with pytest.raises(SplitError, match="for 50-fold"):
        generalisation_matrices(featuresets, ["coco"], FAKES, get_spec("logreg"), cv=50)
