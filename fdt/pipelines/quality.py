"""Sample quality in a feature space: Fréchet distance, KID and precision/recall/density/coverage of fakes against reals.

These are the numbers generative-model papers report (FID, KID, the
k-nearest-neighbour manifold metrics); seed study 003 asks how they relate to
detectability, so :mod:`fdt.pipelines.quality_report` puts them next to a
detector's ROC AUC. Everything here works on stored features of any extractor:
the Fréchet distance is "the FID" only on Inception-v3 pool3 features of the
published weights, and every report names its feature space.

Definitions, exactly (so anyone can reproduce a number):

- **Fréchet distance** (Heusel et al. 2017): ``|mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2))``
  of the two sets' means and covariances (``numpy.cov``, ``ddof=1``), in float64,
  the square root by ``scipy.linalg.sqrtm`` as pytorch-fid computes it. When that
  root is not finite (near-singular covariances, e.g. fewer images than feature
  dimensions) ``eps * I`` is added to both covariances and the root retaken, as in
  pytorch-fid; the offset used is reported. A complex root's imaginary part (round-off)
  is dropped; when it is not negligible the result carries a note instead of failing.
- **KID** (Bińkowski et al. 2018): the unbiased MMD² estimate with the kernel
  ``k(x, y) = (x·y / d + 1)^3``, on ``n_subsets`` pairs of random subsets (drawn
  without replacement) of ``min(subset_size, n_real, n_fake)`` rows each; the
  value is the mean over subsets and its spread the standard deviation over them.
- **Precision and recall** (Kynkäänniemi et al. 2019) and **density and coverage**
  (Naeem et al. 2020), with k-nearest-neighbour balls (``k`` = 5 by default):
  a real's radius is the distance to its k-th nearest other real, a fake's to its
  k-th nearest other fake; precision is the share of fakes inside some real ball,
  recall the share of reals inside some fake ball, density the mean number of real
  balls holding a fake divided by ``k``, coverage the share of reals whose ball holds
  some fake. Distances are Euclidean, comparisons strict (``<``), as in the
  reference ``prdc`` package.

Intervals: FD and the four k-NN metrics carry a 95 % percentile bootstrap over
groups (:func:`fdt.pipelines.intervals.bootstrap_weights`, the same resampling
as every detection metric): a resample is a vector of row counts. FD is
recomputed from the weighted moments, its trace term by symmetric eigendecompositions
(:func:`frechet_from_moments_eigh`, the same quantity as ``sqrtm``'s, with the
point estimate's offset if it took one, about twice as fast; the point estimate
keeps pytorch-fid's ``sqrtm``). FD is biased upwards at small n, and a
resample's duplicated images make it more so: the resamples sit above the
estimate, often all of them, so their percentiles would give an interval that
excludes the estimate it belongs to. FD's interval is therefore the resamples'
spread recentred on the estimate (:func:`recentred_interval`: their 2.5 and 97.5
percentiles moved by the amount their median exceeds the estimate, floored at 0),
and a note says how far the resamples sat above it. Each k-NN
metric is a mean over one set's points (precision and density over fakes, recall
and coverage over reals), so a resample reweights those points against the other
set's manifold as estimated from the full set; re-estimating radii inside a
resample would be wrong, since a duplicated image is its own nearest neighbour at
distance 0. These intervals therefore leave out the manifold estimate's own
variance. KID's spread is its standard deviation over subsets, as the KID paper
reports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from fdt.pipelines.errors import PipelineError

FD_EPS = 1e-6
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
NEAREST_K = 5
QUALITY_RESAMPLES = 100
IMAGINARY_TOLERANCE = 1e-3
PRDC = ("precision", "recall", "density", "coverage")
_CHUNK_ROWS = 1024  # reals per distance block: 1024 x n_fake float64 at a time


@dataclass
class Frechet:
    """A Fréchet distance and what it took to compute it."""

    value: float
    offset: float = 0.0
    """``eps`` added to both covariances' diagonals because the root of their product was not finite (0: none)."""
    imaginary: float = 0.0
    """Largest imaginary part dropped from the root's diagonal (round-off when small)."""

    @property
    def notes(self) -> list[str]:
        notes = []
        if self.offset:
            notes.append(f"the covariance product was singular: {self.offset:g} * I added to both covariances (as pytorch-fid does)")
        if self.imaginary > IMAGINARY_TOLERANCE:
            notes.append(f"the covariance root had an imaginary part up to {self.imaginary:.3g} (dropped): the covariances are near-singular")
        return notes


