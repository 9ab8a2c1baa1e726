"""Statistics of the synthetic tasks against their declared data model.

Tolerances are ``Z`` standard errors of the estimate at the sample size used, with the standard
error computed exactly (Gaussian moments by Gauss-Hermite quadrature, binomial variances), so a
failure means the generator disagrees with its docstring, not bad luck: with Z = 5 a false alarm
has probability ~6e-7 per check (and the seeds are fixed, so a passing test stays passing).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.tasks import SingleIndexParams, make_task

Z = 5.0

#: Probabilists' Hermite polynomials written out, an independent check of numpy's hermite_e.
HERMITE = {
    1: lambda z: z,
    2: lambda z: z**2 - 1,
    3: lambda z: z**3 - 3 * z,
    4: lambda z: z**4 - 6 * z**2 + 3,
    5: lambda z: z**5 - 10 * z**3 + 15 * z,
    6: lambda z: z**6 - 15 * z**4 + 45 * z**2 - 15,
}


def _gaussian_expectation(f) -> float:
    """E[f(z)], z ~ N(0, 1), exact for polynomials of degree <= 79 (40-node Gauss-Hermite rule)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    return float(np.sum(weights * f(nodes)) / np.sum(weights))


def _normalised_hermite(k: int):
    return lambda z: HERMITE[k](z) / math.sqrt(math.factorial(k))


# --------------------------------------------------------------------------------- single_index

#: 1e6 samples in d = 4 (z = <w, x> is N(0, 1) whatever d is, so a small d buys a large n cheaply).
SI_N = 1_000_000
SI_D = 4


@pytest.mark.parametrize("degree", range(1, 7))
def test_single_index_link_is_normalised_hermite(degree: int) -> None:
    link = SingleIndexParams(degree=degree).link
    # population: E[y^2] = 1 exactly, orthogonal to lower degrees (quadrature is exact here)
    assert _gaussian_expectation(lambda z: link(z) ** 2) == pytest.approx(1.0, abs=1e-12)
    for j in range(1, degree):
        assert abs(_gaussian_expectation(lambda z: link(z) * HERMITE[j](z))) < 1e-10
    task = make_task("single_index", seed=degree, d=8, degree=degree, n_train=50, n_test=50)
    w = task.meta["w"]
    assert np.linalg.norm(w) == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(task.y_test[:, 0], _normalised_hermite(degree)(task.x_test @ w), rtol=1e-12, atol=1e-12)


def test_single_index_second_moment_and_hermite_orthogonality_on_a_large_sample() -> None:
    task = make_task("single_index", seed=7, d=SI_D, degree=3, n_train=SI_N, n_test=1)
    z = task.x_train @ task.meta["w"]
    features = np.stack([_normalised_hermite(k)(z) for k in range(1, 7)], axis=1)
    gram = features.T @ features / SI_N  # estimates E[He_j He_k] / sqrt(j! k!) = delta_jk
    for j in range(1, 7):
        for k in range(1, 7):
            second = _gaussian_expectation(lambda t: (_normalised_hermite(j)(t) * _normalised_hermite(k)(t)) ** 2)
            sd = math.sqrt((second - float(j == k)) / SI_N)
            assert abs(gram[j - 1, k - 1] - float(j == k)) < Z * sd, (j, k, gram[j - 1, k - 1], Z * sd)
    # E[y^2] = 1 for the task's own targets: Var(y^2) = E[He_3^4]/36 - 1 = 92
    sd = math.sqrt((_gaussian_expectation(lambda t: _normalised_hermite(3)(t) ** 4) - 1.0) / SI_N)
    assert abs(np.mean(task.y_train**2) - 1.0) < Z * sd


def test_single_index_noise_only_on_train() -> None:
    clean = make_task("single_index", seed=2, degree=2, n_train=20_000, n_test=100)
    noisy = make_task("single_index", seed=2, degree=2, n_train=20_000, n_test=100, noise=0.5)
    np.testing.assert_array_equal(noisy.x_train, clean.x_train)
    np.testing.assert_array_equal(noisy.y_test, clean.y_test)
    residual = noisy.y_train - clean.y_train
    # sample std of n Gaussians: standard error noise / sqrt(2 n)
    assert abs(residual.std() - 0.5) < Z * 0.5 / math.sqrt(2 * 20_000)


# ----------------------------------------------------------------------------- linear_regression

LR_N = 100_000
LR_D = 32


