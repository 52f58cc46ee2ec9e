"""Adam as the 2026-05 recipe (record 84) runs it, with cautious weight decay tied to the learning rate.

Per parameter, with its own betas and learning-rate and decay multipliers:
    m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
    u = lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)    (eps before the bias correction)
    W <- W - u - lr^2 * wd * W, the decay only where u and W have the same (non-zero) sign (record 50)
The state is fp32 whatever the parameter's dtype. Which steps Adam takes (every other one in the recipe) is
the trainer's choice: the gradients of the steps it skips accumulate.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


def cautious_adam_update_(
    weight: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    betas: tuple[float, float],
    eps: float,
    step_size: float,
    decay: float,
) -> None:
    """One Adam update of `weight` in place; `step_size` carries the bias correction, `decay` is lr^2 * wd."""
    beta1, beta2 = betas
    g = grad.float()
    exp_avg.lerp_(g, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    update = exp_avg / (exp_avg_sq.sqrt() + eps) * step_size
    same_sign = (update * weight) > 0
    update += decay * same_sign * weight
    weight.sub_(update)  # in fp32, rounded once into the weight's dtype


class CautiousAdam(torch.optim.Optimizer):
    """Adam with cautious weight decay; each group sets `betas`, `lr`, `weight_decay` (multiplied by lr^2)."""

    def __init__(self, param_groups: Iterable[dict], lr: float, betas: tuple[float, float], eps: float) -> None:
        super().__init__(param_groups, dict(lr=lr, betas=betas, eps=eps, weight_decay=0.0))

    @torch.no_grad()
    def step(self) -> None:  # type: ignore[override]
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr = group["lr"]
            for p in group["params"]:
                p: nn.Parameter
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
                state["step"] += 1
                t = state["step"]
                step_size = lr * (1 - beta2**t) ** 0.5 / (1 - beta1**t)
                decay = lr * lr * group["weight_decay"]
                moments = state["exp_avg"], state["exp_avg_sq"]
                cautious_adam_update_(p.data, p.grad, *moments, (beta1, beta2), group["eps"], step_size, decay)
