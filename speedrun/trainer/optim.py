"""Optimisers: Muon for the hidden matrices, Adam for everything else.

Muon keeps SGD momentum (Nesterov style) and replaces each matrix update by an approximately orthogonal
matrix with the same singular vectors, computed by a Newton-Schulz iteration. The iteration is the costly
part, so with several processes each one orthogonalises a share of the matrices and the results are shared
with an all-gather.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from speedrun.trainer.config import NS_STEEP, NewtonSchulzCoefficients


def newton_schulz(G: Tensor, coefficients: NewtonSchulzCoefficients = NS_STEEP) -> Tensor:
    """Approximately orthogonalise G (or a batch of matrices, over the last two dims): U S V^T -> U S' V^T, S' ~ 1.

    One quintic iteration X <- a X + (b A + c A^2) X, A = X X^T, per (a, b, c). Runs in bf16 on CUDA and in
    fp32 elsewhere.
    """
    X = G.to(torch.bfloat16 if G.is_cuda else torch.float32)
    wide = X.size(-2) <= X.size(-1)
    if not wide:  # iterate on the smaller Gram matrix
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # spectral norm <= Frobenius norm <= 1
    batch_shape = X.shape[:-2]
    X = X.reshape(-1, *X.shape[-2:])
    for a, b, c in coefficients:
        A = X @ X.mT
        B = torch.baddbmm(A, A, A, beta=b, alpha=c)  # b*A + c*A@A in one call
        X = torch.baddbmm(X, B, X, beta=a)  # a*X + B@X
    X = X.reshape(*batch_shape, *X.shape[-2:])
    return X if wide else X.mT


class Muon(torch.optim.Optimizer):
    """MomentUm Orthogonalized by Newton-Schulz, for 2-D (or stacked 2-D) parameters.

    Each param group is split by shape, so that a group's matrices are orthogonalised in one batch and
    all-gathered together. Momentum state lives only on the process that orthogonalises that matrix.
    """

    def __init__(
        self,
        param_groups: Iterable[dict[str, Any]],
        lr: float,
        momentum: float,
        weight_decay: float = 0.0,
        newton_schulz: NewtonSchulzCoefficients = NS_STEEP,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.rank, self.world_size = rank, world_size
        by_shape: list[dict[str, Any]] = []
        for group in param_groups:
            params = sorted(group["params"], key=lambda p: p.numel(), reverse=True)
            for shape in dict.fromkeys(tuple(p.shape) for p in params):
                by_shape.append({**group, "params": [p for p in params if tuple(p.shape) == shape]})
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, newton_schulz=newton_schulz)
        super().__init__(by_shape, defaults)

    def _orthogonal_updates(self, params: list[nn.Parameter], group: dict[str, Any]) -> Tensor:
        """Momentum step and orthogonalised updates of same-shaped matrices, stacked (one batched Newton-Schulz)."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        buffers = []
        for p, grad in zip(params, grads, strict=True):
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(grad)
            buffers.append(state["momentum_buffer"])
        momentum = group["momentum"]
        torch._foreach_lerp_(buffers, grads, 1 - momentum)
        nesterov = torch._foreach_lerp(grads, buffers, momentum)
        update = newton_schulz(torch.stack(nesterov), group["newton_schulz"])
        # keep the update's RMS comparable for tall matrices
        return update * max(1.0, params[0].size(-2) / params[0].size(-1)) ** 0.5

    @torch.no_grad()
    def step(self) -> None:  # type: ignore[override]
        W, rank = self.world_size, self.rank
        for group in self.param_groups:
            params: list[nn.Parameter] = group["params"]
            # process r orthogonalises matrices [r*share, (r+1)*share) of the group; all-gather shares the results
            share = -(-len(params) // W)
            mine = params[rank * share : (rank + 1) * share]
            updates = torch.zeros(W * share, *params[0].shape, device=params[0].device, dtype=params[0].dtype)
            my_slot = updates[rank * share : (rank + 1) * share]
            if mine:
                my_slot[: len(mine)] = self._orthogonal_updates(mine, group)
            if W > 1:
                dist.all_gather(list(updates.chunk(W)), my_slot.clone())
            torch._foreach_mul_(params, 1 - group["lr"] * group["weight_decay"])
            torch._foreach_add_(params, list(updates[: len(params)].unbind(0)), alpha=-group["lr"])


def all_reduce_gradients(params: Iterable[nn.Parameter], world_size: int) -> None:
    """Sum gradients over processes (the loss is already divided by the global number of micro-steps)."""
    if world_size == 1:
        return
    work = [dist.all_reduce(p.grad, op=dist.ReduceOp.SUM, async_op=True) for p in params if p.grad is not None]
    for handle in work:
        handle.wait()


def set_initial_lr(optimizers: Iterable[torch.optim.Optimizer]) -> None:
    """Keep each group's recipe learning rate: the schedule scales it afresh every step, never compounding."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
