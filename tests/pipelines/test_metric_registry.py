"""The metric registry: one registration gives a metric its value, its bootstrap interval and its direction everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from fdt.pipelines import metrics
from fdt.pipelines.errors import UnknownMetricError
from fdt.pipelines.intervals import bootstrap_metrics
from fdt.pipelines.metrics import METRICS, Metric, compute_metrics, get_metric, list_metrics, register_metric


@pytest.fixture
def false_alarm_rate():
    """A metric a user adds: the share of reals called fake at 0.5 (lower is better)."""
    metric = register_metric(
        Metric("false_alarm_rate", "false alarm rate", lambda rows: rows.ratio(rows.negatives - rows.true_real, rows.negatives), higher_is_better=False)
    )
    yield metric
    del metrics._REGISTRY[metric.name]


def test_every_builtin_metric_is_registered_with_a_direction():
    assert list_metrics()[: len(METRICS)] == METRICS and len(METRICS) == 16
    lower = {name for name in METRICS if not get_metric(name).higher_is_better}
    assert lower == {"eer", "brier", "ece"}
    assert get_metric("eer").better(0.1, 0.2) and not get_metric("roc_auc").better(0.1, 0.2)


def test_an_unknown_metric_lists_the_valid_ones():
    with pytest.raises(UnknownMetricError, match="unknown metric 'auc'; choose one of: roc_auc, average_precision"):
        get_metric("auc")


def test_one_registration_gives_value_and_interval(false_alarm_rate):
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.7, 0.2, 0.9, 0.8, 0.4, 0.95])
    values = compute_metrics(y, p)
    assert values["false_alarm_rate"] == pytest.approx(0.5)
    assert values["real_accuracy"] == pytest.approx(1 - values["false_alarm_rate"])
    low, high = bootstrap_metrics(y, p, groups=np.arange(8), n_resamples=200)["false_alarm_rate"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register_metric(Metric("roc_auc", "ROC AUC", lambda rows: rows.total))


def test_format_uses_the_metrics_decimals():
    assert get_metric("roc_auc").format(0.91234, (0.9, 0.93)) == "0.912 [0.900, 0.930]"
    assert get_metric("brier").format(0.01234) == "0.0123"
    assert get_metric("eer").format(None) == "–"


PLUGIN = '''
from fdt.pipelines.metrics import Metric

MISS_RATE = Metric("miss_rate", "miss rate", lambda rows: rows.ratio(rows.positives - rows.true_fake, rows.positives), higher_is_better=False)
NOT_A_METRIC = 3
'''


def test_a_plugin_metric_is_found_by_name(tmp_path, monkeypatch, caplog):
    """A package adds a metric with one entry point (``fdt.metrics``) and no edit of fdt."""
    import sys

    from fdt import plugins
    from tests.conftest import install_plugin

    entry_points = "[fdt.metrics]\nmiss_rate = fdt_metric_plugin:MISS_RATE\nbroken = fdt_metric_plugin:NOT_A_METRIC\n"
    install_plugin(tmp_path / "site", "fdt_metric_plugin", PLUGIN, entry_points, monkeypatch)
    monkeypatch.setattr(metrics, "_REGISTRY", dict(metrics._REGISTRY))
    monkeypatch.setattr(plugins, "_reported", set())
    try:
        with pytest.raises(UnknownMetricError, match=r"choose one of: .*ece, broken, miss_rate"):
            get_metric("nope")
        assert get_metric("miss_rate").higher_is_better is False
        assert compute_metrics(np.array([0, 1, 1, 1]), np.array([0.1, 0.9, 0.2, 0.8]))["miss_rate"] == pytest.approx(1 / 3)
        with pytest.raises(UnknownMetricError):
            get_metric("broken")
        assert any("'broken'" in r.getMessage() and "not a fdt.pipelines.metrics.Metric" in r.getMessage() for r in caplog.records)
    finally:
        sys.modules.pop("fdt_metric_plugin", None)
