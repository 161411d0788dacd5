"""FD, KID and PRDC against independent computations: closed forms, hand-worked cases, torchmetrics and the prdc package."""

from __future__ import annotations

import numpy as np
import pytest

from fdt.pipelines.errors import PipelineError
from fdt.pipelines.quality import (
    Neighbourhoods,
    frechet_distance,
    frechet_from_moments,
    frechet_from_moments_eigh,
    kernel_inception_distance,
    measure_quality,
    moments,
    polynomial_mmd2,
    prdc,
)


def _features(seed: int, n: int = 60, d: int = 6, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, scale, (n, d))


def test_fd_of_diagonal_gaussians_is_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    # diagonal covariances commute, so (S1 S2)^(1/2) is the elementwise root
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_from_moments(mu1, np.diag(s1), mu2, np.diag(s2)).value == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.25 + 4 + 4 + 1 + 0)


def test_fd_of_gaussians_sharing_eigenvectors_is_the_closed_form():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))
    d1, d2 = np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 0.5, 3.0, 1.0])
    s1, s2 = q @ np.diag(d1) @ q.T, q @ np.diag(d2) @ q.T
    mu = np.zeros(4)
    result = frechet_from_moments(mu, s1, mu + 1, s2)
    assert result.value == pytest.approx(4 + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2), rel=1e-9)
    assert result.offset == 0 and result.notes == []


def test_fd_equals_torchmetrics_on_the_same_features():
    torch = pytest.importorskip("torch")
    from torchmetrics.image.fid import _compute_fid

    real, fake = _features(1), _features(2, n=80, shift=0.3, scale=1.5)
    ours = frechet_distance(real, fake).value
    moments_of = lambda X: (torch.from_numpy(X).mean(0), torch.cov(torch.from_numpy(X).T))  # noqa: E731
    theirs = float(_compute_fid(*moments_of(real), *moments_of(fake)))
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert ours > 1.0  # shifted and scaled: far from zero


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")  # pytorch-fid 0.3 on SciPy >= 1.16
def test_fd_equals_pytorch_fids_formula_on_the_same_moments():
    from pytorch_fid.fid_score import calculate_frechet_distance

    real, fake = _features(3, n=50, d=5), _features(4, n=70, d=5, shift=-0.2, scale=0.7)
    mu1, s1 = real.mean(0), np.cov(real, rowvar=False)
    mu2, s2 = fake.mean(0), np.cov(fake, rowvar=False)
    assert frechet_distance(real, fake).value == pytest.approx(calculate_frechet_distance(mu1, s1, mu2, s2), rel=1e-10)


def test_fd_retakes_a_non_finite_root_with_the_eps_offset_and_says_so(monkeypatch: pytest.MonkeyPatch):
    import scipy.linalg

    real_sqrtm, calls = scipy.linalg.sqrtm, []

    def first_root_not_finite(matrix):  # what scipy returns for a product with no square root
        calls.append(matrix)
        return np.full_like(matrix, np.inf) if len(calls) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(scipy.linalg, "sqrtm", first_root_not_finite)
    s1, s2, eps = np.array([1.0, 0.0, 2.0]), np.array([0.0, 3.0, 2.0]), 1e-3
    result = frechet_from_moments(np.zeros(3), np.diag(s1), np.ones(3), np.diag(s2), eps=eps)
    # pytorch-fid: only the root is taken of the shifted covariances; the traces are of the given ones
    expected = 3 + s1.sum() + s2.sum() - 2 * np.sum(np.sqrt((s1 + eps) * (s2 + eps)))
    assert len(calls) == 2 and result.offset == eps and result.value == pytest.approx(expected, rel=1e-12)
    # the bootstrap's route, given the same offset, measures the same quantity
    assert frechet_from_moments_eigh(np.zeros(3), np.diag(s1), np.ones(3), np.diag(s2), offset=eps) == pytest.approx(expected, rel=1e-12)
    assert result.notes == ["the covariance product was singular: 0.001 * I added to both covariances (as pytorch-fid does)"]


