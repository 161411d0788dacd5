"""Generalisation matrices on a small synthetic store: shape, held-out diagonal, means, files."""

import json

import numpy as np
import pytest

from fdt.pipelines.errors import SplitError, UnknownMetricError
from fdt.pipelines.evaluation import INVERTED
from fdt.pipelines.matrix import generalisation_matrices, write_report
from fdt.pipelines.metrics import compute_metrics
from fdt.pipelines.specs import get_spec

FAKES = ["inpaint", "sd21", "dcgan"]


def test_matrix_shapes(matrix_report):
    report = matrix_report
    per_res = [m for m in report.matrices if m.title.startswith("generalisation")]
    assert [m.values.shape for m in per_res] == [(3, 3), (3, 3)]
    cross = report.matrices[-1]
    assert cross.title.startswith("cross-resolution") and cross.values.shape == (2, 2)
    assert cross.rows == ["train native", "train 64"] and cross.columns == ["test native", "test 64"]


MIRRORED = {"coco": (0, np.zeros(6)), "far": (1, np.array([10.0, 0, 0, 0, 0, 0])), "mirror": (1, np.array([-10.0, 0, 0, 0, 0, 0]))}


@pytest.fixture(scope="module")
def mirrored():
    """Fakes ten standard deviations to one side of the reals ("far") or the other ("mirror"): the answer is known.

    A linear model trained on reals vs far calls everything on far's side fake, so it ranks
    every mirror fake below every real (ROC AUC exactly 0) and every far fake above (exactly 1).
    """
    from tests.pipelines.conftest import make_featureset

    data = {"native": make_featureset(MIRRORED, per_source=40, seed=3)}
    return generalisation_matrices(data, ["coco"], ["far", "mirror"], get_spec("logreg"), cv=3, n_resamples=100)


def test_a_hand_worked_matrix_and_its_means(mirrored):
    (matrix,) = mirrored.matrices
    np.testing.assert_array_equal(matrix.values, [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(matrix.row_means, [0.5, 0.5])
    np.testing.assert_array_equal(matrix.column_means, [0.5, 0.5])
    assert matrix.rows == ["coco vs far", "coco vs mirror"] and matrix.columns == matrix.rows
    # 40 groups per source, 10 % held out for the test: 4 reals and 4 fakes in every cell
    assert matrix.counts == [[8, 8], [8, 8]]
    assert INVERTED in matrix.flags(0, 1) and INVERTED in matrix.flags(1, 0) and INVERTED not in matrix.flags(0, 0)
    assert "0.00 [0.00, 0.00]†" in matrix.to_markdown()


def test_the_diagonal_is_scored_on_groups_the_model_never_saw():
    """Labels unrelated to the features, two copies per group, and a 1-nearest-neighbour head.

    Scored on its training groups, 1-NN finds each row's own copy and ranks perfectly (ROC AUC 1);
    on held-out groups it can only guess.
    """
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    from fdt.pipelines.specs import spec_from_dict
    from tests.pipelines.conftest import make_featureset

    noise = {"coco": (0, np.zeros(6)), "same": (1, np.zeros(6)), "alike": (1, np.zeros(6))}
    data = make_featureset(noise, per_source=100, copies=2, seed=5)
    memorised = KNeighborsClassifier(n_neighbors=1).fit(data.X, data.y).predict_proba(data.X)[:, 1]
    assert compute_metrics(data.y, memorised)["roc_auc"] == 1.0  # the leak this test would catch
    held_out = cross_val_predict(KNeighborsClassifier(n_neighbors=1), data.X, data.y, groups=data.groups, cv=GroupKFold(5), method="predict_proba")[:, 1]
    assert compute_metrics(data.y, held_out)["roc_auc"] < 0.7  # and what grouped scoring gives
    one_nn = spec_from_dict("one-nn", {"classifier": "knn", "params": {"n_neighbors": 1}, "scaler": False})
    report = generalisation_matrices({"native": data}, ["coco"], ["same", "alike"], one_nn, cv=3, n_resamples=100)
    assert np.all(report.matrices[0].values < 0.9), report.matrices[0].values


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


def test_a_score_below_chance_whose_interval_holds_chance_is_not_called_inverted():
    from fdt.pipelines.evaluation import shortcut_flags

    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    groups = np.array([f"g{i}" for i in range(40)])
    assert INVERTED not in shortcut_flags({"roc_auc": 0.43}, groups, y, (0.29, 0.58))
    assert INVERTED in shortcut_flags({"roc_auc": 0.30}, groups, y, (0.18, 0.44))
    assert INVERTED in shortcut_flags({"roc_auc": 0.30}, groups, y)  # no interval: the point estimate decides
