"""Synthetic tasks: every sample is drawn from a known distribution, so theory can be exact.

Train and test inputs come from separate random streams of the seed (so the test set does not
change with n_train, and a larger n_train extends the smaller train set), as do the target
function (teacher, beta, w, support, means) and the label noise (so changing ``noise`` leaves
inputs and target function unchanged). Label noise is applied to the TRAIN targets only: the
test targets are the clean target function, so test error measures how well the function was
learned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from genlab.models._spec import ACTIVATION_ALIASES, ACTIVATIONS
from genlab.tasks._task import (
    Task,
    TaskError,
    TaskParams,
    check_choice,
    check_int,
    check_real,
    class_targets,
    classification_meta,
    derived_seed,
    rng,
)

#: Largest single-index degree: He_k of a Gaussian has E[He_k^4] / k!^2 growing fast, and the
#: information exponent k beyond 6 is out of reach for any sample size a study can afford.
MAX_DEGREE = 6


def _gaussian_inputs(params: TaskParams, seed: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    x_train = rng(seed, params.name, "x_train").standard_normal((params.n_train, d))
    x_test = rng(seed, params.name, "x_test").standard_normal((params.n_test, d))
    return x_train, x_test


def _train_noise(params: TaskParams, seed: int, noise: float) -> np.ndarray:
    return noise * rng(seed, params.name, "noise").standard_normal((params.n_train, 1))


@dataclass(frozen=True, kw_only=True)
class TeacherStudentParams(TaskParams):
    """Teacher–student regression: the targets are a random network of genlab's own family.

    Data model: ``x ~ N(0, I_d)`` (``input_dist="gaussian"``) or uniform on the sphere of radius
    ``sqrt(d)`` (``"sphere"``, the setting where NTK eigenfunctions are spherical harmonics). The
    teacher is ``ArchSpec(kind="fc", depth=teacher_depth, activation=teacher_activation,
    parametrization="ntk", w_std=sqrt(2) for relu else 1).to_torch(teacher_width, input_shape=(d,),
    seed=meta["teacher_seed"], dtype=float64)`` (no biases), and ``y = output_scale * teacher(x)``
    where ``output_scale`` makes the clean targets of the generated train+test set have unit
    standard deviation (population std, not centred: ``std(concat(f_train, f_test)) = 1``).
    Because the scale is fitted on the generated set it varies slightly with n_train/n_test;
    meta carries ``"teacher_spec"``, ``"teacher_seed"``, ``"teacher_width"`` and ``"output_scale"``
    to rebuild the exact teacher. Train targets get Gaussian noise ``N(0, noise^2)``; test
    targets are clean.

    References: Gardner & Derrida 1989 (J. Phys. A 22, "Three unfinished works on the optimal
    storage capacity of networks"); Seung, Sompolinsky & Tishby 1992 (Phys. Rev. A 45, "Statistical
    mechanics of learning from examples"); Goldt, Advani, Saxe, Krzakala & Zdeborova 2019
    (NeurIPS, "Dynamics of stochastic gradient descent for two-layer neural networks in the
    teacher-student setup").
    """

    name: ClassVar[str] = "teacher_student"
    n_train: int = 256
    n_test: int = 1000
    d: int = 16
    noise: float = 0.0
    teacher_depth: int = 1
    teacher_width: int = 256
    teacher_activation: str = "relu"
    input_dist: str = "gaussian"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "d", low=1)
        check_real(self, "noise", low=0.0)
        check_int(self, "teacher_depth", low=0)
        check_int(self, "teacher_width", low=1)
        if isinstance(self.teacher_activation, str) and self.teacher_activation in ACTIVATION_ALIASES:
            object.__setattr__(self, "teacher_activation", ACTIVATION_ALIASES[self.teacher_activation])
        check_choice(self, "teacher_activation", ACTIVATIONS)
        check_choice(self, "input_dist", ("gaussian", "sphere"))

    def teacher_spec(self):
        """The teacher's :class:`~genlab.models.ArchSpec`."""
        from genlab.models import ArchSpec

        w_std = math.sqrt(2.0) if self.teacher_activation == "relu" else 1.0
        return ArchSpec(
            kind="fc", depth=self.teacher_depth, activation=self.teacher_activation, parametrization="ntk", w_std=w_std
        )

    def generate(self, *, seed: int) -> Task:
        import torch

        x_train, x_test = _gaussian_inputs(self, seed, self.d)
        if self.input_dist == "sphere":
            x_train, x_test = (math.sqrt(self.d) * x / np.linalg.norm(x, axis=1, keepdims=True) for x in (x_train, x_test))
        spec = self.teacher_spec()
        teacher_seed = derived_seed(seed, self.name, "teacher")
        net = spec.to_torch(self.teacher_width, input_shape=(self.d,), seed=teacher_seed, dtype=torch.float64)
        with torch.no_grad():
            f_train, f_test = (net(torch.from_numpy(x)).numpy().astype(np.float64) for x in (x_train, x_test))
        std = float(np.concatenate([f_train, f_test]).std())
        if not std > 0.0:
            raise TaskError(
                f"the teacher of 'teacher_student' is constant on the generated set (task.seed={seed}); "
                "change task.seed, task.teacher_activation or the sizes"
            )
        scale = 1.0 / std
        y_train = scale * f_train + _train_noise(self, seed, self.noise)
        y_test = scale * f_test
        return self._task(
            seed, x_train, y_train, x_test, y_test,
            teacher_spec=spec, teacher_seed=teacher_seed, teacher_width=self.teacher_width, output_scale=scale,
        )


@dataclass(frozen=True, kw_only=True)
class LinearRegressionParams(TaskParams):
    """Linear regression with a power-law input spectrum (spectral learning curves, double descent).

    Data model: ``x ~ N(0, Sigma)`` with ``Sigma = diag(lambda_1, ..., lambda_d)``,
    ``lambda_i proportional to i^(-spectrum_decay)`` normalised to ``trace(Sigma) = d``
    (``meta["covariance_eigenvalues"]``, descending; the eigenvectors are the coordinate axes), and
    ``y = <beta, x>`` (``meta["beta"]``). ``beta`` is drawn as ``g ~ N(0, I_d)`` ("isotropic": a
    uniformly random direction) or ``sqrt(lambda) * g`` ("aligned": the target's power
    ``lambda_i beta_i^2`` on eigendirection i decays like ``lambda_i^2`` instead of ``lambda_i``,
    an easier, source-condition-like target), then rescaled so that ``beta^T Sigma beta = 1``:
    the clean targets have population variance exactly 1. Train targets get Gaussian noise
    ``N(0, noise^2)``; test targets are clean. With ``spectrum_decay=0`` both choices coincide.

    References: Hastie, Montanari, Rosset & Tibshirani 2022 (Ann. Statist., "Surprises in
    high-dimensional ridgeless least squares interpolation"); Bartlett, Long, Lugosi & Tsigler 2020
    (PNAS, "Benign overfitting in linear regression"); Bordelon, Canatar & Pehlevan 2020 (ICML,
    "Spectrum dependent learning curves in kernel regression and wide neural networks").
    """

    name: ClassVar[str] = "linear_regression"
    n_train: int = 256
    n_test: int = 1000
    d: int = 32
    spectrum_decay: float = 0.0
    noise: float = 0.0
    beta: str = "isotropic"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "d", low=1)
        check_real(self, "spectrum_decay", low=0.0)
        check_real(self, "noise", low=0.0)
        check_choice(self, "beta", ("isotropic", "aligned"))

    def eigenvalues(self) -> np.ndarray:
        """The covariance eigenvalues, descending, summing to d."""
        lam = np.arange(1, self.d + 1, dtype=np.float64) ** (-self.spectrum_decay)
        return self.d * lam / lam.sum()

    def generate(self, *, seed: int) -> Task:
        lam = self.eigenvalues()
        g = rng(seed, self.name, "beta").standard_normal(self.d)
        b = g if self.beta == "isotropic" else np.sqrt(lam) * g
        beta = b / math.sqrt(float(np.sum(lam * b**2)))
        z_train, z_test = _gaussian_inputs(self, seed, self.d)
        x_train, x_test = np.sqrt(lam) * z_train, np.sqrt(lam) * z_test
        y_train = (x_train @ beta)[:, None] + _train_noise(self, seed, self.noise)
        y_test = (x_test @ beta)[:, None]
        return self._task(seed, x_train, y_train, x_test, y_test, covariance_eigenvalues=lam, beta=beta)


@dataclass(frozen=True, kw_only=True)
class SingleIndexParams(TaskParams):
    """Single-index model with a Hermite link of given degree (information exponent = degree).

    Data model: ``x ~ N(0, I_d)``, ``w`` uniform on the unit sphere (``meta["w"]``), and
    ``y = He_k(<w, x>) / sqrt(k!)`` with ``He_k`` the probabilists' Hermite polynomial of degree
    ``k = degree`` (numpy.polynomial.hermite_e), so that ``E[y^2] = 1`` and different degrees are
    orthogonal. Train targets get Gaussian noise ``N(0, noise^2)``; test targets are clean.
    Degree 1 is a linear target; higher degrees are invisible to low-order kernel components.

    References: Ben Arous, Gheissari & Jagannath 2021 (JMLR, "Online stochastic gradient descent
    on non-convex losses from high-dimensional inference"); Ba, Erdogdu, Suzuki, Wang, Wu & Yang
    2022 (NeurIPS, "High-dimensional asymptotics of feature learning: how one gradient step improves
    the representation"); Bietti, Bruna, Sanford & Song 2022 (NeurIPS, "Learning single-index models
    with shallow neural networks").
    """

    name: ClassVar[str] = "single_index"
    n_train: int = 256
    n_test: int = 1000
    d: int = 32
    degree: int = 2
    noise: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "d", low=1)
        check_int(self, "degree", low=1, high=MAX_DEGREE)
        check_real(self, "noise", low=0.0)

    def link(self, z: np.ndarray) -> np.ndarray:
        """``He_degree(z) / sqrt(degree!)``."""
        coef = np.zeros(self.degree + 1)
        coef[self.degree] = 1.0
        return np.polynomial.hermite_e.hermeval(z, coef) / math.sqrt(math.factorial(self.degree))

    def generate(self, *, seed: int) -> Task:
        g = rng(seed, self.name, "w").standard_normal(self.d)
        w = g / np.linalg.norm(g)
        x_train, x_test = _gaussian_inputs(self, seed, self.d)
        y_train = self.link(x_train @ w)[:, None] + _train_noise(self, seed, self.noise)
        y_test = self.link(x_test @ w)[:, None]
        return self._task(seed, x_train, y_train, x_test, y_test, w=w)


