"""Bootstrap intervals over groups, and thresholds chosen on other rows than the ones scored."""

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from fdt.pipelines.intervals import bootstrap_metrics, bootstrap_weights, choose_thresholds, format_interval, weighted_metrics
from fdt.pipelines.metrics import METRICS, compute_metrics


@pytest.mark.parametrize("seed", range(5))
def test_metrics_agree_with_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 80)
    p = np.round(rng.random(80), 1)  # many ties
    m = compute_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["average_precision"] == pytest.approx(average_precision_score(y, p))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))


def test_weights_equal_repeated_rows():
    rng = np.random.default_rng(3)
    y, p = rng.integers(0, 2, 30), np.round(rng.random(30), 2)
    counts = rng.integers(0, 4, 30)
    counts[y == 0][:1] += 1
    repeated = compute_metrics(np.repeat(y, counts), np.repeat(p, counts))
    weighted = weighted_metrics(y, p, counts[None, :])
    for name in METRICS:
        assert weighted[name][0] == pytest.approx(repeated[name], nan_ok=True), name


def _hand_bootstrap(y, p, groups, n, seed, confidence=0.95):
    """The documented procedure written out with explicit resampled rows and compute_metrics."""
    unique = sorted(set(groups))
    rows = {g: [i for i, h in enumerate(groups) if h == g] for g in unique}
    labels = {g: {int(y[i]) for i in rows[g]} for g in unique}
    strata = [[g for g in unique if labels[g] == {0}], [g for g in unique if labels[g] == {1}], [g for g in unique if labels[g] == {0, 1}]]
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(s), size=(n, len(s))) if s else None for s in strata]
    values = {name: [] for name in METRICS}
    for b in range(n):
        picked = []
        for stratum, drawn in zip(strata, draws):
            if drawn is not None:
                for k in drawn[b]:
                    picked += rows[stratum[k]]
        for name, value in compute_metrics(y[picked], p[picked]).items():
            values[name].append(value)
    tail = (1 - confidence) / 2 * 100
    return {name: tuple(np.nanpercentile(v, [tail, 100 - tail])) if not np.isnan(v).all() else (math.nan, math.nan) for name, v in values.items()}


def test_bootstrap_equals_a_hand_computed_percentile_bootstrap():
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.3, 0.9, 0.7, 0.6, 0.3, 0.95, 0.5, 0.45, 0.55])
    groups = ["a", "a", "b", "c", "d", "d", "e", "e", "f", "g", "h", "h", "mix", "mix"]
    expected = _hand_bootstrap(y, p, groups, n=200, seed=7)
    got = bootstrap_metrics(y, p, groups, n_resamples=200, random_state=7)
    for name in METRICS:
        assert got[name] == pytest.approx(expected[name], nan_ok=True), name
    low, high = got["roc_auc"]
    assert low < compute_metrics(y, p)["roc_auc"] < high


def test_interval_narrows_with_more_groups():
    rng = np.random.default_rng(0)

    def width(n):
        y = np.repeat([0, 1], n)
        p = np.clip(y * 0.3 + rng.random(2 * n) * 0.7, 0, 1)
        low, high = bootstrap_metrics(y, p, np.arange(2 * n), random_state=0)["roc_auc"]
        return high - low

    assert width(400) < width(20) / 2


def test_groups_are_resampled_whole_and_stratified():
    y = np.repeat([0, 0, 1, 1, 0], [3, 2, 4, 1, 0])
    groups = np.repeat(["r1", "r2", "f1", "f2", "unused"], [3, 2, 4, 1, 0])
    weights = bootstrap_weights(y, groups, n_resamples=50, random_state=1)
    for name in ("r1", "r2", "f1", "f2"):
        inside = weights[:, groups == name]
        assert (inside == inside[:, :1]).all()  # a group's rows are drawn together
    drawn_real = weights[:, groups == "r1"][:, 0] + weights[:, groups == "r2"][:, 0]
    drawn_fake = weights[:, groups == "f1"][:, 0] + weights[:, groups == "f2"][:, 0]
    assert (drawn_real == 2).all() and (drawn_fake == 2).all()  # as many real and fake groups as there are
    assert len({tuple(row) for row in weights}) > 3


def test_thresholds_chosen_on_validation_rows_are_applied_to_test_rows():
    y_val = np.array([0, 0, 0, 1, 1, 1])
    p_val = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    chosen = choose_thresholds(y_val, p_val)
    assert chosen["best"] == 0.6
    y_test = np.array([0, 0, 0, 1, 1, 1])
    p_test = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.3])  # perfectly ranked but shifted down
    in_sample = compute_metrics(y_test, p_test)
    transferred = compute_metrics(y_test, p_test, thresholds=chosen)
    assert in_sample["best_threshold_accuracy"] == 1.0
    assert transferred["best_threshold_accuracy"] == 0.5  # the validation threshold calls every test image real
    assert transferred["tpr_at_fpr_1"] == 0.0 and in_sample["tpr_at_fpr_1"] == 1.0


def test_format_interval():
    assert format_interval(0.912, (0.861, 0.954)) == "0.91 [0.86, 0.95]"
    assert format_interval(math.nan, (0.1, 0.2)) == "–"
    assert format_interval(0.5, None) == "0.50"
