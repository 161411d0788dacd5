"""Pipeline specs as data: named steps plus an Optuna search space per parameter.

A spec is ``scaler?`` → ``pca?`` → ``features?`` (a kernel map) → ``classifier``, with fixed parameters and a
search space keyed by scikit-learn's ``step__param`` names. Built-in specs live in
:data:`BUILTIN_SPECS` (adding one is one entry there); installed packages add
theirs through ``fdt.pipelines`` entry points (:func:`plugin_specs`); users add
their own in a TOML file without editing fdt::

    [pipelines.svm-poly]
    description = "SVM with a polynomial kernel"
    scaler = true
    pca = 0.95                       # optional: PCA(n_components=0.95) before the classifier
    whiten = false                   # optional: PCA(whiten=true)
    features = "nystroem"            # optional kernel map: nystroem, rbf-sampler, or module.Class
    features_params = { n_components = 300 }
    classifier = "svc"               # a short name below, a scikit-learn "module.Class", or one allowed by allow_class
    cost = "O(n²·d) per fit"         # shown in fdt pipelines ls
    cost_exponent = 2                # fit time grows as n^cost_exponent (drives the time estimate)
    params = { kernel = "poly", degree = 3 }
    [pipelines.svm-poly.space]
    "classifier__C" = { type = "float", low = 1e-3, high = 1e3, log = true }
    "classifier__degree" = { type = "int", low = 2, high = 5 }

An analysis script gets a plain, unfitted sklearn ``Pipeline`` with
``build_pipeline("svm-rbf", random_state=0)``.
"""

from __future__ import annotations

import importlib
import inspect
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

from fdt.errors import UnsafeNameError, check_name
from fdt.pipelines.errors import PipelineError, UnknownPipelineError

CLASSIFIERS: dict[str, str] = {
    "svc": "sklearn.svm.SVC",
    "linear-svc": "sklearn.svm.LinearSVC",
    "logistic-regression": "sklearn.linear_model.LogisticRegression",
    "random-forest": "sklearn.ensemble.RandomForestClassifier",
    "knn": "sklearn.neighbors.KNeighborsClassifier",
    "sgd": "sklearn.linear_model.SGDClassifier",
    "hist-gradient-boosting": "sklearn.ensemble.HistGradientBoostingClassifier",
    "score-logistic": "fdt.pipelines.score.SingleScoreLogistic",
}
"""Short classifier names a spec may use; any scikit-learn ``module.Class`` works too, and classes allowed by :func:`allow_class`."""

TRUSTED_PACKAGES = ("sklearn",)
"""Packages whose classes a spec file may name: importing them runs only their own code."""

_ALLOWED_CLASSES: set[str] = set()


def allow_class(dotted: str) -> None:
    """Let spec files name the classifier ``module.Class`` (outside scikit-learn): the user vouches for its module.

    A spec file is data, and importing a module runs it: without this, a file
    naming ``"this.Zen"`` (or a module planted in the current folder) would run
    code at ``fdt pipelines ls``. Command line: ``--allow-class module.Class``.
    """
    module, _, attribute = dotted.rpartition(".")
    if not module or not attribute:
        raise SpecError(f"--allow-class takes module.Class, not {dotted!r}")
    _ALLOWED_CLASSES.add(dotted)

FEATURE_MAPS: dict[str, str] = {
    "nystroem": "sklearn.kernel_approximation.Nystroem",
    "rbf-sampler": "sklearn.kernel_approximation.RBFSampler",
}
"""Short names of kernel maps for a spec's ``features`` step; any importable transformer ``module.Class`` works too."""

QUADRATIC = 1.5
"""Specs whose ``cost_exponent`` exceeds this are the O(n²) kind the time estimate watches."""

SPACE_TYPES = ("float", "int", "categorical")
_SPEC_KEYS = {"description", "scaler", "pca", "whiten", "features", "features_params", "classifier", "params", "space", "cost", "cost_exponent"}