@pytest.mark.parametrize("beta", ["isotropic", "aligned"])
def test_linear_regression_covariance_and_unit_variance(beta: str) -> None:
    decay = 1.0
    task = make_task("linear_regression", seed=1, d=LR_D, spectrum_decay=decay, beta=beta, n_train=LR_N, n_test=LR_N)
    lam = task.meta["covariance_eigenvalues"]
    i = np.arange(1, LR_D + 1)
    np.testing.assert_allclose(lam, LR_D * i**-decay / np.sum(i**-decay), rtol=1e-14)
    assert lam.sum() == pytest.approx(LR_D, rel=1e-14)
    b = task.meta["beta"]
    assert float(np.sum(lam * b**2)) == pytest.approx(1.0, abs=1e-12)  # population Var(y) = 1

    x = task.x_train
    cov = x.T @ x / LR_N  # the mean is known to be 0
    # diagonal entries: Var(x_i^2) = 2 lambda_i^2 -> standard error lambda_i sqrt(2 / n)
    np.testing.assert_array_less(np.abs(np.diag(cov) - lam), Z * lam * math.sqrt(2 / LR_N))
    # off-diagonal: Var(x_i x_j) = lambda_i lambda_j
    off = ~np.eye(LR_D, dtype=bool)
    np.testing.assert_array_less(np.abs(cov - np.diag(lam))[off], (Z * np.sqrt(np.outer(lam, lam) / LR_N))[off])
    # spectrum: by Ostrowski's theorem eig_i(cov) / lambda_i lies between the extreme eigenvalues of
    # a white Wishart / n, i.e. within (1 +- sqrt(d/n))^2 (Marchenko-Pastur edges), plus a margin
    eig = np.sort(np.linalg.eigvalsh(cov))[::-1]
    edge = 2 * math.sqrt(LR_D / LR_N) + LR_D / LR_N
    np.testing.assert_array_less(np.abs(eig / lam - 1.0), 1.5 * edge)

    # clean test targets are exactly <beta, x>, with variance ~1 (sample variance s.e. sqrt(2/n))
    np.testing.assert_allclose(task.y_test[:, 0], task.x_test @ b, rtol=0, atol=1e-12)
    assert abs(task.y_test.var() - 1.0) < Z * math.sqrt(2 / LR_N)


def test_linear_regression_aligned_beta_puts_its_power_on_the_top_of_the_spectrum() -> None:
    # power lambda_i beta_i^2 has mean ~ lambda_i (isotropic) vs ~ lambda_i^2 (aligned): compare
    # the share on the top quarter of a steep spectrum, averaged over seeds.
    def top_share(beta: str) -> float:
        shares = []
        for seed in range(40):
            t = make_task("linear_regression", seed=seed, d=32, spectrum_decay=2.0, beta=beta, n_train=1, n_test=1)
            power = t.meta["covariance_eigenvalues"] * t.meta["beta"] ** 2
            shares.append(power[:8].sum() / power.sum())
        return float(np.mean(shares))

    assert top_share("aligned") > top_share("isotropic")


def test_linear_regression_noise_only_on_train() -> None:
    n = 20_000
    clean = make_task("linear_regression", seed=4, n_train=n, n_test=50)
    noisy = make_task("linear_regression", seed=4, n_train=n, n_test=50, noise=0.3)
    np.testing.assert_array_equal(noisy.y_test, clean.y_test)
    residual = noisy.y_train[:, 0] - noisy.x_train @ noisy.meta["beta"]
    assert abs(residual.std() - 0.3) < Z * 0.3 / math.sqrt(2 * n)


def test_test_set_does_not_depend_on_n_train_and_train_sets_are_nested() -> None:
    small = make_task("linear_regression", seed=9, n_train=10, n_test=20)
    large = make_task("linear_regression", seed=9, n_train=30, n_test=20)
    np.testing.assert_array_equal(small.x_test, large.x_test)
    np.testing.assert_array_equal(small.x_train, large.x_train[:10])


# --------------------------------------------------------------------------------- sparse_parity


def test_sparse_parity_labels_are_the_product_over_the_support() -> None:
    n, p = 20_000, 0.1
    task = make_task("sparse_parity", seed=3, d=20, k=4, noise=p, n_train=n, n_test=2_000)
    support = task.meta["support"]
    assert support.shape == (4,) and np.all(np.diff(support) > 0) and 0 <= support.min() and support.max() < 20
    for x in (task.x_train, task.x_test):
        assert set(np.unique(x)) == {-1.0, 1.0}
    np.testing.assert_array_equal(task.y_test[:, 0], np.prod(task.x_test[:, support], axis=1))
    clean_train = np.prod(task.x_train[:, support], axis=1)
    flipped = task.meta["flipped_train"]
    np.testing.assert_array_equal(task.y_train[:, 0], np.where(flipped, -clean_train, clean_train))
    # flips are Bernoulli(p): standard error sqrt(p (1 - p) / n)
    assert abs(flipped.mean() - p) < Z * math.sqrt(p * (1 - p) / n)
    # classes are balanced (the parity of uniform signs is a fair coin)
    assert abs(task.meta["labels_test"].mean() - 0.5) < Z * math.sqrt(0.25 / 2_000)
    assert task.meta["n_classes"] == 2


def test_sparse_parity_noise_free_by_default_and_support_depends_on_seed() -> None:
    task = make_task("sparse_parity", seed=0, n_train=200, n_test=10)
    assert not task.meta["flipped_train"].any()
    supports = {tuple(make_task("sparse_parity", seed=s, n_train=1, n_test=1).meta["support"]) for s in range(10)}
    assert len(supports) > 1