@dataclass(frozen=True, kw_only=True)
class SparseParityParams(TaskParams):
    """Sparse parity: the label is the product of k hidden coordinates of a random sign vector.

    Data model: ``x`` uniform on ``{-1, +1}^d``, a support ``S`` of ``k`` distinct coordinates
    drawn uniformly (``meta["support"]``, sorted), ``y = prod_{i in S} x_i`` in {-1, +1}
    (label 1 for +1, 0 for -1). Each TRAIN label is flipped independently with probability
    ``noise`` (``meta["flipped_train"]``, a bool mask); ``labels_train``/``y_train`` are the flipped
    ones, test labels are clean. Classification with 2 classes, targets ±1.

    References: Barak, Edelman, Goel, Kakade, Malach & Zhang 2022 (NeurIPS, "Hidden progress in
    deep learning: SGD learns parities near the computational limit"); Abbe, Boix-Adsera &
    Misiakiewicz 2022 (COLT, "The merged-staircase property").
    """

    name: ClassVar[str] = "sparse_parity"
    kind: ClassVar[str] = "classification"
    n_train: int = 1000
    n_test: int = 1000
    d: int = 20
    k: int = 3
    noise: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "d", low=1)
        check_int(self, "k", low=1, high=self.d, what=f"an int in 1..task.d = {self.d}")
        check_real(self, "noise", low=0.0, high=0.5)

    def generate(self, *, seed: int) -> Task:
        support = np.sort(rng(seed, self.name, "support").choice(self.d, size=self.k, replace=False)).astype(np.int64)
        x_train, x_test = (
            2.0 * rng(seed, self.name, stream).integers(0, 2, size=(n, self.d)).astype(np.float64) - 1.0
            for stream, n in (("x_train", self.n_train), ("x_test", self.n_test))
        )
        labels_train, labels_test = ((np.prod(x[:, support], axis=1) > 0).astype(np.int64) for x in (x_train, x_test))
        flipped = rng(seed, self.name, "noise").random(self.n_train) < self.noise
        labels_train = np.where(flipped, 1 - labels_train, labels_train)
        return self._task(
            seed, x_train, class_targets(labels_train, 2), x_test, class_targets(labels_test, 2),
            **classification_meta(labels_train, labels_test, 2), support=support, flipped_train=flipped,
        )


