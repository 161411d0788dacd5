"""Scoring a feature that already is a detector's score: calibration, and nothing else fitted.

A fine-tuned network's ``output=logit`` (seed 002's "direct approach") is a
one-number detector. To report it through the same tuning, matrices and
intervals as every feature-plus-head detector, the ``score`` pipeline spec fits
only a logistic on that single feature (Platt scaling): a monotone map, so the
ranking metrics (ROC AUC, AP, EER, TPR at FPR) are the network's own, and the
probabilities are calibrated on the training rows. Given more than one feature
it refuses, since it would then be a learnt classifier under a name that says
it is not.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from fdt.pipelines.errors import PipelineError


class SingleScoreLogistic(LogisticRegression):
    """``LogisticRegression`` on exactly one feature: Platt scaling of a score into a probability."""

    def fit(self, X, y, sample_weight=None):  # noqa: N803 (scikit-learn's names)
        width = np.shape(X)[1] if np.ndim(X) == 2 else None
        if width != 1:
            raise PipelineError(
                f"pipeline 'score' calibrates a single score (an extractor's output=logit, e.g. --param output=logit), "
                f"but these features have {width if width is not None else 'no'} columns; use a learnt head such as logreg or svm-linear"
            )
        return super().fit(X, y, sample_weight=sample_weight)
