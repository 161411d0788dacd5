"""The run summary's verdicts follow each report's own metric and its direction (lower is better for eer, brier, ece)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fdt.experiment.summary import _cells, best_report, best_reports, reading


def _entry(label: str, metric: str, values: list[list[float]], width: float = 0.01) -> dict:
    """A matrix report as ``fdt run`` records it, with tight intervals around every cell."""
    matrix = {
        "title": "generalisation at 32",
        "rows": [f"real vs g{i}" for i in range(len(values))],
        "columns": [f"real vs g{j}" for j in range(len(values[0]))],
        "values": values,
        "intervals": [[[v - width, v + width] for v in row] for row in values],
        "cells": [[{"flags": []} for _ in row] for row in values],
    }
    return {"label": label, "pipeline": "logreg", "metric": metric, "folder": "unused", "report": {"matrices": [matrix], "notes": []}}


def _result(*entries: dict) -> SimpleNamespace:
    return SimpleNamespace(record=SimpleNamespace(stages=[]), cards=[], shortcuts=[], matrix_reports=list(entries))


def test_for_an_error_rate_the_lowest_mean_is_best_and_is_called_lowest():
    good = _entry("fft", "eer", [[0.05, 0.10], [0.10, 0.05]])
    bad = _entry("vgg16", "eer", [[0.30, 0.40], [0.40, 0.30]])
    result = _result(bad, good)
    assert best_report(result) is good
    text = " ".join(reading(result))
    assert "Mean eer (lower is better) over every train/test pair: vgg16 0.350, fft 0.075." in text
    assert "fft has the best mean (the lowest)" in text and "highest" not in text


def test_a_cell_with_a_higher_error_rate_than_the_diagonal_is_worse():
    # trained on g0: 0.05 on its own generator, 0.40 on g1 (worse); trained on g1: 0.30 on g0, 0.10 on its own (worse too)
    text = " ".join(reading(_result(_entry("fft", "eer", [[0.05, 0.40], [0.30, 0.10]]))))
    assert "of 2 cells testing a detector on a generator it never saw, 2 score clearly worse" in text


@pytest.mark.parametrize("order", [0, 1])
def test_each_report_is_ranked_in_its_own_metric(order):
    auc = _entry("vgg16", "roc_auc", [[0.95, 0.90], [0.90, 0.95]])
    eer_bad = _entry("fft", "eer", [[0.40, 0.45], [0.45, 0.40]])
    eer_good = _entry("autoencoder", "eer", [[0.02, 0.03], [0.03, 0.02]])
    entries = [auc, eer_bad, eer_good] if order == 0 else [eer_bad, eer_good, auc]
    result = _result(*entries)
    assert {id(e) for e in best_reports(result)} == {id(auc), id(eer_good)}
    text = " ".join(reading(result))
    assert "Mean roc_auc (higher is better) over every train/test pair: vgg16 0.925." in text
    assert "Mean eer (lower is better) over every train/test pair: fft 0.425, autoencoder 0.025." in text
    assert "autoencoder has the best mean (the lowest)" in text


def test_cells_read_intervals_and_flags_and_tolerate_their_absence():
    matrix = _entry("x", "roc_auc", [[0.9, 0.5]])["report"]["matrices"][0]
    matrix["values"][0][1] = None
    matrix["intervals"][0][1] = None
    matrix["cells"][0][0]["flags"] = ["too few"]
    cells = _cells(matrix)
    assert cells[0][:2] == (0, 0) and cells[0][3] == pytest.approx((0.89, 0.91)) and cells[0][4] == ["too few"]
    assert cells[1][3] is None and cells[1][2] != cells[1][2]  # NaN value
    bare = {"values": [[0.5]]}
    assert _cells(bare) == [(0, 0, 0.5, None, [])]