class SpecError(PipelineError):
    """A pipeline spec (usually from a user's TOML file) is malformed; the message says where."""


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: ``float``/``int`` in ``[low, high]`` (optionally log-scaled) or ``categorical``."""

    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def to_optuna(self):
        """The equivalent ``optuna.distributions`` object."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.type == "float":
            return FloatDistribution(self.low, self.high, log=self.log)
        if self.type == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return CategoricalDistribution(self.choices)

    def grid(self, points: int) -> list[Any]:
        """``points`` evenly spaced values (geometric when ``log``); every choice for categoricals."""
        if self.type == "categorical":
            return list(self.choices)
        space = np.geomspace if self.log else np.linspace
        values = space(self.low, self.high, points)
        if self.type == "int":
            return sorted({int(round(v)) for v in values})
        return [float(v) for v in values]

    def describe(self) -> str:
        if self.type == "categorical":
            return "{" + ", ".join(map(str, self.choices)) + "}"
        return f"{self.type} [{self.low:g}, {self.high:g}]" + (" log" if self.log else "")


@dataclass(frozen=True)
class PipelineSpec:
    """A named pipeline recipe: optional scaler and PCA, a classifier, fixed params and a search space.

    Parameters
    ----------
    name : str
        The name users pass to ``--pipeline``.
    classifier : str
        A key of :data:`CLASSIFIERS` or an importable ``module.Class`` of a classifier.
    params : dict
        Fixed classifier parameters; they are also the untuned defaults (``--trials 0``).
    space : dict
        ``step__param`` -> :class:`Dimension`, over steps ``scaler``, ``pca``, ``classifier``.
    scaler : bool
        Put a ``StandardScaler`` first.
    pca : int, float or None
        ``n_components`` of a ``PCA`` step, or no PCA (searchable as ``pca__n_components``).
    whiten : bool
        Whiten the PCA step's components (unit variance each).
    features : str or None
        A kernel map (:data:`FEATURE_MAPS` or ``module.Class``) between PCA and the classifier.
    features_params : dict
        Fixed parameters of the ``features`` step.
    cost : str
        The cost class people read in ``fdt pipelines ls``.
    cost_exponent : float
        Fit time grows as ``n ** cost_exponent``; above :data:`QUADRATIC` ``fdt tune``
        estimates the time before it starts.
    """

    name: str
    classifier: str
    params: Mapping[str, Any] = field(default_factory=dict)
    space: Mapping[str, Dimension] = field(default_factory=dict)
    scaler: bool = True
    pca: int | float | None = None
    description: str = ""
    whiten: bool = False
    features: str | None = None
    features_params: Mapping[str, Any] = field(default_factory=dict)
    cost: str = ""
    cost_exponent: float = 1.0

    @property
    def steps(self) -> list[str]:
        switches = (("scaler", self.scaler), ("pca", self.pca is not None), ("features", self.features is not None), ("classifier", True))
        return [s for s, on in switches if on]

    @property
    def quadratic(self) -> bool:
        """Whether fit time grows like n² (or worse): the specs the time estimate warns about."""
        return self.cost_exponent > QUADRATIC

    def build(self, random_state: int | None = None) -> Pipeline:
        """A fresh, unfitted ``Pipeline`` with the spec's defaults; ``random_state`` goes to every step that takes one."""
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        steps: list[tuple[str, Any]] = []
        if self.scaler:
            steps.append(("scaler", StandardScaler()))
        if self.pca is not None:
            steps.append(("pca", PCA(n_components=self.pca, whiten=self.whiten, random_state=random_state)))
        if self.features is not None:
            steps.append(("features", _with_seed(_class(self.features, FEATURE_MAPS, self.name, "kernel map"), self.features_params, random_state)))
        cls = _classifier_class(self.classifier, self.name)
        steps.append(("classifier", _with_seed(cls, self.params, random_state)))
        return Pipeline(steps)

    def distributions(self) -> dict[str, Any]:
        """The search space as ``optuna.distributions`` keyed by pipeline parameter name."""
        return {name: dim.to_optuna() for name, dim in self.space.items()}

    def grid(self, points: int) -> dict[str, list[Any]]:
        """The search space as a ``GridSearchCV`` grid with ``points`` values per numeric parameter."""
        return {name: dim.grid(points) for name, dim in self.space.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as recorded in model cards and reports."""
        return {
            "name": self.name,
            "description": self.description,
            "scaler": self.scaler,
            "pca": self.pca,
            "whiten": self.whiten,
            "features": FEATURE_MAPS.get(self.features, self.features) if self.features else None,
            "features_params": dict(self.features_params),
            "classifier": CLASSIFIERS.get(self.classifier, self.classifier),
            "cost": self.cost,
            "cost_exponent": self.cost_exponent,
            "params": dict(self.params),
            "space": {k: {"type": d.type, "low": d.low, "high": d.high, "log": d.log, "choices": list(d.choices)} for k, d in self.space.items()},
        }


def _float(low: float, high: float, log: bool = True) -> Dimension:
    return Dimension("float", low, high, log)


LINEAR_C = _float(1e-5, 0.1)
"""C of a linear SVM or logistic regression on standardised features.

Every standardised row has ``‖x‖² ≈ d``. Below C ≈ 1/(d + √(n·d)) every row sits
inside the margin and the weights are C times the class-mean difference: smaller C
only rescales them, so the ranking (and ROC AUC) stops changing; 1e-5 is below
that point for fdt's extractors (d ≤ 4096) up to ~100k rows. Above C ≈ 10/d the
fit is a hard margin on separable data: larger C moves nothing but costs
iterations (the slow fits of issue 17: 800 dual iterations at C = 0.1 against 40
at C = 1e-3, same ROC AUC); 0.1 is past that point for every d ≥ 100.
"""

RBF_GAMMA = _float(1e-5, 1e-2)
"""gamma of an RBF kernel on standardised features, for the kernel approximations.

The median-distance heuristic puts gamma near 1/median‖x − x'‖², and standardised
d-dimensional rows are ‖x − x'‖² ≈ 2d apart: 1.2e-4 at d = 4096, 3.9e-4 at
d = 1280, 2e-3 at d = 256. The range spans that point give or take a factor of
ten to a hundred for every d from 256 to 4096; outside it the kernel is either
linear in effect (smaller) or a nearest-neighbour lookup (larger).
"""

LINEAR_PARAMS = {"tol": 1e-3, "max_iter": 1000}
"""liblinear/lbfgs stopping rules: tol 1e-3 (sklearn's 1e-4 moved ROC AUC by < 1e-3 while
costing up to 70× the iterations in our measurements); an iteration cap so a hopeless fit
ends, recorded as not converged."""


BUILTIN_SPECS: dict[str, PipelineSpec] = {
    spec.name: spec
    for spec in (
        PipelineSpec(
            "svm-linear",
            "linear-svc",
            {"C": 1e-3, **LINEAR_PARAMS},
            {"classifier__C": LINEAR_C},
            description="Linear SVM (the seed study's head); dual or primal solver by shape; calibrated with a sigmoid",
            cost="O(n·d) per iteration; primal when n > 3·d, dual otherwise",
        ),
        PipelineSpec(
            "svm-rbf",
            "svc",
            {"kernel": "rbf", "C": 1.0, "gamma": "scale"},
            {"classifier__C": _float(1e-2, 1e3), "classifier__gamma": _float(1e-6, 1e-1)},
            description="RBF-kernel SVM; calibrated with a sigmoid",
            cost="O(n²·d) per fit: up to ~5k rows",
            cost_exponent=2.0,
        ),
        PipelineSpec(
            "logreg",
            "logistic-regression",
            # untuned default: sklearn's C = 1 (lbfgs is fast there); tuning searches LINEAR_C
            {"C": 1.0, "tol": 1e-4, "max_iter": 1000, "warm_start": True},
            {"classifier__C": LINEAR_C},
            description="L2 logistic regression; lbfgs or newton-cholesky by shape, warm-started across trials",
            cost="O(n·d) per iteration",
        ),
        PipelineSpec(
            "random-forest",
            "random-forest",
            {"n_estimators": 200, "n_jobs": 1},
            {
                "classifier__n_estimators": Dimension("int", 50, 500, log=True),
                "classifier__max_depth": Dimension("int", 2, 32, log=True),
                "classifier__min_samples_leaf": Dimension("int", 1, 10),
                "classifier__max_features": Dimension("categorical", choices=("sqrt", "log2")),
            },
            scaler=False,
            description="Random forest (no scaling: trees do not need it)",
            cost="O(trees·n·log n·√d) per fit",
        ),
        PipelineSpec(
            "knn",
            "knn",
            {"n_neighbors": 5},
            {
                "classifier__n_neighbors": Dimension("int", 1, 50, log=True),
                "classifier__weights": Dimension("categorical", choices=("uniform", "distance")),
                "classifier__metric": Dimension("categorical", choices=("euclidean", "cosine")),
            },
            description="k-nearest neighbours",
            cost="O(n²·d) to score a fold: up to ~10k rows",
            cost_exponent=2.0,
        ),
        PipelineSpec(
            "svm-nystroem",
            "linear-svc",
            {"C": 1.0, **LINEAR_PARAMS},
            {
                # Up to as many landmarks as rows (cut by solvers.configure) the map is the exact kernel's:
                # exact svm-rbf's accuracy up to ~4k rows, a fixed cost per row beyond.
                "features__n_components": Dimension("int", 512, 4096, log=True),
                "features__gamma": RBF_GAMMA,
                # Nystroem features have ‖φ(x)‖² ≈ k(x, x) = 1, so C's useful range is C ≈ 1 give or take three decades.
                "classifier__C": _float(1e-3, 1e2),
            },
            features="nystroem",
            features_params={"kernel": "rbf", "n_components": 1024},
            description="RBF kernel approximated by Nystroem (landmarks and gamma tuned) + linear SVM",
            cost="O(n·m·d) per fit (m ≤ 4096 landmarks)",
        ),
        PipelineSpec(
            "logreg-rff",
            "logistic-regression",
            {"C": 1.0, "tol": 1e-4, "max_iter": 1000},
            {
                "features__n_components": Dimension("int", 64, 1024, log=True),
                "features__gamma": RBF_GAMMA,
                "classifier__C": _float(1e-3, 1e2),
            },
            features="rbf-sampler",
            features_params={"n_components": 256},
            description="RBF kernel approximated by random Fourier features (RBFSampler) + logistic regression",
            cost="O(n·m·d) per fit (m components)",
        ),
        PipelineSpec(
            "score",
            "score-logistic",
            # Platt scaling: practically unregularised, nothing to tune
            {"C": 1e6, "max_iter": 1000},
            {},
            scaler=False,
            description="A detector's own score (output=logit) calibrated by a logistic on it; refuses more than one feature",
            cost="O(n) per fit",
        ),
        PipelineSpec(
            "sgd-hinge",
            "sgd",
            {"loss": "hinge", "alpha": 1e-3, "early_stopping": True, "n_iter_no_change": 3, "max_iter": 50, "tol": 1e-3},
            # alpha = 1/(C·n) in SVM terms: the linear C range above at n from 1k to 100k
            {"classifier__alpha": _float(1e-5, 1.0)},
            description="Linear SVM by stochastic gradient descent (hinge loss, early stopping on 10% of the fold); calibrated",
            cost="O(n·d) per epoch, few epochs",
        ),
        PipelineSpec(
            "sgd-log",
            "sgd",
            {"loss": "log_loss", "alpha": 1e-3, "early_stopping": True, "n_iter_no_change": 3, "max_iter": 50, "tol": 1e-3},
            {"classifier__alpha": _float(1e-5, 1.0)},
            description="Logistic regression by stochastic gradient descent (log loss, early stopping on 10% of the fold)",
            cost="O(n·d) per epoch, few epochs",
        ),
        PipelineSpec(
            "hgb",
            "hist-gradient-boosting",
            {"max_iter": 200, "early_stopping": True, "learning_rate": 0.1},
            {
                "classifier__learning_rate": _float(0.02, 0.5),
                "classifier__max_leaf_nodes": Dimension("int", 8, 64, log=True),
                "classifier__l2_regularization": _float(1e-4, 10.0),
            },
            pca=64,
            description="Histogram gradient boosting on 64 PCA components (early stopping on 10% of the fold)",
            cost="O(n·k) per tree after an O(n·d·k) PCA (k = 64)",
        ),
    )
}


PLUGIN_GROUP = "fdt.pipelines"


def plugin_specs() -> dict[str, PipelineSpec]:
    """Specs of installed plugins (``fdt.pipelines`` entry points), by entry-point name.

    An entry point names a :class:`PipelineSpec` or a table as in a spec file. A
    plugin is installed code the user chose to run, so the classifier its spec
    names is allowed (:func:`allow_class`) as if given with ``--allow-class``. A
    spec that is malformed or shadows a built-in is reported in one warning line
    and skipped.
    """
    from fdt import plugins

    found: dict[str, PipelineSpec] = {}
    for name, value in plugins.load_plugins(PLUGIN_GROUP).items():
        if name in BUILTIN_SPECS:
            plugins.report_broken(PLUGIN_GROUP, name, "it would shadow the built-in spec of that name")
            continue
        try:
            if isinstance(value, PipelineSpec):
                value = value.to_dict() | {"name": name}
            if not isinstance(value, Mapping):
                raise SpecError(f"it names {type(value).__name__}, not a PipelineSpec or a spec table")
            table = {k: v for k, v in value.items() if k != "name"}
            classifier = CLASSIFIERS.get(str(table.get("classifier")), str(table.get("classifier")))
            if "." in classifier:
                allow_class(classifier)
            found[name] = spec_from_dict(name, table, where=f"plugin pipeline {name!r}")
        except SpecError as error:
            plugins.report_broken(PLUGIN_GROUP, name, str(error))
    return found


def load_specs(path: str | Path | None = None) -> dict[str, PipelineSpec]:
    """Built-in specs, those of installed plugins, and those of a user TOML file (``[pipelines.<name>]`` tables), by name.

    Raises :class:`SpecError` for a malformed file or a name that shadows a built-in or a plugin's spec.
    """
    specs = dict(BUILTIN_SPECS) | plugin_specs()
    if path is None:
        return specs
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SpecError(f"cannot read pipeline specs {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path}: not valid TOML ({error})") from None
    tables = data.get("pipelines")
    if not isinstance(tables, dict) or not tables:
        raise SpecError(f"{path}: no [pipelines.<name>] tables")
    for name, table in tables.items():
        if name in specs:
            origin = "built-in" if name in BUILTIN_SPECS else "plugin's spec"
            raise SpecError(f"{path}: pipeline {name!r} would shadow the {origin} of that name; rename it")
        specs[name] = spec_from_dict(name, table, where=f"{path}: pipeline {name!r}")
    return specs


def spec_from_dict(name: str, table: Mapping[str, Any], where: str = "") -> PipelineSpec:
    """Validate one spec table (as in the TOML file) and build its :class:`PipelineSpec`."""
    where = where or f"pipeline {name!r}"
    try:
        check_name(name, "pipeline name")  # it becomes part of model file names
    except UnsafeNameError as error:
        raise SpecError(f"{where}: {error}") from None
    if not isinstance(table, Mapping):
        raise SpecError(f"{where}: must be a table")
    unknown = set(table) - _SPEC_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_SPEC_KEYS))}")
    if "classifier" not in table:
        raise SpecError(f"{where}: needs a classifier ({', '.join(CLASSIFIERS)} or module.Class)")
    pca = table.get("pca")
    if pca is False:
        pca = None
    spec = PipelineSpec(
        name=name,
        classifier=str(table["classifier"]),
        params=dict(table.get("params", {})),
        space={key: _dimension(key, value, where) for key, value in dict(table.get("space", {})).items()},
        scaler=bool(table.get("scaler", True)),
        pca=pca,
        description=str(table.get("description", "")),
        whiten=bool(table.get("whiten", False)),
        features=str(table["features"]) if table.get("features") else None,
        features_params=dict(table.get("features_params", {})),
        cost=str(table.get("cost", "")),
        cost_exponent=_exponent(table.get("cost_exponent", 1.0), where),
    )
    for key in spec.space:
        step = key.split("__", 1)[0]
        if "__" not in key or step not in spec.steps:
            raise SpecError(f"{where}: search parameter {key!r} must be 'step__param' with step one of {', '.join(spec.steps)}")
    try:
        spec.build(random_state=0)
    except TypeError as error:
        raise SpecError(f"{where}: {error}") from None
    return spec


def _dimension(key: str, value: Any, where: str) -> Dimension:
    if not isinstance(value, Mapping) or value.get("type") not in SPACE_TYPES:
        raise SpecError(f"{where}: {key} needs type = one of {', '.join(SPACE_TYPES)}")
    if value["type"] == "categorical":
        choices = tuple(value.get("choices", ()))
        if not choices:
            raise SpecError(f"{where}: {key} is categorical but has no choices")
        return Dimension("categorical", choices=choices)
    low, high, log = value.get("low"), value.get("high"), bool(value.get("log", False))
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or not low < high:
        raise SpecError(f"{where}: {key} needs numbers low < high")
    if log and low <= 0:
        raise SpecError(f"{where}: {key} is log-scaled, so low must be positive")
    if value["type"] == "int" and (low != math.floor(low) or high != math.floor(high)):
        raise SpecError(f"{where}: {key} is an int range, so low and high must be integers")
    return Dimension(value["type"], low, high, log)


def _exponent(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 4:
        raise SpecError(f"{where}: cost_exponent must be a number in (0, 4], not {value!r}")
    return float(value)


def _with_seed(cls: type, params: Mapping[str, Any], random_state: int | None) -> Any:
    params = dict(params)
    if "random_state" in inspect.signature(cls).parameters and "random_state" not in params:
        params["random_state"] = random_state
    return cls(**params)


def _class(name: str, short: Mapping[str, str], spec_name: str, what: str) -> type:
    dotted = short.get(name, name)
    module, _, attribute = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attribute) if module else None
    except (ImportError, AttributeError):
        cls = None
    if cls is None or not inspect.isclass(cls) or not hasattr(cls, "transform"):
        raise SpecError(f"pipeline {spec_name!r}: {what} {name!r} is not a short name ({', '.join(short)}) or an importable transformer class")
    return cls


def _classifier_class(classifier: str, spec_name: str) -> type:
    dotted = CLASSIFIERS.get(classifier, classifier)
    module, _, attribute = dotted.rpartition(".")
    if module.split(".")[0] not in TRUSTED_PACKAGES and dotted not in _ALLOWED_CLASSES and dotted not in CLASSIFIERS.values():
        raise SpecError(
            f"pipeline {spec_name!r}: classifier {classifier!r} is not a short name ({', '.join(CLASSIFIERS)}) or a scikit-learn class; "
            f"fdt imports other modules only when you allow them (--allow-class {dotted}, or fdt.pipelines.specs.allow_class)"
        )
    try:
        cls = getattr(importlib.import_module(module), attribute) if module else None
    except (ImportError, AttributeError):
        cls = None
    if cls is None or not inspect.isclass(cls) or not is_classifier(cls()):
        raise SpecError(
            f"pipeline {spec_name!r}: classifier {classifier!r} is not a short name ({', '.join(CLASSIFIERS)}) "
            "or an importable scikit-learn classifier class"
        )
    return cls


def get_spec(name: str, specs_file: str | Path | None = None) -> PipelineSpec:
    """The spec called ``name`` (built in, or from ``specs_file``); an unknown name lists the valid ones."""
    specs = load_specs(specs_file)
    if name not in specs:
        raise UnknownPipelineError(f"unknown pipeline {name!r}; choose one of: {', '.join(sorted(specs))}")
    return specs[name]


def build_pipeline(name: str, random_state: int | None = None, specs_file: str | Path | None = None) -> Pipeline:
    """An unfitted sklearn ``Pipeline`` from a spec name, with the spec's default parameters."""
    return get_spec(name, specs_file).build(random_state=random_state)