def moments(X: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``ddof=1``) in float64; ``weights`` are integer row counts (a bootstrap resample)."""
    X = np.asarray(X, dtype=np.float64)
    if weights is None:
        return X.mean(axis=0), np.atleast_2d(np.cov(X, rowvar=False))
    counts = np.rint(weights).astype(np.int64)
    keep = counts > 0
    return np.average(X[keep], axis=0, weights=counts[keep]), np.atleast_2d(np.cov(X[keep], rowvar=False, fweights=counts[keep]))


def frechet_from_moments(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = FD_EPS) -> Frechet:
    """``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2))`` (see the module docstring for the numerics)."""
    from scipy.linalg import sqrtm

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"moments of different shapes: {mu1.shape}, {sigma1.shape} vs {mu2.shape}, {sigma2.shape}")
    diff = mu1 - mu2
    root = _quiet_sqrtm(sqrtm, sigma1 @ sigma2)
    offset = 0.0
    if not np.isfinite(root).all():
        offset = eps
        shift = np.eye(mu1.size) * eps
        root = _quiet_sqrtm(sqrtm, (sigma1 + shift) @ (sigma2 + shift))
    imaginary = 0.0
    if np.iscomplexobj(root):
        imaginary = float(np.max(np.abs(np.diagonal(root).imag)))
        root = root.real
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root))
    return Frechet(value, offset, imaginary)


def _quiet_sqrtm(sqrtm, matrix: np.ndarray) -> np.ndarray:
    """scipy's root without its singular-matrix warning: the caller checks the result and says what it did."""
    import warnings

    from scipy.linalg import LinAlgWarning

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", LinAlgWarning)
        return sqrtm(matrix)


def frechet_from_moments_eigh(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, offset: float = 0.0) -> float:
    """The same distance through symmetric eigendecompositions: what each bootstrap resample uses.

    ``S1 S2`` has the eigenvalues of the symmetric ``S1^(1/2) S2 S1^(1/2)``, so
    ``tr (S1 S2)^(1/2)`` is the sum of the square roots of that matrix's eigenvalues
    (round-off negatives clipped to 0). Two ``eigh`` calls cost less than
    ``sqrtm``'s Schur decomposition and need no complex arithmetic. ``offset`` is
    the point estimate's (:attr:`Frechet.offset`), added to both covariances for the
    root only, as there, so resamples and point estimate measure the same thing.
    """
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    shift = np.eye(diff.size) * offset
    values, vectors = np.linalg.eigh(sigma1 + shift)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ (sigma2 + shift) @ root1), 0, None)).sum()
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_root)


def frechet_distance(real: np.ndarray, fake: np.ndarray, eps: float = FD_EPS) -> Frechet:
    """The Fréchet distance between the Gaussians fitted to two feature sets (rows are images)."""
    _check_features(real, fake, minimum=2)
    return frechet_from_moments(*moments(real), *moments(fake), eps=eps)


def polynomial_mmd2(real: np.ndarray, fake: np.ndarray) -> float:
    """The unbiased MMD² of two equal-size sets with the kernel ``(x·y / d + 1)^3`` (one KID subset)."""
    x, y = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m, d = x.shape
    k_xx, k_yy, k_xy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / m**2)


def kernel_inception_distance(
    real: np.ndarray, fake: np.ndarray, n_subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE, random_state: int = 0
) -> tuple[float, float, int]:
    """KID as ``(mean, std over subsets, subset size used)``; subsets are drawn by ``numpy.random.default_rng(random_state)``."""
    _check_features(real, fake, minimum=2)
    if n_subsets < 1 or subset_size < 2:
        raise PipelineError(f"KID needs at least 1 subset of at least 2 rows, not {n_subsets} of {subset_size}")
    m = min(subset_size, len(real), len(fake))
    rng = np.random.default_rng(random_state)
    values = np.array([
        polynomial_mmd2(real[rng.choice(len(real), m, replace=False)], fake[rng.choice(len(fake), m, replace=False)])
        for _ in range(n_subsets)
    ])
    return float(values.mean()), float(values.std()), m


