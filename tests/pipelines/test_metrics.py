"""Every metric against small examples computed by hand (the arithmetic is in the comments)."""

import math

import pytest

from fdt.pipelines.errors import UnknownMetricError
from fdt.pipelines.metrics import METRICS, check_metric, compute_metrics, expected_calibration_error, summarise

# Four reals, four fakes; one real (0.65) and one fake (0.45) are on the wrong side of 0.5,
# and every score sits alone in its tenth-wide ECE bin.
Y = [0, 0, 0, 0, 1, 1, 1, 1]
P = [0.15, 0.25, 0.35, 0.65, 0.45, 0.75, 0.85, 0.95]

EXPECTED = {
    "accuracy": 6 / 8,
    "real_accuracy": 3 / 4,
    "fake_accuracy": 3 / 4,
    "balanced_accuracy": 3 / 4,
    "precision": 3 / 4,  # 3 true fakes among 4 called fake
    "recall": 3 / 4,
    "f1": 3 / 4,
    "roc_auc": 15 / 16,  # of 16 (real, fake) pairs only (0.65, 0.45) is misordered
    "average_precision": (1 + 1 + 1 + 4 / 5) / 4,  # precision at ranks 1, 2, 3 and 5
    "best_threshold_accuracy": 7 / 8,  # calling fake from 0.75 up misses only the 0.45 fake
    "eer": 1 / 4,  # at threshold 0.65: FPR = 1/4 and FNR = 1/4
    "tpr_at_fpr_1": 3 / 4,  # the three fakes above every real
    "tpr_at_fpr_5": 3 / 4,
    "tpr_at_fpr_10": 3 / 4,
    # reals: .15² + .25² + .35² + .65² = .63; fakes: .55² + .25² + .15² + .05² = .39
    "brier": (0.63 + 0.39) / 8,
    # one sample per bin: |y - p| summed = (.15+.25+.35+.65) + (.55+.25+.15+.05) = 2.4
    "ece": 2.4 / 8,
}


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
