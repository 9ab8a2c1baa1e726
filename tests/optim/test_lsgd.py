"""Leader SGD: leaders and the pull against hand-computed values (float64, 1e-12).

The setting of tests/optim/test_easgd.py: after the local step x_0 = (1, -0.8) with round loss
f_0(1, -1) = 1 and x_1 = (0.8, -0.8) with f_1(1, -1) = 3, so worker 0 leads.
"""

from __future__ import annotations

import pytest
import torch

from genlab.optim.lsgd import LSGD, leaders, lsgd_pull

T = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
TOL = 1e-12


def test_leaders_local_and_global() -> None:
    # groups {0,1}, {2,3}, {4}: group minima 1, 2, 4; overall minimum 2; ties go to the lower rank
    local, glob = leaders([0.5, 0.2, 0.1, 0.1, 0.7], group_size=2)
    assert local == [1, 1, 2, 2, 4] and glob == 2


def test_pull_one_group_by_hand() -> None:
    # one group: local leader = global leader = 0; x_1 - (0.5 + 0.25)(x_1 - x_0) = (0.95, -0.8)
    new, glob = lsgd_pull([T(1, -0.8), T(0.8, -0.8)], [1.0, 3.0], pull_local=0.5, pull_global=0.25, group_size=2)
    assert glob == 0
    torch.testing.assert_close(new[0], T(1, -0.8), rtol=0, atol=TOL)
    torch.testing.assert_close(new[1], T(0.95, -0.8), rtol=0, atol=TOL)


def test_pull_with_local_and_global_leaders_by_hand() -> None:
    # four workers on a line, groups {0,1}, {2,3}; losses make 1 and 2 the local leaders, 2 global.
    xs = [T(0, 0), T(1, 0), T(2, 0), T(3, 0)]
    new, glob = lsgd_pull(xs, [4.0, 3.0, 1.0, 2.0], pull_local=0.5, pull_global=0.25, group_size=2)
    assert glob == 2
    # x_0: 0 - 0.5 (0 - 1) - 0.25 (0 - 2) = 1;  x_1: 1 - 0 - 0.25 (1 - 2) = 1.25
    # x_2: 2 (leader of both);                  x_3: 3 - 0.5 (3 - 2) - 0.25 (3 - 2) = 2.25
    for x, expected in zip(new, (1.0, 1.25, 2.0, 2.25)):
        torch.testing.assert_close(x, T(expected, 0), rtol=0, atol=TOL)


def test_one_worker_is_its_own_leader() -> None:
    """Alone, the worker leads itself: LSGD is plain SGD (bitwise)."""
    x, y = torch.nn.Parameter(T(1, -1)), torch.nn.Parameter(T(1, -1))
    opt, sgd = LSGD([x], lr=0.1, pull_local=0.5, pull_global=0.5, tau=1), torch.optim.SGD([y], lr=0.1)
    for _ in range(5):
        for p, o in ((x, opt), (y, sgd)):
            o.zero_grad()
            loss = 0.5 * (T(1, 2) * (p - T(1, 0)) ** 2).sum()
            loss.backward()
            o.step(loss=float(loss.detach())) if o is opt else o.step()
    assert torch.equal(x, y) and torch.equal(opt.center(), x.detach())


@pytest.mark.parametrize("bad", [{"pull_local": 1.5}, {"pull_global": -0.1}, {"group_size": 0}, {"tau": -1}])
def test_bad_arguments_name_the_argument(bad: dict) -> None:
    kwargs = {"lr": 0.1, "pull_local": 0.1, "pull_global": 0.1, "tau": 1} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        LSGD([torch.nn.Parameter(torch.zeros(2))], **kwargs)
