"""The stability threshold of heavy-ball gradient descent on a quadratic: one formula, below both
sides of the pairing (genlab.theory.landscape predicts the sharpness with it, and
genlab.empirical.landscape tests the measured sharpness against it for ``steps_to_eos``).

genlab trains with torch.optim.SGD semantics: learning rate eta, heavy-ball momentum beta
(dampening 0, no Nesterov) and weight decay wd in the objective, L + (wd/2) ||w||^2, which adds
wd w to the gradient exactly as torch's ``weight_decay`` does:

    v <- beta v + grad L(w) + wd w,        w <- w - eta v.

The sharpness genlab measures is lambda_max of the Hessian of L alone (weight decay left out,
genlab.empirical._curvature). On a quadratic L with Hessian eigenvalue lambda, the component
of (w, v) along its eigenvector evolves linearly with characteristic polynomial

    p(z) = z^2 - (1 + beta - eta h) z + beta,        h = lambda + wd,

and by Jury's criterion both roots lie inside the unit circle iff p(1) = eta h > 0,
p(-1) = 2 (1 + beta) - eta h > 0 and beta < 1. So the iteration is stable iff

    -wd < lambda < 2 (1 + beta) / eta - wd,

and the sharpness at which it turns unstable is 2 (1 + beta) / eta - wd: 2/eta for plain GD, the
edge-of-stability threshold of Cohen, Kaur, Li, Kolter & Talwalkar (2021), and 2 (1 + beta)/eta
with momentum (Cohen et al. 2021, momentum appendix; Goh 2017, "Why momentum really works").
Nesterov momentum (torch's ``nesterov=True``) has p(z) = z^2 - (1 + beta)(1 - eta h) z
+ beta (1 - eta h) and turns unstable at 2 (1 + beta) / ((1 + 2 beta) eta) - wd instead (the
same appendix); genlab's GD and SGD do not use it.
"""

from __future__ import annotations

from genlab._checks import real


def eos_threshold(lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> float:
    """2 (1 + momentum) / lr - weight_decay: the largest Hessian eigenvalue of the loss (without
    the decay term) at which heavy-ball GD with ``lr``, ``momentum`` and ``weight_decay`` is still
    stable on a quadratic (see the module docstring). Non-positive when the weight decay alone
    makes every non-negative sharpness unstable."""
    lr = real(lr, "lr", low=0.0, low_open=True)
    momentum = real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    weight_decay = real(weight_decay, "weight_decay", low=0.0)
    return 2.0 * (1.0 + momentum) / lr - weight_decay