def test_fd_with_fewer_images_than_dimensions_is_finite_and_flagged():
    real, fake = _features(1, n=3, d=8), _features(2, n=3, d=8)  # rank-2 covariances in 8 dimensions
    assert np.isfinite(frechet_distance(real, fake).value)
    quality = measure_quality(real, fake, k=1, kid_subsets=2, n_resamples=5)
    assert np.isfinite(quality.fd) and any("below the 8 feature dimensions" in note for note in quality.notes)


@pytest.mark.parametrize("n", [4, 40])  # fewer images than dimensions (singular covariances), and more
def test_the_bootstraps_eigendecomposition_route_equals_sqrtm(n: int):
    real, fake = _features(5, n=n, d=12), _features(6, n=n + 3, d=12, shift=0.2, scale=1.4)
    mu1, s1 = moments(real)
    mu2, s2 = moments(fake)
    assert frechet_from_moments_eigh(mu1, s1, mu2, s2) == pytest.approx(frechet_from_moments(mu1, s1, mu2, s2).value, rel=1e-7)


def test_weighted_moments_equal_the_moments_of_repeated_rows():
    X = _features(3, n=10, d=3)
    counts = np.array([0, 2, 1, 0, 3, 1, 1, 0, 1, 1])
    mean, cov = moments(X, counts)
    repeated = np.repeat(X, counts, axis=0)
    np.testing.assert_allclose(mean, repeated.mean(0))
    np.testing.assert_allclose(cov, np.cov(repeated, rowvar=False))


def test_kid_subset_equals_torchmetrics_poly_mmd():
    torch = pytest.importorskip("torch")
    from torchmetrics.image.kid import poly_mmd

    real, fake = _features(4, n=30), _features(5, n=30, shift=0.5)
    theirs = float(poly_mmd(torch.from_numpy(real), torch.from_numpy(fake)))
    assert polynomial_mmd2(real, fake) == pytest.approx(theirs, rel=1e-10)
    # one subset as large as both sets is the whole sets in another order: the same MMD
    mean, std, m = kernel_inception_distance(real, fake, n_subsets=1, subset_size=1000)
    assert (mean, std, m) == (pytest.approx(theirs, rel=1e-10), 0.0, 30)


def test_kid_is_the_mean_and_std_of_the_seeded_subsets():
    real, fake = _features(6, n=40), _features(7, n=50, shift=1.0)
    mean, std, m = kernel_inception_distance(real, fake, n_subsets=5, subset_size=10, random_state=3)
    rng = np.random.default_rng(3)
    values = [polynomial_mmd2(real[rng.choice(40, 10, replace=False)], fake[rng.choice(50, 10, replace=False)]) for _ in range(5)]
    assert m == 10 and mean == pytest.approx(np.mean(values)) and std == pytest.approx(np.std(values)) and std > 0
    assert mean > kernel_inception_distance(real, _features(8, n=50), n_subsets=5, subset_size=10)[0]


