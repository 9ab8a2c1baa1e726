"""LARS (You et al. 2017, Algorithm 1) and LAMB (You et al. 2020, Algorithm 2): two steps against
a plain-Python reference of the formulas on a two-layer quadratic, the zero-norm convention,
convergence on least squares and the state-dict round trip."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from genlab.optim import LAMB, LARS

# Two "layers": w in R^2 with f_w = 1/2 w^T A w, and b in R^1 with f_b = 3/2 b^2.
A = [[2.0, 0.5], [0.5, 1.0]]
W0, B0 = [1.0, -2.0], [0.5]


def _grads(w: list[float], b: list[float]) -> tuple[list[float], list[float]]:
    return [A[0][0] * w[0] + A[0][1] * w[1], A[1][0] * w[0] + A[1][1] * w[1]], [3.0 * b[0]]


def _norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def _run(opt_factory, steps: int) -> tuple[np.ndarray, np.ndarray, torch.optim.Optimizer]:
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(B0, dtype=torch.float64, requires_grad=True)
    opt = opt_factory([w, b])
    a = torch.tensor(A, dtype=torch.float64)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * w @ a @ w + 1.5 * (b**2).sum()).backward()
        opt.step()
    return w.detach().numpy(), b.detach().numpy(), opt


def test_lars_two_steps_match_the_formulas() -> None:
    """lambda_l = eta ||w_l|| / (||g_l|| + beta ||w_l||), v <- m v + lr lambda_l (g_l + beta w_l),
    w_l <- w_l - v, per layer, with momentum 0.9 and weight decay 0.1 (2 steps exercise the
    buffer). Reference in plain floats; 1e-12 is float64 rounding."""
    lr, eta, beta, m = 0.5, 0.01, 0.1, 0.9
    layers = [list(W0), list(B0)]
    bufs: list[list[float] | None] = [None, None]
    for _ in range(2):
        grads = _grads(*layers)
        for k, (p, g) in enumerate(zip(layers, grads, strict=True)):
            local = eta * _norm(p) / (_norm(g) + beta * _norm(p))
            update = [lr * local * (g[i] + beta * p[i]) for i in range(len(p))]
            bufs[k] = update if bufs[k] is None else [m * bufs[k][i] + update[i] for i in range(len(p))]
            layers[k] = [p[i] - bufs[k][i] for i in range(len(p))]
    w, b, _ = _run(lambda ps: LARS(ps, lr=lr, momentum=m, weight_decay=beta, trust_coefficient=eta), 2)
    np.testing.assert_allclose(w, layers[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(b, layers[1], rtol=0, atol=1e-12)


def test_lamb_two_steps_match_the_formulas() -> None:
    """Bias-corrected Adam direction r = m_hat / (sqrt(v_hat) + eps), plus weight decay, scaled
    per layer by ||w_l|| / ||r_l + lambda w_l||; two steps so that the bias corrections
    (1 - b^t) differ from the first step's. Reference in plain floats; 1e-12."""
    lr, b1, b2, eps, lam = 0.1, 0.9, 0.999, 1e-6, 0.01
    layers = [list(W0), list(B0)]
    ms = [[0.0] * len(p) for p in layers]
    vs = [[0.0] * len(p) for p in layers]
    for t in (1, 2):
        grads = _grads(*layers)
        for k, (p, g) in enumerate(zip(layers, grads, strict=True)):
            ms[k] = [b1 * ms[k][i] + (1 - b1) * g[i] for i in range(len(p))]
            vs[k] = [b2 * vs[k][i] + (1 - b2) * g[i] ** 2 for i in range(len(p))]
            r = [(ms[k][i] / (1 - b1**t)) / (math.sqrt(vs[k][i] / (1 - b2**t)) + eps) + lam * p[i] for i in range(len(p))]
            ratio = _norm(p) / _norm(r)
            layers[k] = [p[i] - lr * ratio * r[i] for i in range(len(p))]
    w, b, _ = _run(lambda ps: LAMB(ps, lr=lr, betas=(b1, b2), eps=eps, weight_decay=lam), 2)
    np.testing.assert_allclose(w, layers[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(b, layers[1], rtol=0, atol=1e-12)


def test_zero_norm_layer_takes_the_untrusted_step() -> None:
    """A layer at 0 (a bias initialised at 0) has no trust ratio: LARS steps it by
    lr * eta * g (lambda = eta), LAMB by lr * r; with trust=False LARS is plain SGD."""
    # Each value is a few float64 roundings (0.01 is not representable; the Adam moments and bias
    # corrections of LAMB round, and kernels may fuse multiply-adds differently per CPU): 1e-14.
    for trust, expected in ((True, -0.5 * 0.01 * 2.0), (False, -0.5 * 2.0)):
        p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = LARS([p], lr=0.5, momentum=0.0, trust_coefficient=0.01, trust=trust)
        (2.0 * p).sum().backward()
        opt.step()
        assert float(p.detach()) == pytest.approx(expected, rel=1e-14)
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = LAMB([p], lr=0.5, eps=0.0)
    (2.0 * p).sum().backward()
    opt.step()
    assert float(p.detach()) == pytest.approx(-0.5, rel=1e-14)  # r = g / |g| = 1 at t = 1


def _least_squares(opt_factory, steps: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(20, 3)))
    y = torch.from_numpy(rng.normal(size=20))
    w = torch.full((3,), 0.1, dtype=torch.float64, requires_grad=True)
    opt = opt_factory([w])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (1 - s / steps) ** 2)  # polynomial decay (You et al.)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * ((x @ w - y) ** 2).mean()).backward()
        opt.step()
        sched.step()
    return w.detach().numpy(), np.linalg.pinv(x.numpy()) @ y.numpy()