@dataclass
class Neighbourhoods:
    """What the k-NN balls of one real and one fake set say about each point, for the four metrics.

    Per fake ``j``: ``fake_inside[j]`` (inside some real ball: precision) and
    ``fake_balls[j]`` (how many real balls hold it: density). Per real ``i``:
    ``real_inside[i]`` (inside some fake ball: recall) and ``real_covered[i]``
    (some fake inside its own ball: coverage). Radii come from the full sets.
    """

    k: int
    real_radii: np.ndarray
    fake_radii: np.ndarray
    fake_inside: np.ndarray = field(repr=False)
    fake_balls: np.ndarray = field(repr=False)
    real_inside: np.ndarray = field(repr=False)
    real_covered: np.ndarray = field(repr=False)

    @classmethod
    def build(cls, real: np.ndarray, fake: np.ndarray, k: int = NEAREST_K) -> "Neighbourhoods":
        _check_features(real, fake, minimum=k + 1, why=f"k = {k} nearest neighbours")
        real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
        real_radii, fake_radii = _kth_neighbour_distance(real, k), _kth_neighbour_distance(fake, k)
        fake_balls = np.zeros(len(fake))
        real_inside, real_covered = np.empty(len(real), bool), np.empty(len(real), bool)
        for rows, distances in _cross_distances(real, fake):
            in_real_ball = distances < real_radii[rows, None]
            fake_balls += in_real_ball.sum(axis=0)
            real_covered[rows] = in_real_ball.any(axis=1)
            real_inside[rows] = (distances < fake_radii[None, :]).any(axis=1)
        return cls(k, real_radii, fake_radii, fake_balls > 0, fake_balls, real_inside, real_covered)

    def metrics(self, real_weights: np.ndarray | None = None, fake_weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Precision, recall, density and coverage for each row of the weights ``(b, n_real)`` and ``(b, n_fake)``.

        Each metric is a mean over one set's points (fakes for precision and density,
        reals for recall and coverage), so a resample reweights those points, each
        judged against the other set's full manifold; all weights 1 is the plain estimate.
        """
        wr = np.ones((1, self.real_inside.size)) if real_weights is None else np.atleast_2d(np.asarray(real_weights, float))
        wf = np.ones((1, self.fake_inside.size)) if fake_weights is None else np.atleast_2d(np.asarray(fake_weights, float))
        fakes, reals = wf.sum(axis=1), wr.sum(axis=1)
        return {
            "precision": wf @ self.fake_inside / fakes,
            "recall": wr @ self.real_inside / reals,
            "density": wf @ self.fake_balls / (self.k * fakes),
            "coverage": wr @ self.real_covered / reals,
        }


def prdc(real: np.ndarray, fake: np.ndarray, k: int = NEAREST_K) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` against ``real`` (see the module docstring)."""
    return {name: float(value[0]) for name, value in Neighbourhoods.build(real, fake, k).metrics().items()}


