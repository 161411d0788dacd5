"""Every metric against small examples computed by hand (the arithmetic is in the comments)."""

import math

import pytest

from fdt.pipelines.errors import UnknownMetricError
from fdt.pipelines.metrics import METRICS, check_metric, compute_metrics, expected_calibration_error, summarise

# Twenty reals, five fakes, every metric a different number (recall and fake accuracy are one
# quantity, TP / (TP + FN), and agree by definition), so swapping any two metrics fails.
# Sorted: .99F .95R .88F .85R .78F .68R .58F .3F, then 17 reals at .1. No score sits on a
# bin edge of the ECE, whose bins are tenths.
Y = [0] * 20 + [1] * 5
P = [0.95, 0.85, 0.68] + [0.1] * 17 + [0.99, 0.88, 0.78, 0.58, 0.3]

EXPECTED = {
    # at 0.5: TP 4 (.99 .88 .78 .58), FN 1 (.3), FP 3 (.95 .85 .68), TN 17
    "accuracy": 21 / 25,
    "real_accuracy": 17 / 20,
    "fake_accuracy": 4 / 5,
    "recall": 4 / 5,
    "balanced_accuracy": (17 / 20 + 4 / 5) / 2,
    "precision": 4 / 7,
    "f1": 2 / 3,  # 2 * (4/7) * (4/5) / (4/7 + 4/5) = (32/35) / (48/35)
    "roc_auc": 91 / 100,  # reals below each fake: 20 + 19 + 18 + 17 + 17 of 100 pairs
    "average_precision": (1 + 2 / 3 + 3 / 5 + 4 / 7 + 5 / 8) / 5,  # precision at ranks 1, 3, 5, 7, 8
    "best_threshold_accuracy": 22 / 25,  # calling fake from .3 up: 5 fakes + 17 reals right
    # ROC (FPR, TPR): (.05,.2) (.05,.4) (.1,.4) (.1,.6) (.15,.6) (.15,.8) (.15,1); FNR falls from .2 to 0 at FPR .15
    "eer": 0.15,
    "tpr_at_fpr_1": 1 / 5,  # no real allowed: only .99
    "tpr_at_fpr_5": 2 / 5,  # one real (.95) allowed: .99 and .88
    "tpr_at_fpr_10": 3 / 5,  # two reals allowed: down to .78
    # reals: .95² + .85² + .68² + 17 * .1² = 2.2574; fakes: .01² + .12² + .22² + .42² + .7² = .7293
    "brier": (2.2574 + 0.7293) / 25,
    # |sum y - sum p| per bin: [0,.1] 17 reals 1.7; (.2,.3] .7; (.5,.6] .42; (.6,.7] .68; (.7,.8] .22;
    # (.8,.9] .85R+.88F |1 - 1.73| = .73; (.9,1] .95R+.99F |1 - 1.94| = .94; total 5.39
    "ece": 5.39 / 25,
}


def test_the_hand_worked_case_tells_every_metric_apart():
    values = [value for name, value in EXPECTED.items() if name != "recall"]
    assert len({round(v, 9) for v in values}) == len(values) == len(METRICS) - 1


def test_compute_metrics_returns_every_metric_in_order():
    assert tuple(compute_metrics(Y, P)) == METRICS


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metric_matches_hand_computation(name):
    assert compute_metrics(Y, P)[name] == pytest.approx(EXPECTED[name])


def test_expected_calibration_error_pools_a_bin():
    # bin (0.1, 0.2]: mean p .15, mean y .5 -> 2/4 * .35; bin (0.8, 0.9]: mean p .85, mean y 1 -> 2/4 * .15
    assert expected_calibration_error([0, 1, 1, 1], [0.12, 0.18, 0.82, 0.88]) == pytest.approx(0.25)


def test_eer_where_the_curve_crosses_between_points():
    # ROC: (0,0) (0,1/2) (1/3,1/2) (1/3,1) ...; FNR falls from 1/2 to 0 while FPR stays at 1/3.
    assert compute_metrics([0, 0, 0, 1, 1], [0.1, 0.2, 0.7, 0.6, 0.9])["eer"] == pytest.approx(1 / 3)


def test_tpr_at_each_fpr_budget():
    # sorted: .99F .98F .95R .9F .85F .7F .6R .5F .4F .3F .2F .1F then 18 reals at .05
    reals = [0.95, 0.6] + [0.05] * 18
    fakes = [0.99, 0.98, 0.9, 0.85, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1]
    metrics = compute_metrics([0] * 20 + [1] * 10, reals + fakes)
    assert metrics["tpr_at_fpr_1"] == pytest.approx(0.2)  # no real allowed: the two fakes above 0.95
    assert metrics["tpr_at_fpr_5"] == pytest.approx(0.5)  # one real (0.95) allowed: five fakes above 0.6
    assert metrics["tpr_at_fpr_10"] == pytest.approx(1.0)  # two reals allowed: every fake above 0.05


def test_one_class_gives_nan_for_ranking_metrics_not_a_crash():
    metrics = compute_metrics([1, 1, 1], [0.9, 0.2, 0.7])
    assert math.isnan(metrics["roc_auc"]) and math.isnan(metrics["eer"])
    assert metrics["fake_accuracy"] == pytest.approx(2 / 3)


def test_summarise_gives_mean_and_population_std():
    summary = summarise([{"roc_auc": 0.8, "eer": 0.2}, {"roc_auc": 1.0, "eer": float("nan")}])
    assert summary["roc_auc"] == {"mean": pytest.approx(0.9), "std": pytest.approx(0.1)}
    assert summary["eer"]["mean"] == pytest.approx(0.2)


def test_unknown_metric_lists_valid_names():
    with pytest.raises(UnknownMetricError, match="unknown metric 'auc'.*roc_auc"):
        check_metric("auc")


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="one length"):
        compute_metrics([0, 1], [0.5])
