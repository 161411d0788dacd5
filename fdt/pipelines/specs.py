"""Pipeline specs as data: named steps plus an Optuna search space per parameter.

A spec is ``scaler?`` → ``pca?`` → ``classifier``, with fixed parameters and a
search space keyed by scikit-learn's ``step__param`` names. Built-in specs live in
:data:`BUILTIN_SPECS`; users add their own in a TOML file without editing fdt::

    [pipelines.svm-poly]
    description = "SVM with a polynomial kernel"
    scaler = true
    pca = 0.95                       # optional: PCA(n_components=0.95) before the classifier
    classifier = "svc"               # a short name below, a scikit-learn "module.Class", or one allowed by allow_class
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

SPACE_TYPES = ("float", "int", "categorical")
_SPEC_KEYS = {"description", "scaler", "pca", "classifier", "params", "space"}


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
        ``n_components`` of a ``PCA`` step, or no PCA.
    """

    name: str
    classifier: str
    params: Mapping[str, Any] = field(default_factory=dict)
    space: Mapping[str, Dimension] = field(default_factory=dict)
    scaler: bool = True
    pca: int | float | None = None
    description: str = ""

    @property
    def steps(self) -> list[str]:
        return [s for s, on in (("scaler", self.scaler), ("pca", self.pca is not None), ("classifier", True)) if on]

    def build(self, random_state: int | None = None) -> Pipeline:
        """A fresh, unfitted ``Pipeline`` with the spec's defaults; ``random_state`` goes to every step that takes one."""
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        steps: list[tuple[str, Any]] = []
        if self.scaler:
            steps.append(("scaler", StandardScaler()))
        if self.pca is not None:
            steps.append(("pca", PCA(n_components=self.pca, random_state=random_state)))
        cls = _classifier_class(self.classifier, self.name)
        params = dict(self.params)
        if "random_state" in inspect.signature(cls).parameters and "random_state" not in params:
            params["random_state"] = random_state
        steps.append(("classifier", cls(**params)))
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
            "classifier": CLASSIFIERS.get(self.classifier, self.classifier),
            "params": dict(self.params),
            "space": {k: {"type": d.type, "low": d.low, "high": d.high, "log": d.log, "choices": list(d.choices)} for k, d in self.space.items()},
        }


def _float(low: float, high: float, log: bool = True) -> Dimension:
    return Dimension("float", low, high, log)


BUILTIN_SPECS: dict[str, PipelineSpec] = {
    spec.name: spec
    for spec in (
        PipelineSpec(
            "svm-linear",
            "linear-svc",
            {"C": 1.0, "max_iter": 5000},
            {"classifier__C": _float(1e-4, 1e2)},
            description="Linear SVM (the seed study's head); calibrated with a sigmoid",
        ),
        PipelineSpec(
            "svm-rbf",
            "svc",
            {"kernel": "rbf", "C": 1.0, "gamma": "scale"},
            {"classifier__C": _float(1e-2, 1e3), "classifier__gamma": _float(1e-6, 1e-1)},
            description="RBF-kernel SVM; calibrated with a sigmoid",
        ),
        PipelineSpec(
            "logreg",
            "logistic-regression",
            {"C": 1.0, "max_iter": 2000},
            {"classifier__C": _float(1e-4, 1e2)},
            description="L2 logistic regression",
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
        ),
    )
}


def load_specs(path: str | Path | None = None) -> dict[str, PipelineSpec]:
    """Built-in specs plus those of a user TOML file (``[pipelines.<name>]`` tables), by name.

    Raises :class:`SpecError` for a malformed file or a name that shadows a built-in.
    """
    specs = dict(BUILTIN_SPECS)
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
        if name in BUILTIN_SPECS:
            raise SpecError(f"{path}: pipeline {name!r} would shadow the built-in of that name; rename it")
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


def _classifier_class(classifier: str, spec_name: str) -> type:
    dotted = CLASSIFIERS.get(classifier, classifier)
    module, _, attribute = dotted.rpartition(".")
    if module.split(".")[0] not in TRUSTED_PACKAGES and dotted not in _ALLOWED_CLASSES:
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