@dataclass(frozen=True, kw_only=True)
class GaussianMixtureParams(TaskParams):
    """Balanced mixture of isotropic Gaussians, one per class, at a fixed pairwise distance.

    Data model: orthonormal directions ``u_1, ..., u_K`` (QR of a Gaussian matrix, so
    ``n_classes <= d``), class means ``mu_c = separation / sqrt(2) * u_c`` (``meta["means"]``,
    shape ``(K, d)``), so that every pair of means is exactly ``separation`` apart; ``x = mu_c +
    N(0, I_d)``. Labels are balanced: each split holds ``n // K`` or ``n // K + 1`` samples of each
    class, in random order. Two classes give ±1 targets, more give one-hot targets.

    References: Mignacco, Krzakala, Lu, Urbani & Zdeborova 2020 (ICML, "The role of regularization
    in classification of high-dimensional noisy Gaussian mixture"); Refinetti, Goldt, Krzakala &
    Zdeborova 2021 (ICML, "Classifying high-dimensional Gaussian mixtures: where kernel methods fail
    and neural networks succeed").
    """

    name: ClassVar[str] = "gaussian_mixture"
    kind: ClassVar[str] = "classification"
    n_train: int = 256
    n_test: int = 1000
    d: int = 16
    n_classes: int = 2
    separation: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "d", low=2)
        check_int(self, "n_classes", low=2, high=self.d, what=f"an int in 2..task.d = {self.d}")
        check_real(self, "separation", low=0.0)

    def generate(self, *, seed: int) -> Task:
        q, r = np.linalg.qr(rng(seed, self.name, "means").standard_normal((self.d, self.n_classes)))
        q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
        means = self.separation / math.sqrt(2.0) * q.T
        out = []
        for split, n in (("train", self.n_train), ("test", self.n_test)):
            gen = rng(seed, self.name, f"x_{split}")
            labels = gen.permutation(np.arange(n) % self.n_classes).astype(np.int64)
            out.append((means[labels] + gen.standard_normal((n, self.d)), labels))
        (x_train, labels_train), (x_test, labels_test) = out
        return self._task(
            seed, x_train, class_targets(labels_train, self.n_classes), x_test, class_targets(labels_test, self.n_classes),
            **classification_meta(labels_train, labels_test, self.n_classes), means=means,
        )


