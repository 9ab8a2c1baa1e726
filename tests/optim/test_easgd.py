"""EASGD: the elastic exchange against hand-computed values, the one-worker limit, convergence.

Hand values: worker i minimises f_i(x) = 1/2 (x - b_i)^T diag(a_i) (x - b_i) with a_0 = (1, 2),
b_0 = (1, 0), a_1 = (2, 1), b_1 = (0, 1), from x = x~ = (1, -1), lr = 0.1, alpha = 0.25:
gradients g_0 = (0, -2), g_1 = (2, -2), so after the local step x_0 = (1, -0.8), x_1 = (0.8, -0.8).
Tolerance 1e-12 in float64: a handful of roundings of numbers of order 1.
"""

from __future__ import annotations

import math

import pytest
import torch

from genlab.optim.easgd import EASGD, easgd_exchange

T = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
TOL = 1e-12


def test_sync_exchange_by_hand() -> None:
    # d_0 = x_0 - c = (0, 0.2), d_1 = (-0.2, 0.2); x_i - 0.25 d_i; c + 0.25 (d_0 + d_1) = c + (-0.05, 0.1)
    workers, center = easgd_exchange([T(1, -0.8), T(0.8, -0.8)], T(1, -1), 0.25, "sync")
    torch.testing.assert_close(workers[0], T(1, -0.85), rtol=0, atol=TOL)
    torch.testing.assert_close(workers[1], T(0.85, -0.85), rtol=0, atol=TOL)
    torch.testing.assert_close(center, T(0.95, -0.9), rtol=0, atol=TOL)


def test_async_exchange_by_hand() -> None:
    # worker 0: d = 0.25 (0, 0.2) = (0, 0.05): x_0 = (1, -0.85), c = (1, -0.95);
    # worker 1 then sees that c: d = 0.25 ((0.8, -0.8) - (1, -0.95)) = (-0.05, 0.0375).
    workers, center = easgd_exchange([T(1, -0.8), T(0.8, -0.8)], T(1, -1), 0.25, "async")
    torch.testing.assert_close(workers[0], T(1, -0.85), rtol=0, atol=TOL)
    torch.testing.assert_close(workers[1], T(0.85, -0.8375), rtol=0, atol=TOL)
    torch.testing.assert_close(center, T(0.95, -0.9125), rtol=0, atol=TOL)


def test_exchange_conserves_the_sum_of_workers_and_center() -> None:
    """The exchange moves mass between workers and the center: sum_i x_i + x~ is invariant
    (both modes), the paper's 'elastic force' symmetry. Exact up to rounding."""
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(5, generator=gen, dtype=torch.float64) for _ in range(3)]
    c = torch.randn(5, generator=gen, dtype=torch.float64)
    for mode in ("sync", "async"):
        new, c2 = easgd_exchange(xs, c, 0.3, mode)
        torch.testing.assert_close(sum(new) + c2, sum(xs) + c, rtol=0, atol=1e-12)


def test_one_worker_optimizer_step_by_hand() -> None:
    """No process group: one worker; its SGD step then the exchange with its own center."""
    x = torch.nn.Parameter(T(1, -1))
    opt = EASGD([x], lr=0.1, alpha=0.25, tau=1)
    loss = 0.5 * (T(1, 2) * (x - T(1, 0)) ** 2).sum()
    loss.backward()
    assert opt.step(loss=float(loss.detach()))
    torch.testing.assert_close(x.detach(), T(1, -0.85), rtol=0, atol=TOL)
    torch.testing.assert_close(opt.center(), T(1, -0.95), rtol=0, atol=TOL)
    assert math.isclose(opt.spread, 0.2, abs_tol=TOL)


def test_tau_counts_local_steps_between_exchanges() -> None:
    x = torch.nn.Parameter(T(1, -1))
    opt = EASGD([x], lr=0.1, alpha=0.5, tau=3)
    ended = []
    for _ in range(7):
        opt.zero_grad()
        (0.5 * (x**2).sum()).backward()
        ended.append(opt.step())
    assert ended == [False, False, True, False, False, True, False] and opt.rounds == 2


def test_one_worker_alpha_zero_is_sgd_exactly() -> None:
    """EASGD with 1 worker and alpha = 0 takes exactly torch.optim.SGD's steps (bitwise equal)."""
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double() for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [EASGD(nets[0].parameters(), lr=0.05, alpha=0.0, tau=2), torch.optim.SGD(nets[1].parameters(), lr=0.05)]
    gen = torch.Generator().manual_seed(1)
    for _ in range(40):
        x, y = torch.randn(16, 4, generator=gen, dtype=torch.float64), torch.randn(16, 1, generator=gen, dtype=torch.float64)
        for net, opt in zip(nets, opts):
            opt.zero_grad()
            ((net(x) - y) ** 2).mean().backward()
            opt.step()
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("bad", [{"alpha": -0.1}, {"alpha": True}, {"tau": 0}, {"lr": 0.0}, {"mode": "gossip"}])
def test_bad_arguments_name_the_argument(bad: dict) -> None:
    kwargs = {"lr": 0.1, "alpha": 0.1, "tau": 1, "mode": "sync"} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        EASGD([torch.nn.Parameter(torch.zeros(2))], **kwargs)