# ------------------------------------------------------------------------------ gaussian_mixture


def test_gaussian_mixture_balanced_with_means_at_the_separation() -> None:
    k, d, sep = 4, 10, 2.5
    task = make_task("gaussian_mixture", seed=6, d=d, n_classes=k, separation=sep, n_train=20_003, n_test=1_001)
    means = task.meta["means"]
    assert means.shape == (k, d)
    dist = np.linalg.norm(means[:, None, :] - means[None, :, :], axis=-1)
    np.testing.assert_allclose(dist[~np.eye(k, dtype=bool)], sep, rtol=1e-12)
    for labels, n in ((task.meta["labels_train"], 20_003), (task.meta["labels_test"], 1_001)):
        counts = np.bincount(labels, minlength=k)
        assert counts.sum() == n and counts.max() - counts.min() <= 1
    labels = task.meta["labels_train"]
    for c in range(k):
        xc = task.x_train[labels == c]
        # class mean: each coordinate has standard error 1 / sqrt(n_c); residual covariance ~ I
        np.testing.assert_array_less(np.abs(xc.mean(axis=0) - means[c]), Z / math.sqrt(len(xc)))
        resid = xc - means[c]
        cov = resid.T @ resid / len(xc)
        np.testing.assert_array_less(np.abs(cov - np.eye(d)), Z * math.sqrt(2 / len(xc)))
    assert task.y_train.shape == (20_003, k)


def test_gaussian_mixture_two_classes_give_pm1_targets() -> None:
    task = make_task("gaussian_mixture", seed=0, n_train=11, n_test=5)
    assert task.out_dim == 1 and set(np.unique(task.y_train)) == {-1.0, 1.0}
    assert abs(int(np.sum(task.y_train))) == 1  # 11 samples: 6 and 5


# ------------------------------------------------------------------------------ teacher_student


def _rebuild_teacher(task) -> np.ndarray:
    """The clean targets, recomputed independently from the teacher recorded in meta."""
    spec = task.meta["teacher_spec"]
    d = task.input_shape[0]
    net = spec.to_torch(task.meta["teacher_width"], input_shape=(d,), seed=task.meta["teacher_seed"], dtype=torch.float64)
    with torch.no_grad():
        return [task.meta["output_scale"] * net(torch.from_numpy(x)).numpy() for x in (task.x_train, task.x_test)]


def test_teacher_student_targets_have_unit_std_and_match_the_teacher() -> None:
    task = make_task("teacher_student", seed=2, n_train=300, n_test=500)
    assert np.concatenate([task.y_train, task.y_test]).std() == pytest.approx(1.0, abs=1e-12)
    spec = task.meta["teacher_spec"]
    assert (spec.kind, spec.depth, spec.activation, spec.parametrization) == ("fc", 1, "relu", "ntk")
    assert spec.w_std == pytest.approx(math.sqrt(2))
    f_train, f_test = _rebuild_teacher(task)
    np.testing.assert_allclose(task.y_train, f_train, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(task.y_test, f_test, rtol=1e-12, atol=1e-12)


def test_teacher_student_noise_only_on_train() -> None:
    n, noise = 20_000, 0.4
    clean = make_task("teacher_student", seed=8, d=6, teacher_width=64, n_train=n, n_test=300)
    noisy = make_task("teacher_student", seed=8, d=6, teacher_width=64, n_train=n, n_test=300, noise=noise)
    np.testing.assert_array_equal(noisy.x_train, clean.x_train)
    np.testing.assert_array_equal(noisy.y_test, clean.y_test)  # test targets: the clean teacher
    f_train, _ = _rebuild_teacher(noisy)
    residual = noisy.y_train - f_train
    assert abs(residual.std() - noise) < Z * noise / math.sqrt(2 * n)
    assert abs(residual.mean()) < Z * noise / math.sqrt(n)


def test_teacher_student_sphere_inputs_and_other_activations() -> None:
    task = make_task("teacher_student", seed=1, d=9, input_dist="sphere", teacher_activation="erf", teacher_depth=2, n_train=50, n_test=20)
    np.testing.assert_allclose(np.linalg.norm(task.x_train, axis=1), 3.0, rtol=1e-14)
    assert task.meta["teacher_spec"].w_std == 1.0 and task.meta["teacher_spec"].depth == 2
    linear = make_task("teacher_student", seed=1, teacher_activation="linear", teacher_depth=0, n_train=20, n_test=20)
    assert linear.meta["params"]["teacher_activation"] == "identity"
    # a depth-0 identity teacher is a linear function: least squares fits the clean targets exactly
    x = np.concatenate([linear.x_train, linear.x_test])
    y = np.concatenate([linear.y_train, linear.y_test])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    np.testing.assert_allclose(x @ coef, y, atol=1e-10)