def test_prdc_of_a_hand_worked_case():
    real = np.array([[0.0], [1.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    # k = 1: real radii 1, 1, 2; fake radii 9.5, 9.5.
    # precision: 0.5 lies in real 0's ball, 10 in none -> 1/2; recall: every real lies in fake 0.5's ball -> 1;
    # density: 0.5 lies in the balls of reals 0 and 1, 10 in none -> (2 + 0) / (1 * 2) = 1;
    # coverage: reals 0 and 1 have a fake in their ball, real 3 (nearest fake 2.5 > 2) does not -> 2/3.
    assert prdc(real, fake, k=1) == pytest.approx({"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 2 / 3})


@pytest.mark.parametrize("k", [1, 3, 5])
def test_prdc_equals_the_reference_package(k: int, capsys: pytest.CaptureFixture):
    from prdc import compute_prdc

    real, fake = _features(9, n=70, d=5), _features(10, n=50, d=5, shift=0.4, scale=1.3)
    theirs = compute_prdc(real, fake, nearest_k=k)
    ours = prdc(real, fake, k=k)
    assert ours == pytest.approx({name: float(value) for name, value in theirs.items()}, abs=1e-12)
    assert 0 < ours["precision"] < 1 and 0 < ours["coverage"] < 1


def test_prdc_resample_weights_reweight_the_averaged_points_against_the_full_manifolds():
    real, fake = _features(11, n=20, d=2), _features(12, n=15, d=2, shift=0.5)
    balls = Neighbourhoods.build(real, fake, k=2)
    real_w = np.random.default_rng(0).integers(0, 3, 20).astype(float)
    fake_w = np.random.default_rng(1).integers(0, 3, 15).astype(float)
    got = {name: float(value[0]) for name, value in balls.metrics(real_w, fake_w).items()}
    # by hand, point by point: a resample repeats images, each judged against every ball of the other set
    distance = np.linalg.norm(real[:, None] - fake[None], axis=2)
    inside_real, inside_fake = distance < balls.real_radii[:, None], distance < balls.fake_radii[None, :]
    repeated_fakes = np.repeat(np.arange(15), fake_w.astype(int))
    repeated_reals = np.repeat(np.arange(20), real_w.astype(int))
    expected = {
        "precision": np.mean([inside_real[:, j].any() for j in repeated_fakes]),
        "recall": np.mean([inside_fake[i].any() for i in repeated_reals]),
        "density": np.mean([inside_real[:, j].sum() for j in repeated_fakes]) / 2,
        "coverage": np.mean([inside_real[i].any() for i in repeated_reals]),
    }
    assert got == pytest.approx(expected)
    assert {name: float(v[0]) for name, v in balls.metrics(np.ones(20), np.ones(15)).items()} == pytest.approx(prdc(real, fake, k=2))


def test_measure_quality_carries_intervals_and_tells_far_from_near():
    real = _features(13, n=80, d=4)
    near, far = _features(14, n=80, d=4), _features(15, n=80, d=4, shift=2.0)
    good = measure_quality(real, near, kid_subsets=10, kid_subset_size=40, n_resamples=50, random_state=0)
    bad = measure_quality(real, far, kid_subsets=10, kid_subset_size=40, n_resamples=50, random_state=0)
    for quality in (good, bad):
        low, high = quality.fd_interval
        assert low < high
        for name, (low, high) in quality.prdc_intervals.items():
            assert low <= high, name
    assert bad.fd_interval[0] > good.fd_interval[1]
    assert bad.kid > good.kid + 3 * good.kid_std
    assert bad.prdc["precision"] < good.prdc["precision"] and bad.prdc["coverage"] < good.prdc["coverage"]
    assert good.n_real == 80 and good.kid_subset_size == 40 and "fd_interval" in good.to_dict()
    assert not any("KID subsets" in note for note in good.notes)
    whole = measure_quality(real, near, kid_subsets=3, kid_subset_size=1000, n_resamples=10)
    assert whole.kid_std == pytest.approx(0, abs=1e-12) and any("hold the whole smaller set" in note for note in whole.notes)


def test_measure_quality_is_seeded():
    real, fake = _features(16, n=30, d=3), _features(17, n=30, d=3)
    first = measure_quality(real, fake, kid_subsets=5, kid_subset_size=10, n_resamples=20, random_state=4)
    again = measure_quality(real, fake, kid_subsets=5, kid_subset_size=10, n_resamples=20, random_state=4)
    assert first.to_dict() == again.to_dict()


def test_too_few_images_is_a_user_error():
    with pytest.raises(PipelineError, match="too few"):
        prdc(_features(1, n=4), _features(2, n=10), k=5)
    with pytest.raises(ValueError, match="differ in width"):
        frechet_distance(_features(1, d=3), _features(2, d=4))


def test_the_fd_interval_holds_its_own_estimate_where_resampling_inflates_fd():
    # 30 images in 8 dimensions: every resample's FD sits above the estimate, so plain percentiles would exclude it
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    quality = measure_quality(real, fake, kid_subsets=5, kid_subset_size=10, n_resamples=200, random_state=0)
    low, high = quality.fd_interval
    assert 0 <= low < quality.fd < high
    assert any("recentred on the estimate" in note for note in quality.notes)
    from fdt.pipelines.quality import recentred_interval

    resampled = np.array([2.0, 3.0, 4.0, 5.0, 6.0])
    assert recentred_interval(1.0, resampled, confidence=0.5) == pytest.approx((0.0, 2.0))
    assert recentred_interval(4.0, resampled, confidence=0.5) == pytest.approx((3.0, 5.0))