@dataclass(frozen=True, kw_only=True)
class SparseLinearRegressionParams(TaskParams):
    """Sparse planted linear regression, typically with fewer samples than dimensions (n < d).

    Data model: ``x ~ N(0, I_d)``, ``beta*`` with ``k`` nonzero entries on a uniformly random
    support (``meta["support"]``, sorted), each ``+-1/sqrt(k)`` with a random sign, so that
    ``||beta*||_2 = 1`` and the clean targets ``y = <beta*, x>`` have unit variance
    (``meta["beta"]``). Train targets get Gaussian noise ``N(0, noise^2)``; test targets are
    clean. With ``n_train < d`` the interpolating solutions form an affine space, and which one
    gradient descent finds is the implicit bias of the model.

    References: Woodworth, Gunasekar, Lee, Moroshko, Savarese, Golan, Soudry & Srebro 2020 (COLT,
    "Kernel and rich regimes in overparametrized models"), their sparse regression experiment;
    Candes & Tao 2005 (IEEE Trans. Inf. Theory, "Decoding by linear programming").
    """

    name: ClassVar[str] = "sparse_linear_regression"
    n_train: int = 40
    n_test: int = 500
    d: int = 100
    k: int = 5
    noise: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "d", low=1)
        check_int(self, "k", low=1, high=self.d, what=f"an int in 1..task.d = {self.d}")
        check_real(self, "noise", low=0.0)

    def generate(self, *, seed: int) -> Task:
        gen = rng(seed, self.name, "beta")
        support = np.sort(gen.choice(self.d, size=self.k, replace=False)).astype(np.int64)
        beta = np.zeros(self.d)
        beta[support] = gen.choice([-1.0, 1.0], size=self.k) / math.sqrt(self.k)
        x_train, x_test = _gaussian_inputs(self, seed, self.d)
        y_train = (x_train @ beta)[:, None] + _train_noise(self, seed, self.noise)
        y_test = (x_test @ beta)[:, None]
        return self._task(seed, x_train, y_train, x_test, y_test, beta=beta, support=support)