def test_lars_and_lamb_converge_to_the_least_squares_solution() -> None:
    """The trust ratio normalizes the step to ~ lr eta ||w|| (LARS) or lr ||w|| (LAMB) however
    small the gradient, so with a constant rate they rattle around the minimum; the polynomial
    decay (1 - t/T)^2 of You et al. brings them to the pinv solution (|w*| ~ 0.6, start 0.1).
    Measured max errors after 3000 steps: LARS 3.3e-6 (1.1e-4 with lr 20 after 1000, 6e-6 after
    3000: it shrinks with T), LAMB 7.8e-7; tolerances 2e-5 and 5e-6 (~6x)."""
    w, solution = _least_squares(lambda ps: LARS(ps, lr=5.0, momentum=0.9, trust_coefficient=0.01), 3000)
    np.testing.assert_allclose(w, solution, atol=2e-5)
    w, solution = _least_squares(lambda ps: LAMB(ps, lr=0.05), 3000)
    np.testing.assert_allclose(w, solution, atol=5e-6)


def test_state_dict_round_trip() -> None:
    """3 steps, save, reload into a fresh optimizer, 2 more: bit-for-bit equal to 5 steps."""
    for factory in (lambda ps: LARS(ps, lr=0.5, momentum=0.9, trust_coefficient=0.01), lambda ps: LAMB(ps, lr=0.1)):
        w5, b5, _ = _run(factory, 5)
        w3, b3, opt = _run(factory, 3)
        w = torch.tensor(w3, requires_grad=True)
        b = torch.tensor(b3, requires_grad=True)
        opt2 = factory([w, b])
        opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
        a = torch.tensor(A, dtype=torch.float64)
        for _ in range(2):
            opt2.zero_grad()
            (0.5 * w @ a @ w + 1.5 * (b**2).sum()).backward()
            opt2.step()
        # the same operations on the same values in one process: bit-identical by construction
        np.testing.assert_array_equal(w.detach().numpy(), w5)
        np.testing.assert_array_equal(b.detach().numpy(), b5)
