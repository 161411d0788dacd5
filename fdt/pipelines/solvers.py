"""Solver settings chosen from the shape of the rows a linear head is fitted on.

A linear head's cost depends less on its hyper-parameters than on how its solver
meets the data's shape. liblinear's dual coordinate descent does one pass over
the rows per iteration and converges slowly once rows far outnumber features (the
dual has one variable per row); its primal trust-region Newton solver does a few
passes per iteration and converges in tens of iterations there, but stalls at
large C when rows and features are of one order (see :data:`DUAL_MAX_RATIO`). Logistic regression's ``lbfgs`` costs
O(n·d) per iteration at any shape; ``newton-cholesky`` converges in a handful of
iterations but each costs O(n·d² + d³), which pays only with many rows and few
features. So the choice needs ``n`` and the number of features that reach the
classifier (after a PCA or kernel-map step), which only exists at fit time:
:func:`configure` sets it on a pipeline just before each fit.

Only parameters left at scikit-learn's default are changed (``dual="auto"``,
``solver="lbfgs"``): a spec that names a solver keeps it.
"""

from __future__ import annotations

from typing import Any

DUAL_MAX_RATIO = 3
"""``LinearSVC`` uses the dual solver up to this many rows per feature. Measured on standardised
4096-d rows with a weak signal: at 2 rows per feature the primal took 126 s at C = 1 (1,009
iterations) where the dual took 23 s, and 6 s against 14.5 s at C = 0.01; at 4 rows per feature
(1024-d) the primal won at every C (0.4 s against up to 2.9 s and a non-converged dual). sklearn's
``dual="auto"`` switches at 1."""
DUAL_TOL_FACTOR = 10
"""liblinear's dual stops on the dual's projected gradient, which is looser per unit of tolerance
than the primal's rule: with near-duplicate rows (a group's copies) the dual at tol 1e-3 took
twice the time of tol 1e-2 for the same held-out ROC AUC to four decimals (C from 1e-3 to 0.1,
3,333 × 4096 standardised rows), so the dual gets the spec's tolerance times this."""
NEWTON_CHOLESKY_MAX_FEATURES = 1024
"""Above this many features ``newton-cholesky``'s O(d³) factorisation costs more than lbfgs's iterations."""
NEWTON_CHOLESKY_MIN_RATIO = 10
"""``newton-cholesky`` only when rows outnumber features this many times (its Hessian is then cheap to form relative to the gain)."""


def features_reaching_classifier(pipeline: Any, n_samples: int, n_features: int) -> int:
    """How many columns the last step of ``pipeline`` sees, given an ``n_samples × n_features`` input."""
    steps = dict(getattr(pipeline, "steps", []))
    width = n_features
    pca = steps.get("pca")
    if pca is not None and isinstance(pca.n_components, int):
        width = min(pca.n_components, n_samples, width)
    mapping = steps.get("features")
    if mapping is not None and isinstance(getattr(mapping, "n_components", None), int):
        width = min(mapping.n_components, n_samples) if _is_nystroem(mapping) else mapping.n_components
    return width


def _is_nystroem(step: Any) -> bool:
    from sklearn.kernel_approximation import Nystroem

    return isinstance(step, Nystroem)


def choose(classifier: Any, n_samples: int, n_features: int) -> dict[str, Any]:
    """The solver parameters for ``classifier`` fitted on ``n_samples × n_features`` rows (empty when nothing applies).

    ``LinearSVC``: the primal solver when rows outnumber features more than
    :data:`DUAL_MAX_RATIO` times, the dual one otherwise (hinge loss only has a
    dual; an L1 penalty only a primal); the dual's tolerance is scaled by
    :data:`DUAL_TOL_FACTOR`.
    ``LogisticRegression``: ``newton-cholesky`` when rows outnumber features at
    least :data:`NEWTON_CHOLESKY_MIN_RATIO` times and features are at most
    :data:`NEWTON_CHOLESKY_MAX_FEATURES`, else ``lbfgs``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    if isinstance(classifier, LinearSVC) and classifier.dual == "auto":
        if classifier.loss == "hinge":
            return {"dual": True}
        if classifier.penalty == "l1":
            return {"dual": False}
        if n_samples < DUAL_MAX_RATIO * n_features:
            return {"dual": True, "tol": classifier.tol * DUAL_TOL_FACTOR}
        return {"dual": False}
    if isinstance(classifier, LogisticRegression) and classifier.solver == "lbfgs" and not classifier.l1_ratio:
        many_rows = n_samples >= NEWTON_CHOLESKY_MIN_RATIO * n_features
        return {"solver": "newton-cholesky" if many_rows and n_features <= NEWTON_CHOLESKY_MAX_FEATURES else "lbfgs"}
    return {}


def configure(estimator: Any, n_samples: int, n_features: int, random_state: int | None = None) -> dict[str, Any]:
    """Set :func:`choose`'s parameters on ``estimator`` (a pipeline or a bare classifier) in place; return them.

    liblinear's dual visits rows in a random order: when this function picks it for
    an unseeded classifier, ``random_state`` seeds it, so a seeded search stays reproducible.

    A PCA step asking for more components than the rows have (``pca = 64`` on
    16-d features) is cut to what exists, and that is returned too, as
    ``pca__n_components``: a spec written for wide features still runs on narrow ones.
    A Nystroem step asking for more landmarks than there are rows is cut to the
    rows (``features__n_components``): the map is then the exact kernel's, which
    is what more landmarks would give (scikit-learn cuts it too, with a warning per fit).
    """
    chosen: dict[str, Any] = {}
    steps = dict(getattr(estimator, "steps", []))
    pca = steps.get("pca")
    if pca is not None and isinstance(pca.n_components, int) and pca.n_components > min(n_samples, n_features):
        pca.set_params(n_components=min(n_samples, n_features))
        chosen["pca__n_components"] = pca.n_components
    mapping = steps.get("features")
    if mapping is not None and _is_nystroem(mapping) and mapping.n_components > n_samples:
        mapping.set_params(n_components=n_samples)
        chosen["features__n_components"] = n_samples
    classifier = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    solver = choose(classifier, n_samples, features_reaching_classifier(estimator, n_samples, n_features))
    if solver.get("dual") and classifier.random_state is None and random_state is not None:
        solver["random_state"] = random_state
    classifier.set_params(**solver)
    return {**chosen, **solver}