def _kth_neighbour_distance(X: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row (the row itself is neighbour 0)."""
    from sklearn.neighbors import NearestNeighbors

    distances, _ = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(X).kneighbors(X)
    return distances[:, k]


def _cross_distances(real: np.ndarray, fake: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    from sklearn.metrics import pairwise_distances

    for start in range(0, len(real), _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        yield rows, pairwise_distances(real[rows], fake, metric="euclidean")


def _check_features(real: np.ndarray, fake: np.ndarray, minimum: int, why: str = "a covariance") -> None:
    for name, X in (("real", real), ("fake", fake)):
        if np.ndim(X) != 2:
            raise ValueError(f"{name} features must be a 2-D array (images x features), not of shape {np.shape(X)}")
        if len(X) < minimum:
            raise PipelineError(f"{len(X)} {name} images are too few: {why} needs at least {minimum}")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake features differ in width: {real.shape[1]} vs {fake.shape[1]}")


@dataclass
class Quality:
    """Every quality metric of one fake set against the reals, with intervals and caveats."""

    n_real: int
    n_fake: int
    dimensions: int
    fd: float
    fd_interval: tuple[float, float]
    kid: float
    kid_std: float
    kid_subset_size: int
    prdc: dict[str, float]
    prdc_intervals: dict[str, tuple[float, float]]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_real": self.n_real,
            "n_fake": self.n_fake,
            "dimensions": self.dimensions,
            "fd": self.fd,
            "fd_interval": list(self.fd_interval),
            "kid": self.kid,
            "kid_std": self.kid_std,
            "kid_subset_size": self.kid_subset_size,
            **self.prdc,
            **{f"{name}_interval": list(interval) for name, interval in self.prdc_intervals.items()},
            "notes": self.notes,
        }


def recentred_interval(point: float, resampled: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The resamples' central ``confidence`` spread, moved so that their median sits on ``point`` (floored at 0).

    For a statistic that resampling itself inflates (FD: duplicated rows shrink
    the effective sample and swell the covariance noise), the percentile interval
    measures the inflated statistic; its width is still the spread of interest.
    """
    tail = (1 - confidence) / 2 * 100
    low, median, high = np.nanpercentile(resampled, [tail, 50, 100 - tail])
    return max(0.0, float(point - (median - low))), float(point + (high - median))


def measure_quality(
    real: np.ndarray,
    fake: np.ndarray,
    real_groups: Sequence | None = None,
    fake_groups: Sequence | None = None,
    k: int = NEAREST_K,
    kid_subsets: int = KID_SUBSETS,
    kid_subset_size: int = KID_SUBSET_SIZE,
    n_resamples: int = QUALITY_RESAMPLES,
    confidence: float = 0.95,
    random_state: int = 0,
    progress: bool = False,
) -> Quality:
    """FD, KID and PRDC of ``fake`` against ``real``, with bootstrap intervals over groups (each image its own group by default).

    FD is biased upwards with few images (its covariance estimate needs many more
    images than dimensions), so a note says when ``n`` is below the feature width.
    """
    from tqdm.auto import tqdm

    from fdt.pipelines.intervals import bootstrap_weights

    real, fake = np.asarray(real), np.asarray(fake)
    _check_features(real, fake, minimum=max(2, k + 1), why=f"a covariance and k = {k} nearest neighbours")
    real_groups = np.asarray([f"real:{i}" for i in range(len(real))] if real_groups is None else real_groups).astype(str)
    fake_groups = np.asarray([f"fake:{i}" for i in range(len(fake))] if fake_groups is None else fake_groups).astype(str)
    y = np.r_[np.zeros(len(real), int), np.ones(len(fake), int)]
    weights = bootstrap_weights(y, np.r_[real_groups, fake_groups], n_resamples, random_state)
    real_w, fake_w = weights[:, : len(real)], weights[:, len(real) :]

    point = frechet_distance(real, fake)
    fd_resampled = np.array([
        frechet_from_moments_eigh(*moments(real, wr), *moments(fake, wf), offset=point.offset)
        for wr, wf in tqdm(zip(real_w, fake_w), total=n_resamples, desc="FD bootstrap", disable=not progress, leave=False)
    ])
    kid, kid_std, m = kernel_inception_distance(real, fake, kid_subsets, kid_subset_size, random_state)
    balls = Neighbourhoods.build(real, fake, k)
    plain = balls.metrics()
    resampled = balls.metrics(real_w, fake_w)
    tail = (1 - confidence) / 2 * 100
    interval = lambda values: tuple(float(v) for v in np.nanpercentile(values, [tail, 100 - tail]))  # noqa: E731
    notes = list(point.notes)
    inflation = float(np.nanmedian(fd_resampled) - point.value)
    if np.nanpercentile(fd_resampled, tail) > point.value:
        notes.append(
            f"FD's bootstrap resamples sat {inflation:.3g} above the estimate (duplicated images inflate FD), so its interval is "
            "their spread recentred on the estimate"
        )
    dimensions = real.shape[1]
    smallest = min(len(real), len(fake))
    if smallest < dimensions:
        notes.append(f"n = {smallest} images is below the {dimensions} feature dimensions: FD is biased upwards and not comparable across n")
    if m == smallest:
        notes.append(
            f"KID subsets of {m} images hold the whole smaller set, so KID's ± std reflects only the other set's subsampling "
            f"(0 when both sets have {m} images); a --kid-subset-size below {m} gives a spread"
        )
    return Quality(
        n_real=len(real), n_fake=len(fake), dimensions=dimensions,
        fd=point.value, fd_interval=recentred_interval(point.value, fd_resampled, confidence),
        kid=kid, kid_std=kid_std, kid_subset_size=m,
        prdc={name: float(plain[name][0]) for name in PRDC},
        prdc_intervals={name: interval(resampled[name]) for name in PRDC},
        notes=notes,
    )


def format_kid(mean: float, std: float) -> str:
    """``mean ± std`` over subsets, in three significant digits (KID values are small and often below 0.01)."""
    if math.isnan(mean):
        return "–"
    return f"{mean:.3g} ± {std:.2g}"
