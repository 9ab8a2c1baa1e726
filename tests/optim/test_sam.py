"""SAM / ASAM: one step against the formulas worked out by hand on a two-parameter quadratic,
rho = 0 against the base optimizer, BatchNorm statistics updated once per step, convergence on
least squares, and the state-dict round trip."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from genlab.optim import SAM, frozen_batchnorm_stats

# f(w) = 1/2 w^T A w with A = [[2, 0.5], [0.5, 1]]: grad f(w) = A w.
A = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)


def _quadratic_closure(w: torch.Tensor, optimizer: torch.optim.Optimizer):
    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = 0.5 * w @ A @ w
        loss.backward()
        return loss

    return closure


def test_sam_step_matches_the_hand_computed_step() -> None:
    """w = (1, -2): g = A w = (1, -1.5), ||g|| = sqrt(3.25); e = rho g / ||g||;
    w+ = w - lr A (w + e). Written out by hand; 1e-12 is float64 rounding of a few operations."""
    rho, lr = 0.1, 0.2
    w = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = SAM([w], torch.optim.SGD, rho=rho, lr=lr)
    loss = opt.step(_quadratic_closure(w, opt))
    norm = math.sqrt(1.0**2 + 1.5**2)
    a1, a2 = 1.0 + rho * 1.0 / norm, -2.0 + rho * (-1.5) / norm  # w + e
    g1, g2 = 2.0 * a1 + 0.5 * a2, 0.5 * a1 + 1.0 * a2  # A (w + e)
    expected = [1.0 - lr * g1, -2.0 - lr * g2]
    assert float(loss.detach()) == pytest.approx(0.5 * (2 * 1 + 2 * 0.5 * 1 * (-2) + 1 * 4), abs=1e-12)
    np.testing.assert_allclose(w.detach().numpy(), expected, rtol=0, atol=1e-12)


def test_asam_step_matches_the_hand_computed_step() -> None:
    """ASAM (Kwon et al. 2021): T = |w| + eta = (1 + eta, 2 + eta); e = rho T^2 g / ||T g||."""
    rho, lr, eta = 0.5, 0.1, 0.01
    w = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = SAM([w], torch.optim.SGD, rho=rho, adaptive=True, eta=eta, lr=lr)
    opt.step(_quadratic_closure(w, opt))
    t1, t2 = 1.0 + eta, 2.0 + eta
    norm = math.sqrt((t1 * 1.0) ** 2 + (t2 * -1.5) ** 2)
    a1, a2 = 1.0 + rho * t1**2 * 1.0 / norm, -2.0 + rho * t2**2 * (-1.5) / norm
    g1, g2 = 2.0 * a1 + 0.5 * a2, 0.5 * a1 + 1.0 * a2
    np.testing.assert_allclose(w.detach().numpy(), [1.0 - lr * g1, -2.0 - lr * g2], rtol=0, atol=1e-12)


def _mlp(seed: int, batchnorm: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Linear(4, 8)] + ([nn.BatchNorm1d(8)] if batchnorm else []) + [nn.Tanh(), nn.Linear(8, 2)]
    return nn.Sequential(*layers).double()


def _batches(steps: int = 5, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 4, generator=g, dtype=torch.float64), torch.randn(16, 2, generator=g, dtype=torch.float64)) for _ in range(steps)]


def _train(net: nn.Module, opt: torch.optim.Optimizer, batches, closure_step: bool) -> None:
    for x, y in batches:
        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = ((net(x) - y) ** 2).mean()
            loss.backward()
            return loss

        if closure_step:
            opt.step(closure)
        else:
            closure()
            opt.step()


def test_rho_zero_is_the_base_optimizer_exactly() -> None:
    """With rho = 0 the perturbation is exactly 0, so 5 SGD-with-momentum steps agree bit for bit."""
    batches = _batches()
    net_sam, net_sgd = _mlp(0), _mlp(0)
    _train(net_sam, SAM(net_sam.parameters(), torch.optim.SGD, rho=0.0, lr=0.1, momentum=0.9), batches, True)
    _train(net_sgd, torch.optim.SGD(net_sgd.parameters(), lr=0.1, momentum=0.9), batches, False)
    for a, b in zip(net_sam.parameters(), net_sgd.parameters(), strict=True):
        assert torch.equal(a, b)


def test_batchnorm_running_stats_are_updated_once_per_step() -> None:
    """With model=net, one SAM step leaves the running statistics of one forward pass at w
    (num_batches_tracked 1), and the update uses the train-mode gradient at w + e computed by
    hand from a copy; without model=, the second pass updates them again (the test can fail)."""
    (x, y), = _batches(1)
    net = _mlp(1, batchnorm=True)
    reference = copy.deepcopy(net)
    opt = SAM(net.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, model=net)
    _train(net, opt, [(x, y)], True)
    bn, bn_ref = net[1], reference[1]

    # By hand: gradient at w, e = rho g/||g||, train-mode gradient at w + e, SGD step from w.
    loss = ((reference(x) - y) ** 2).mean()  # this forward updates reference's stats once
    grads = torch.autograd.grad(loss, list(reference.parameters()))
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    perturbed = copy.deepcopy(reference)
    with torch.no_grad():
        for p, g in zip(perturbed.parameters(), grads, strict=True):
            p.add_(0.05 * g / norm)
    with frozen_batchnorm_stats(perturbed):
        adv = torch.autograd.grad(((perturbed(x) - y) ** 2).mean(), list(perturbed.parameters()))
    assert perturbed[1].track_running_stats  # restored on exit
    torch.testing.assert_close(perturbed[1].running_mean, bn_ref.running_mean, rtol=0, atol=0)
    for p, p0, g in zip(net.parameters(), reference.parameters(), adv, strict=True):
        torch.testing.assert_close(p, p0 - 0.1 * g, rtol=0, atol=1e-14)
    torch.testing.assert_close(bn.running_mean, bn_ref.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(bn.running_var, bn_ref.running_var, rtol=0, atol=0)
    assert int(bn.num_batches_tracked) == 1

    unprotected = _mlp(1, batchnorm=True)
    _train(unprotected, SAM(unprotected.parameters(), torch.optim.SGD, rho=0.05, lr=0.1), [(x, y)], True)
    assert int(unprotected[1].num_batches_tracked) == 2
    assert not torch.allclose(unprotected[1].running_mean, bn_ref.running_mean)


def test_sam_converges_to_the_least_squares_solution() -> None:
    """f(w) = 1/(2n) ||X w - y||^2 (n = 20 > d = 3): the only stationary point of the SAM
    gradient is the pinv solution (g + rho A g / ||g|| = 0 forces g = 0 since A is PSD). With a
    constant step the perturbation keeps norm rho and SAM rattles around it at distance
    O(lr rho ||A||); a learning rate decayed to 0 (cosine) removes that, leaving 1e-6."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(20, 3)))
    y = torch.from_numpy(rng.normal(size=20))
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = SAM([w], torch.optim.SGD, rho=0.05, lr=0.3, momentum=0.5)
    steps = 3000
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = 0.5 * ((x @ w - y) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
        sched.step()
    solution = np.linalg.pinv(x.numpy()) @ y.numpy()
    np.testing.assert_allclose(w.detach().numpy(), solution, atol=1e-6)


def test_state_dict_round_trip_carries_the_base_momentum() -> None:
    """Train 3 steps, save, load into a fresh optimizer on a copied net, train 2 more: the same
    as 5 uninterrupted steps, bit for bit (so the momentum buffers travel in the state dict)."""
    batches = _batches(5)
    net = _mlp(2)
    opt = SAM(net.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
    _train(net, opt, batches[:3], True)
    saved = copy.deepcopy(opt.state_dict())
    assert all("momentum_buffer" in s for s in saved["state"].values())
    resumed = copy.deepcopy(net)
    opt2 = SAM(resumed.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
    opt2.load_state_dict(saved)
    _train(net, opt, batches[3:], True)
    _train(resumed, opt2, batches[3:], True)
    for a, b in zip(net.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