@dataclass(frozen=True, kw_only=True)
class LinearSeparableParams(TaskParams):
    """Linearly separable binary classification through the origin, with a guaranteed margin.

    Data model: a unit teacher direction ``w*`` (``meta["w"]``, uniform on the sphere); inputs
    ``x ~ N(0, I_d)`` conditioned on ``|<w*, x>| >= margin`` (rejection sampling, in batches
    from each split's stream); labels ``sign(<w*, x>)`` as +-1 targets. Both splits follow this
    distribution, so every split is separable by ``w*`` with margin at least ``margin``
    (the max-margin direction of the train set is in general not ``w*``).

    References: Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018 (JMLR, "The implicit bias of
    gradient descent on separable data"); Ji & Telgarsky 2019 (COLT, "The implicit bias of
    gradient descent on nonseparable data").
    """

    name: ClassVar[str] = "linear_separable"
    kind: ClassVar[str] = "classification"
    n_train: int = 100
    n_test: int = 1000
    d: int = 10
    margin: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "d", low=1)
        check_real(self, "margin", low=0.0, high=3.0)

    def generate(self, *, seed: int) -> Task:
        w = rng(seed, self.name, "w").standard_normal(self.d)
        w /= np.linalg.norm(w)
        out = []
        for split, n in (("train", self.n_train), ("test", self.n_test)):
            gen, kept = rng(seed, self.name, f"x_{split}"), []
            while sum(len(b) for b in kept) < n:
                batch = gen.standard_normal((2 * n + 16, self.d))
                kept.append(batch[np.abs(batch @ w) >= self.margin])
            x = np.concatenate(kept)[:n]
            out.append((x, (x @ w > 0).astype(np.int64)))
        (x_train, labels_train), (x_test, labels_test) = out
        return self._task(
            seed, x_train, class_targets(labels_train, 2), x_test, class_targets(labels_test, 2),
            **classification_meta(labels_train, labels_test, 2), w=w,
        )
